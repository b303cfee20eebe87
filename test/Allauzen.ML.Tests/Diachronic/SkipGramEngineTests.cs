using Allauzen.ML.Diachronic;
using Allauzen.ML.Tests.TestSupport;

namespace Allauzen.ML.Tests.Diachronic;

/// <summary>The skip-gram engine's pieces: the alias table of negatives and the window-batched update.</summary>
[TestClass]
public sealed class SkipGramEngineTests
{
    private static long[] ZipfCounts(int v) => Enumerable.Range(0, v).Select(i => i % 7 == 3 ? 0L : 100_000L / (i + 1)).ToArray();

    [TestMethod]
    public void AliasTableProbabilitiesAreTheCountsToThePowerThreeQuarters()
    {
        var counts = ZipfCounts(300);
        var p = AliasTable.Build(counts).Probabilities();
        double total = counts.Sum(c => Math.Pow(c, 0.75));
        for (int w = 0; w < counts.Length; w++)
        {
            // exact up to the 2^-32 resolution of each column's threshold (and double rounding in the construction)
            Assert.AreEqual(Math.Pow(counts[w], 0.75) / total, p[w], 1e-9, $"P({w})");
        }
        Assert.AreEqual(1.0, p.Sum(), 1e-9);
        Assert.IsTrue(counts.Select((c, w) => c == 0 ? p[w] : 0).All(x => x == 0), "words of zero count are never drawn");
    }

    [TestMethod]
    public void AliasTableDrawsFollowItsProbabilities()
    {
        var counts = ZipfCounts(40);
        var table = AliasTable.Build(counts);
        var p = table.Probabilities();
        const int n = 2_000_000;
        var freq = new int[counts.Length];
        var rng = new SplitMix64(5);
        for (int i = 0; i < n; i++)
            freq[table.Sample(rng.Next())]++;
        for (int w = 0; w < counts.Length; w++)
        {
            // binomial: 5 standard deviations (40 words: a false alarm has probability ~ 40 · 6e-7)
            double sd = Math.Sqrt(n * p[w] * (1 - p[w]));
            Assert.AreEqual(n * p[w], freq[w], 5 * sd + 1e-9, $"draws of word {w}");
        }
    }

    [TestMethod]
    public void AliasTableOfAnEmptyVocabularyDrawsWordZero()
    {
        var table = AliasTable.Build(new long[3]);
        var rng = new SplitMix64(1);
        for (int i = 0; i < 100; i++)
            Assert.AreEqual(0, table.Sample(rng.Next()));
    }

    [TestMethod]
    [DataRow(37)]
    [DataRow(100)]
    public void WindowUpdateIsTheSumOfThePairGradientsAtTheOldRows(int k)
    {
        // K = 37 runs both the vector loop and the scalar tail; word 2 occurs twice in the window and negative 4 is drawn
        // twice, so every repeated row must receive each of its deltas
        const int v = 7;
        const float lr = 0.05f;
        int[] contexts = [1, 2, 2, 3, 6];
        int[] targets = [0, 4, 5, 4];
        var engine = new SkipGramEngine(v, k);
        var r = new Random(3);
        for (int i = 0; i < v * k; i++)
        {
            engine.Syn0[i] = (float)((r.NextDouble() - 0.5) * 0.8);
            engine.Syn1[i] = (float)((r.NextDouble() - 0.5) * 0.8);
        }
        var in0 = engine.Syn0.Select(x => (double)x).ToArray();
        var out0 = engine.Syn1.Select(x => (double)x).ToArray();
        var expectedIn = (double[])in0.Clone();
        var expectedOut = (double[])out0.Clone();
        for (int i = 0; i < contexts.Length; i++)
        {
            for (int j = 0; j < targets.Length; j++)
            {
                double f = 0;
                for (int c = 0; c < k; c++)
                    f += in0[contexts[i] * k + c] * out0[targets[j] * k + c];
                double g = SkipGramEngine.Gradient((float)f, j == 0, lr);
                for (int c = 0; c < k; c++)
                {
                    expectedIn[contexts[i] * k + c] += g * out0[targets[j] * k + c];
                    expectedOut[targets[j] * k + c] += g * in0[contexts[i] * k + c];
                }
            }
        }
        engine.TrainWindow(contexts, targets, lr);
        Assert.IsTrue(expectedIn.Zip(in0).Any(p => Math.Abs(p.First - p.Second) > 1e-3), "the window moved the input rows");
        // float32 sums in another order than the double reference: ≤ (K + 5) terms of magnitude ≤ 0.4 and rows ≤ 0.5,
        // so a few 1e-7 of rounding; 1e-5 leaves room without hiding a missing or doubled delta (≥ 1e-3 here)
        FloatTolerance.AssertClose(expectedIn.Select(x => (float)x).ToArray(), engine.Syn0, 0, 1e-5, "Syn0");
        FloatTolerance.AssertClose(expectedOut.Select(x => (float)x).ToArray(), engine.Syn1, 0, 1e-5, "Syn1");
    }

    [TestMethod]
    public void WindowTrainingIsReproducibleOnOneThreadAndLearnsTheCooccurrences()
    {
        // two disjoint topics: words 0-9 only occur with each other, words 10-19 likewise
        var r = new Random(4);
        var tokens = new List<int>();
        var ends = new List<int>();
        for (int s = 0; s < 3000; s++)
        {
            int topic = s % 2 * 10;
            for (int i = 0; i < 8; i++)
                tokens.Add(topic + r.Next(10));
            ends.Add(tokens.Count);
        }
        var counts = new long[20];
        foreach (int w in tokens)
            counts[w]++;
        float[] Train(int threads)
        {
            var e = new SkipGramEngine(20, 16);
            e.InitRows(0, 20, 1);
            var stats = e.Train(tokens.ToArray(), ends.ToArray(), counts, 3, 0.025, 1e-4, 3, 5, 0, threads, 9);
            Assert.AreEqual(tokens.Count * 3L, stats.EffectiveWords, "no subsampling: every token is trained on");
            return e.Syn0;
        }
        var a = Train(1);
        CollectionAssert.AreEqual(a, Train(1), "one thread: bit-identical");
        foreach (var m in new[] { a, Train(2) })
        {
            double within = 0, across = 0;
            for (int x = 0; x < 20; x++)
            {
                for (int y = x + 1; y < 20; y++)
                {
                    if (x / 10 == y / 10)
                        within += Cosine(m, x, y, 16) / 90;
                    else
                        across += Cosine(m, x, y, 16) / 100;
                }
            }
            Assert.IsGreaterThan(across + 0.5, within, "same-topic words are closer than cross-topic words");
        }
    }

    [TestMethod]
    [DataRow(37, 48)]
    [DataRow(100, 112)]
    public void PaddedRowsTrainLikeOneThreadOnASingleJob(int k, int stride)
    {
        // fewer tokens than one job: with two threads one worker trains it all on the padded, 64-byte-aligned copies of the
        // rows, the other takes no job; the arithmetic per row is the same as one thread's in place, so the bits are equal.
        // Two Train calls in a row: the second starts from the rows the first copied back. K = 37 runs the scalar tail.
        const int v = 30;
        var r = new Random(6);
        var tokens = new List<int>();
        var ends = new List<int>();
        for (int s = 0; s < 600; s++)
        {
            for (int i = 0; i < 12; i++)
                tokens.Add((int)Math.Min(v - 1, Math.Floor(-Math.Log(1 - r.NextDouble()) * 6)));
            ends.Add(tokens.Count);
        }
        Assert.IsLessThan(10_000, tokens.Count, "one job");
        var counts = new long[v];
        foreach (int w in tokens)
            counts[w]++;
        SkipGramEngine Train(int threads, bool pad)
        {
            var e = new SkipGramEngine(v, k) { PadRows = pad };
            e.InitRows(0, v, 2);
            for (int call = 0; call < 2; call++)
                e.Train(tokens.ToArray(), ends.ToArray(), counts, 1, 0.025, 1e-4, 4, 5, 1e-2, threads, (ulong)(3 + call));
            return e;
        }
        var one = Train(1, true);
        var padded = Train(2, true);
        Assert.AreEqual(stride, padded.PaddedStride, "rows padded to a multiple of 16 floats (64 bytes)");
        CollectionAssert.AreEqual(one.Syn0, padded.Syn0, "Syn0: padded rows, the same bits as one thread in place");
        CollectionAssert.AreEqual(one.Syn1, padded.Syn1, "Syn1: padded rows, the same bits as one thread in place");
        CollectionAssert.AreEqual(one.Syn0, Train(2, false).Syn0, "unpadded, two threads: the same bits");
        Assert.IsTrue(one.Syn1.Any(x => x != 0), "the output rows were trained");
    }

    /// <summary>Cosine of rows <paramref name="a"/> and <paramref name="b"/> of a row-major matrix of width <paramref name="k"/>.</summary>
    internal static double Cosine(float[] m, int a, int b, int k)
    {
        double d = 0, na = 0, nb = 0;
        for (int c = 0; c < k; c++)
        {
            d += m[a * k + c] * m[b * k + c];
            na += m[a * k + c] * m[a * k + c];
            nb += m[b * k + c] * m[b * k + c];
        }
        return d / Math.Sqrt(na * nb);
    }
}
