using Allauzen.ML.Diachronic;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Diachronic;

[TestClass]
public sealed class RowOrderTests
{
    private static IDataView View(MLContext ml, IEnumerable<SlicedSentence> sentences) =>
        ml.Data.LoadFromEnumerable(sentences.Select(s => new SentenceRow { Tokens = s.Tokens, Slice = s.Slice }));

    private static List<SlicedSentence> Shuffled(List<SlicedSentence> sentences, int seed)
    {
        var r = new Random(seed);
        return sentences.OrderBy(_ => r.Next()).ToList();
    }

    private static void AssertSameModel(DiachronicEmbeddingsTransformer a, DiachronicEmbeddingsTransformer b)
    {
        CollectionAssert.AreEqual(a.Vocabulary.ToArray(), b.Vocabulary.ToArray());
        Assert.AreEqual(a.SliceCount, b.SliceCount);
        for (int t = 0; t < a.SliceCount; t++)
        {
            foreach (var w in a.Vocabulary)
            {
                Assert.AreEqual(a.GetCount(w, t), b.GetCount(w, t));
                var va = a.GetVector(w, t);
                var vb = b.GetVector(w, t);
                Assert.AreEqual(va is null, vb is null, $"{w} in slice {t}");
                if (va is not null)
                    CollectionAssert.AreEqual(va, vb, $"vector of '{w}' in slice {t}");
            }
        }
    }

    [TestMethod]
    [DataRow(DiachronicModel.DynamicBernoulli)]
    [DataRow(DiachronicModel.IncrementalSkipGram)]
    [DataRow(DiachronicModel.AlignedSkipGram)]
    public void ShuffledRowsGiveTheSameModelAsSortedRows(DiachronicModel model)
    {
        var ml = new MLContext(seed: 1);
        var sorted = DiachronicTestData.Synthetic(3, 60, seed: 7);
        var o = DiachronicTestData.Options(model);
        using var a = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(View(ml, sorted));
        using var b = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(View(ml, Shuffled(sorted, 11)));
        AssertSameModel(a, b);
        var ranking = a.GetDriftRanking(0, 2, 1);
        CollectionAssert.AreEqual(ranking.ToArray(), b.GetDriftRanking(0, 2, 1).ToArray());
    }

    [TestMethod]
    public void SpillingToDiskGivesTheSameCorpusAndModelAsMemory()
    {
        var ml = new MLContext(seed: 1);
        var sentences = Shuffled(DiachronicTestData.Synthetic(4, 80, seed: 8), 12);
        var o = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        var memory = DiachronicEmbeddingsEstimator.ReadCorpus(View(ml, sentences), o);
        var tiny = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        tiny.MaxInMemoryBytes = 512; // about 10 sentences: the 320-sentence stream is spilled some 30 times
        // a streamed view: rows are produced lazily by the enumerable on every cursor, never held as a list
        var streamed = View(ml, sentences.Select(s => new SlicedSentence(s.Slice, s.Tokens.ToArray())));
        var spilled = DiachronicEmbeddingsEstimator.ReadCorpus(streamed, tiny);
        CollectionAssert.AreEqual(memory.Words, spilled.Words);
        for (int t = 0; t < memory.SliceCount; t++)
        {
            CollectionAssert.AreEqual(memory.Tokens[t], spilled.Tokens[t], $"slice {t} tokens");
            CollectionAssert.AreEqual(memory.SentenceEnds[t], spilled.SentenceEnds[t], $"slice {t} sentence ends");
            CollectionAssert.AreEqual(memory.SliceCounts[t], spilled.SliceCounts[t], $"slice {t} counts");
        }
        using var a = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(View(ml, sentences));
        using var b = ml.Transforms.Text.DiachronicEmbeddings(tiny).Fit(streamed);
        AssertSameModel(a, b);
    }

    [TestMethod]
    public void BuilderSpillsBeyondTheMemoryBoundAndKeepsTheCanonicalOrder()
    {
        var sentences = DiachronicTestData.Synthetic(2, 50, seed: 9);
        using var inMemory = new DiachronicCorpusBuilder(2, seed: 3, maxInMemoryBytes: long.MaxValue);
        using var onDisk = new DiachronicCorpusBuilder(2, seed: 3, maxInMemoryBytes: 0);
        foreach (var s in sentences)
            inMemory.Add(s.Slice, s.Slice, s.Tokens);
        foreach (var s in Shuffled(sentences, 4))
            onDisk.Add(s.Slice, s.Slice, s.Tokens);
        Assert.AreEqual(0, inMemory.Spills);
        Assert.AreEqual(sentences.Count, onDisk.Spills, "a bound of 0 bytes spills after every sentence");
        var a = inMemory.Build(0, 1, 1, 0);
        var b = onDisk.Build(0, 1, 1, 0);
        CollectionAssert.AreEqual(a.Words, b.Words);
        for (int t = 0; t < 2; t++)
        {
            CollectionAssert.AreEqual(a.Tokens[t], b.Tokens[t]);
            Assert.AreEqual(sentences.Count(s => s.Slice == t), a.SentenceEnds[t].Length);
        }
        // another seed orders the sentences of a slice differently, with the same tokens
        using var other = new DiachronicCorpusBuilder(2, seed: 4, maxInMemoryBytes: long.MaxValue);
        foreach (var s in sentences)
            other.Add(s.Slice, s.Slice, s.Tokens);
        var c = other.Build(0, 1, 1, 0);
        CollectionAssert.AreNotEqual(a.Tokens[0], c.Tokens[0]);
        CollectionAssert.AreEquivalent(a.Tokens[0], c.Tokens[0]);
        // within a slice the time value orders first: a finer time column keeps the corpus order
        using var timed = new DiachronicCorpusBuilder(1, seed: 3, maxInMemoryBytes: long.MaxValue);
        string[][] lines = [["z", "y"], ["x"], ["w", "v", "u"]];
        for (int i = lines.Length - 1; i >= 0; i--)
            timed.Add(0, 100 + i, lines[i]);
        var d = timed.Build(0, 1, 1, 0);
        CollectionAssert.AreEqual(lines.SelectMany(l => l).ToArray(), d.Tokens[0].Select(id => d.Words[id]).ToArray());
        CollectionAssert.AreEqual(new[] { 2, 3, 6 }, d.SentenceEnds[0]);
    }
}
