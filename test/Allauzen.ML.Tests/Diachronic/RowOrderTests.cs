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
            inMemory.Add(s.Slice, s.Slice, 0, s.Tokens);
        foreach (var s in Shuffled(sentences, 4))
            onDisk.Add(s.Slice, s.Slice, 0, s.Tokens);
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
            other.Add(s.Slice, s.Slice, 0, s.Tokens);
        var c = other.Build(0, 1, 1, 0);
        CollectionAssert.AreNotEqual(a.Tokens[0], c.Tokens[0]);
        CollectionAssert.AreEquivalent(a.Tokens[0], c.Tokens[0]);
        // within a slice the time value orders first: a finer time column keeps the corpus order
        using var timed = new DiachronicCorpusBuilder(1, seed: 3, maxInMemoryBytes: long.MaxValue);
        string[][] lines = [["z", "y"], ["x"], ["w", "v", "u"]];
        for (int i = lines.Length - 1; i >= 0; i--)
            timed.Add(0, 100 + i, 0, lines[i]);
        var d = timed.Build(0, 1, 1, 0);
        CollectionAssert.AreEqual(lines.SelectMany(l => l).ToArray(), d.Tokens[0].Select(id => d.Words[id]).ToArray());
        CollectionAssert.AreEqual(new[] { 2, 3, 6 }, d.SentenceEnds[0]);
        // with equal time values the order value comes next
        using var ordered = new DiachronicCorpusBuilder(1, seed: 3, maxInMemoryBytes: 0);
        for (int i = lines.Length - 1; i >= 0; i--)
            ordered.Add(0, 100, i, lines[i]);
        var e = ordered.Build(0, 1, 1, 0);
        CollectionAssert.AreEqual(lines.SelectMany(l => l).ToArray(), e.Tokens[0].Select(id => e.Words[id]).ToArray());
    }

    private sealed class OrderedRow
    {
        public string[] Tokens { get; set; } = [];

        public int Slice { get; set; }

        public long Line { get; set; }
    }

    [TestMethod]
    public void OrderColumnKeepsTheCorpusOrderInsideASliceWhateverTheRowOrder()
    {
        var ml = new MLContext(seed: 1);
        var sorted = DiachronicTestData.Synthetic(3, 60, seed: 7);
        var rows = sorted.Select((s, i) => new OrderedRow { Tokens = s.Tokens, Slice = s.Slice, Line = i }).ToList();
        var r = new Random(5);
        var shuffled = rows.OrderBy(_ => r.Next()).ToList();
        var o = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        o.OrderColumnName = nameof(OrderedRow.Line);
        var a = DiachronicEmbeddingsEstimator.ReadCorpus(ml.Data.LoadFromEnumerable(rows), o);
        var b = DiachronicEmbeddingsEstimator.ReadCorpus(ml.Data.LoadFromEnumerable(shuffled), o);
        for (int t = 0; t < 3; t++)
        {
            CollectionAssert.AreEqual(a.Tokens[t], b.Tokens[t], $"slice {t}");
            // the stream of slice t is its sentences in line order (every synthetic word is in the vocabulary)
            var expected = sorted.Where(s => s.Slice == t).SelectMany(s => s.Tokens).Where(a.Ids.ContainsKey).ToArray();
            CollectionAssert.AreEqual(expected, a.Tokens[t].Select(id => a.Words[id]).ToArray(), $"slice {t} in line order");
        }
        using var ma = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(ml.Data.LoadFromEnumerable(rows));
        using var mb = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(ml.Data.LoadFromEnumerable(shuffled));
        AssertSameModel(ma, mb);
        CollectionAssert.AreEqual(ma.GetDriftRanking(0, 2, 1).ToArray(), mb.GetDriftRanking(0, 2, 1).ToArray());
    }

    [TestMethod]
    public void OrderColumnMustExistAndBeAnInteger()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(DiachronicTestData.Synthetic(2, 10, seed: 7)
            .Select(s => new SentenceRow { Tokens = s.Tokens, Slice = s.Slice }));
        var o = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        o.OrderColumnName = "Line";
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Text.DiachronicEmbeddings(o).Fit(data));
        StringAssert.Contains(missing.Message, "Line");
        o.OrderColumnName = nameof(SentenceRow.Tokens);
        var wrong = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.Text.DiachronicEmbeddings(o).Fit(data));
        StringAssert.Contains(wrong.Message, "Tokens");
        o.OrderColumnName = "";
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.Text.DiachronicEmbeddings(o));
    }
}
