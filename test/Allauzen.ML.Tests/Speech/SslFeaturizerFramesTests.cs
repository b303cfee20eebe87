using Allauzen.ML.Speech;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Speech;

/// <summary>Frame arithmetic, minimum-length padding, chunk stitching and batching.</summary>
[TestClass]
public sealed class SslFeaturizerFramesTests
{
    [TestMethod]
    public void FrameFormulaEqualsTheConvCascadeFor400To200000()
    {
        int[] k = [10, 3, 3, 3, 3, 2, 2], s = [5, 2, 2, 2, 2, 2, 2];
        for (int n = 400; n <= 200_000; n++)
            Assert.AreEqual(FramePlan.CascadeFrames(n, k, s), FramePlan.Frames(n, 320, 400), $"n = {n}");
        Assert.AreEqual(0, FramePlan.CascadeFrames(399, k, s));
        Assert.AreEqual(0, FramePlan.Frames(399, 320, 400));
        Assert.AreEqual(1, FramePlan.Frames(719, 320, 400));
        Assert.AreEqual(2, FramePlan.Frames(720, 320, 400));
        Assert.AreEqual(220, FramePlan.Frames(70663, 320, 400));
    }

    [TestMethod]
    public void ModelFramesFollowTheFormulaAndShortInputIsPadded()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        var rng = new Random(5);
        int[] lengths = [1, 399, 400, 719, 720, 16000, 70663, 200_000];
        var rows = lengths.Select(n => (Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), 16000)).ToArray();
        var o = SpeechFixtures.Options(SpeechFixtures.TinyGroup, SslPooling.None);
        o.ChunkSeconds = 0;
        var data = SpeechFixtures.Samples(ml, rows);
        var t = ml.Transforms.Speech.SslFeaturizer(o).Fit(data);
        var scored = t.Transform(data);
        var counts = scored.GetColumn<int>("FrameCount").ToArray();
        var features = scored.GetColumn<float[]>("Features").ToArray();
        for (int i = 0; i < lengths.Length; i++)
        {
            int expected = Math.Max(1, FramePlan.Frames(lengths[i], 320, 400));
            Assert.AreEqual(expected, counts[i], $"{lengths[i]} samples");
            Assert.AreEqual(expected * 128, features[i].Length);
        }
        t.Dispose();
        // Two passes over the data (one per column read above), so each warning shows twice.
        var padding = messages.Where(m => m.Contains("zero-padded", StringComparison.Ordinal)).Distinct().ToArray();
        Assert.AreEqual(2, padding.Length, string.Join(Environment.NewLine, messages.Where(m => m.Contains("Ssl", StringComparison.Ordinal))));
        StringAssert.Contains(padding[0], "row 0");
        StringAssert.Contains(padding[1], "row 1");
        StringAssert.Contains(padding[1], "399 samples");
    }

    [TestMethod]
    public void ChunkPlanCoversEveryFrameOnceOnTheGrid()
    {
        foreach (int n in new[] { 400, 16000, 48_000, 48_321, 100_000, 200_000, 1_000_003 })
        {
            foreach (var (chunk, ctx) in new[] { (50, 0), (50, 25), (100, 64), (7, 3) })
            {
                var plan = FramePlan.Windows(n, 320, 400, chunk, ctx);
                int total = FramePlan.Frames(n, 320, 400);
                int next = 0;
                foreach (var w in plan)
                {
                    Assert.AreEqual(0, w.Start % 320, "windows start on the frame grid");
                    Assert.AreEqual(next, w.FirstFrame);
                    Assert.AreEqual(w.Start / 320 + w.KeepFrom, w.FirstFrame, "window frame j is global frame start/320 + j");
                    Assert.IsLessThanOrEqualTo(n, w.Start + w.Length);
                    Assert.IsLessThanOrEqualTo(FramePlan.Frames(w.Length, 320, 400), w.KeepFrom + w.KeepCount - 1);
                    Assert.IsLessThanOrEqualTo(ctx, w.KeepFrom);
                    next += w.KeepCount;
                }
                Assert.AreEqual(total, next, $"n = {n}, chunk {chunk}, context {ctx}");
            }
        }
    }

    private static (float[] Whole, float[] Chunked, int Frames) WholeVsChunked(string model, SslLayers layers, double chunkSeconds,
        double contextSeconds, float[] x)
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Samples(ml, (x, 16000));
        var o = SpeechFixtures.Options(model, SslPooling.None);
        o.Layers = layers;
        o.ChunkSeconds = 0;
        var whole = SpeechFixtures.Run(ml, o, data).Single();
        o.ChunkSeconds = chunkSeconds;
        o.ContextSeconds = contextSeconds;
        var chunked = SpeechFixtures.Run(ml, o, data, out var t).Single();
        var frames = t.Transform(data).GetColumn<int>("FrameCount").Single();
        t.Dispose();
        return (whole, chunked, frames);
    }

    private static float[] LongInput()
    {
        // 12.3 s: the utterance three times with a little noise in between, not a multiple of the frame stride.
        var u = SpeechFixtures.Utterance();
        var rng = new Random(2);
        var x = new float[196_807];
        for (int i = 0; i < x.Length; i++)
            x[i] = u[i % u.Length] + (float)((rng.NextDouble() - 0.5) * 1e-3);
        return x;
    }

    [TestMethod]
    public void ChunksAreStitchedOnTheFrameGrid()
    {
        // hidden_states[0] of the layer-norm model depends only on ±64 frames (the positional conv) and the CNN is local,
        // so with ≥ 64 frames (1.28 s) of context the stitched chunks must reproduce the whole-file frames: this checks the
        // 320-sample alignment and the stitching exactly. (Normalisation is per utterance, before chunking.)
        var x = LongInput();
        var (whole, chunked, frames) = WholeVsChunked(SpeechFixtures.Tiny, SslLayers.Layer(0), 2.0, 1.5, x);
        Assert.AreEqual(FramePlan.Frames(x.Length, 320, 400), frames);
        double d = SpeechFixtures.MaxAbsDiff(whole, chunked);
        Console.WriteLine($"layer 0, 2 s chunks + 1.5 s context vs whole file: max diff {d:E2}");
        Assert.IsLessThanOrEqualTo(1e-4, d);
        // Without context the frames near the chunk edges change (so the test above is not vacuous).
        var (_, noContext, _) = WholeVsChunked(SpeechFixtures.Tiny, SslLayers.Layer(0), 2.0, 0, x);
        Assert.IsGreaterThan(1e-2, SpeechFixtures.MaxAbsDiff(whole, noContext));
    }

    [TestMethod]
    public void ChunkedLastLayerStaysCloseToTheWholeFile()
    {
        // The transformer attends over the whole input, so chunked last-layer frames differ from whole-file ones; the
        // documented tolerance is on mean-pooled features relative to their scale. Random-init weights attend almost
        // uniformly (the worst case); trained models are far more local.
        var x = LongInput();
        var (whole, chunked, frames) = WholeVsChunked(SpeechFixtures.Tiny, SslLayers.Last, 4.0, 1.0, x);
        int h = 128;
        var pw = new double[h];
        var pc = new double[h];
        for (int f = 0; f < frames; f++)
        {
            for (int j = 0; j < h; j++)
            {
                pw[j] += whole[f * h + j] / frames;
                pc[j] += chunked[f * h + j] / frames;
            }
        }
        double num = Math.Sqrt(pw.Zip(pc, (a, b) => (a - b) * (a - b)).Sum());
        double den = Math.Sqrt(pw.Sum(a => a * a));
        double cos = pw.Zip(pc, (a, b) => a * b).Sum() / (den * Math.Sqrt(pc.Sum(a => a * a)));
        Console.WriteLine($"last layer, 4 s chunks + 1 s context (12.3 s input): pooled relative L2 error {num / den:F4}, cosine {cos:F5}, frame max diff {SpeechFixtures.MaxAbsDiff(whole, chunked):F3}");
        Assert.IsLessThanOrEqualTo(0.1, num / den);
        Assert.IsGreaterThanOrEqualTo(0.99, cos);
    }

    [TestMethod]
    public void LengthsModelBatchesExactlyAndGroupNormModelDoesNot()
    {
        var ml = new MLContext(seed: 1);
        var u = SpeechFixtures.Utterance();
        var rows = new[] { (u, 16000), (u.AsSpan(0, 16000).ToArray(), 16000), (u.AsSpan(5000, 30001).ToArray(), 16000), (u.AsSpan(0, 300).ToArray(), 16000) };
        var data = SpeechFixtures.Samples(ml, rows);

        var o = SpeechFixtures.Options(SpeechFixtures.TinyLengths, SslPooling.None);
        var batched = SpeechFixtures.Run(ml, o, data, out var t);
        Assert.IsTrue(t.BatchesUtterances, "lengths input + layer norm: batched");
        t.Dispose();
        o.BatchUtterances = false;
        var alone = SpeechFixtures.Run(ml, o, data);
        double d = 0;
        for (int i = 0; i < rows.Length; i++)
            d = Math.Max(d, SpeechFixtures.MaxAbsDiff(alone[i], batched[i]));
        Console.WriteLine($"lengths model: padded batch of {rows.Length} vs one at a time: max diff {d:E2}");
        Assert.IsLessThanOrEqualTo(1e-5, d);

        var group = ml.Transforms.Speech.SslFeaturizer(SpeechFixtures.Options(SpeechFixtures.TinyGroup)).Fit(data);
        Assert.IsFalse(group.BatchesUtterances, "group norm without lengths: one utterance at a time");
        group.Dispose();
        var force = SpeechFixtures.Options(SpeechFixtures.TinyGroup);
        force.BatchUtterances = true;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.Speech.SslFeaturizer(force).Fit(data));
        Assert.AreEqual("BatchUtterances", e.ParamName);
    }
}
