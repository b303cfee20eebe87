using Allauzen.ML.Diachronic;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Diachronic;

/// <summary>Procrustes recovery, incremental vocabulary, determinism.</summary>
[TestClass]
public sealed class SkipGramDiachronicTests
{
    private static double[] RandomOrthogonal(int k, int seed)
    {
        // Gram–Schmidt on a random matrix
        var r = new Random(seed);
        var q = new double[k * k];
        for (int i = 0; i < k; i++)
        {
            var v = Enumerable.Range(0, k).Select(_ => r.NextDouble() * 2 - 1).ToArray();
            for (int j = 0; j < i; j++)
            {
                double d = 0;
                for (int c = 0; c < k; c++)
                    d += v[c] * q[j * k + c];
                for (int c = 0; c < k; c++)
                    v[c] -= d * q[j * k + c];
            }
            double n = Math.Sqrt(v.Sum(x => x * x));
            for (int c = 0; c < k; c++)
                q[i * k + c] = v[c] / n;
        }
        return q;
    }

    [TestMethod]
    public void ProcrustesRecoversARandomRotation()
    {
        const int n = 200, k = 8;
        var r = new Random(1);
        var x = Enumerable.Range(0, n * k).Select(_ => r.NextDouble() - 0.5).ToArray();
        var q = RandomOrthogonal(k, 2);
        var y = new double[n * k];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < k; j++)
            {
                for (int c = 0; c < k; c++)
                    y[i * k + j] += x[i * k + c] * q[c * k + j];
            }
        }
        var qHat = Procrustes.Solve(x, y, n, k);
        double err = Math.Sqrt(q.Zip(qHat).Sum(p => (p.First - p.Second) * (p.First - p.Second)));
        Assert.IsLessThan(1e-5, err, "‖Q̂ − Q‖_F");
    }

    [TestMethod]
    public void AlignmentKeepsWithinSliceCosinesAndUndoesARotation()
    {
        var ml = new MLContext(seed: 1);
        var o = DiachronicTestData.Options(DiachronicModel.AlignedSkipGram);
        var corpus = DiachronicEmbeddingsEstimator.ReadCorpus(DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(2, 50, 1)), o);
        int v = corpus.VocabularySize, k = 6;
        var r = new Random(3);
        var a = Enumerable.Range(0, v * k).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        // slice 1 = slice 0 rotated by a random orthogonal matrix: alignment must map it back
        var rotated = Procrustes.Apply(a, v, k, RandomOrthogonal(k, 4));
        var vectors = new[] { (float[])a.Clone(), (float[])rotated.Clone() };
        var defined = new[] { Enumerable.Repeat(true, v).ToArray(), Enumerable.Repeat(true, v).ToArray() };
        SkipGramDiachronicTrainer.AlignChain(vectors, defined, corpus, k, 1);
        Procrustes.NormalizeRows(a, v, k);
        Assert.IsLessThan(1e-4, a.Zip(vectors[1]).Max(p => Math.Abs(p.First - p.Second)), "aligned slice 1 equals slice 0");
        for (int i = 0; i < 5; i++)
            Assert.AreEqual(SkipGramEngineTests.Cosine(rotated, i, i + 1, k), SkipGramEngineTests.Cosine(vectors[1], i, i + 1, k), 1e-5, "within-slice cosine unchanged");
    }

    [TestMethod]
    public void IncrementalModelCarriesBothMatricesAndAddsNewWordsWithStableIds()
    {
        var ml = new MLContext(seed: 1);
        var o = DiachronicTestData.Options(DiachronicModel.IncrementalSkipGram);
        o.Initialization = DiachronicInitialization.Random;
        var data = DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(3, 80, 5, firstNewSlice: 1));
        var corpus = DiachronicEmbeddingsEstimator.ReadCorpus(data, o);
        int k = o.Dimensions;
        var newIds = Enumerable.Range(0, 3).Select(i => corpus.Ids[$"new{i}"]).ToArray();
        int oldWords = corpus.Words.Count(w => !w.StartsWith("new", StringComparison.Ordinal));
        Assert.IsTrue(newIds.All(id => id >= oldWords), "words first seen in a later slice get the next ids");
        Assert.IsTrue(newIds.All(id => corpus.FirstSlice[id] == 1));

        float[]? syn0After0 = null, syn1After0 = null;
        bool checkedBefore1 = false;
        SkipGramDiachronicTrainer.Fit(corpus, o, (engine, slice, before) =>
        {
            if (slice == 0 && !before)
            {
                syn0After0 = (float[])engine.Syn0.Clone();
                syn1After0 = (float[])engine.Syn1.Clone();
                foreach (int id in newIds)
                    Assert.IsTrue(engine.Syn0.AsSpan(id * k, k).ToArray().All(x => x == 0), "new words are not initialised before they occur");
            }
            if (slice == 1 && before)
            {
                checkedBefore1 = true;
                for (int w = 0; w < oldWords; w++)
                {
                    CollectionAssert.AreEqual(syn0After0!.AsSpan(w * k, k).ToArray(), engine.Syn0.AsSpan(w * k, k).ToArray(), "old word vectors are carried, not re-initialised");
                    CollectionAssert.AreEqual(syn1After0!.AsSpan(w * k, k).ToArray(), engine.Syn1.AsSpan(w * k, k).ToArray(), "the output matrix is carried over");
                }
                foreach (int id in newIds)
                    Assert.IsTrue(engine.Syn0.AsSpan(id * k, k).ToArray().Any(x => x != 0), "new words are initialised when they first occur");
            }
        });
        Assert.IsTrue(checkedBefore1);

        using var model = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(data);
        Assert.IsNull(model.GetVector("new0", 0), "no vector before the word exists");
        Assert.IsNotNull(model.GetVector("new0", 1));
        Assert.IsNotNull(model.GetVector("new0", 2));
        CollectionAssert.AreEqual(corpus.Words, model.Vocabulary.ToArray(), "ids are the corpus ids");
    }

    [TestMethod]
    [DataRow(DiachronicModel.IncrementalSkipGram)]
    [DataRow(DiachronicModel.AlignedSkipGram)]
    [DataRow(DiachronicModel.DynamicBernoulli)]
    public void SameSeedGivesIdenticalVectorsAndAnotherSeedDoesNot(DiachronicModel model)
    {
        var ml = new MLContext(seed: 1);
        var data = DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(3, 60, 6));
        float[] Run(int seed)
        {
            var o = DiachronicTestData.Options(model);
            o.Seed = seed;
            o.StaticSteps = 20;
            o.DynamicSteps = 20;
            using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(data);
            return Enumerable.Range(0, m.SliceCount).SelectMany(t => m.Vocabulary.SelectMany(w => m.GetVector(w, t) ?? [])).ToArray();
        }
        var a = Run(1);
        var b = Run(1);
        var c = Run(2);
        CollectionAssert.AreEqual(a, b, "same seed, one thread: bit-identical");
        CollectionAssert.AreNotEqual(a, c, "another seed gives another model");
    }

    [TestMethod]
    public void TwoThreadsFindTheSameDriftingWords()
    {
        var ml = new MLContext(seed: 1);
        var data = DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(2, 300, 7));
        IReadOnlyList<(string, double)> Ranking(int threads)
        {
            var o = DiachronicTestData.Options(DiachronicModel.IncrementalSkipGram);
            o.Threads = threads;
            o.Epochs = 5;
            using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(data);
            return m.GetDriftRanking(0, 1, 1);
        }
        string[] shifters = ["s0", "s1", "s2", "s3"];
        CollectionAssert.AreEquivalent(shifters, Ranking(1).Take(4).Select(x => x.Item1).ToArray(), "one thread");
        CollectionAssert.AreEquivalent(shifters, Ranking(2).Take(4).Select(x => x.Item1).ToArray(), "two threads (Hogwild)");
    }
}
