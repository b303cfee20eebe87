using Allauzen.ML.Speech;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Speech;

/// <summary>Full-output parity with the torch reference (fixtures, atol 1e-4) and the pooling/layer arithmetic.</summary>
[TestClass]
public sealed class SslFeaturizerParityTests
{
    private const int Frames = 220, Hidden = 128, Layers = 3;

    private static float[] Layer(float[] hs, int l) => hs.AsSpan(l * Frames * Hidden, Frames * Hidden).ToArray();

    [TestMethod]
    [DataRow("w2v2_tiny", true)]
    [DataRow("w2v2_tiny_group", false)]
    public void LastHiddenStateAndEveryLayerMatchTorch(string model, bool normalizes)
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav);
        string onnx = Path.Combine(SpeechFixtures.Dir, model + ".onnx");
        var expectedLast = SpeechFixtures.ReadF32(model + ".expected_last_hidden_state.f32");
        var expectedAll = SpeechFixtures.ReadF32(model + ".expected_hidden_states.f32");
        Assert.AreEqual(Frames * Hidden, expectedLast.Length);
        Assert.AreEqual(Layers * Frames * Hidden, expectedAll.Length);

        var t = ml.Transforms.Speech.SslFeaturizer(SpeechFixtures.Options(onnx, SslPooling.None)).Fit(data);
        Assert.AreEqual(normalizes, t.Normalize, "do_normalize read from the model metadata");
        Assert.AreEqual(Hidden, t.HiddenSize);
        Assert.AreEqual(16000, t.ModelSampleRate);
        Assert.AreEqual(320, t.FrameStrideSamples);
        Assert.AreEqual(400, t.ReceptiveFieldSamples);
        Assert.IsFalse(t.BatchesUtterances, "no lengths input: one utterance at a time");
        var scored = t.Transform(data);
        var last = scored.GetColumn<float[]>("Features").Single();
        Assert.AreEqual(Frames, scored.GetColumn<int>("FrameCount").Single());
        double dLast = SpeechFixtures.MaxAbsDiff(expectedLast, last);
        Console.WriteLine($"{model}: last_hidden_state max |C# - torch| = {dLast:E2}");
        // The fixture is torch's float32 output on another machine, compared with ONNX Runtime's (whose MLAS kernels also
        // differ by instruction set): 1e-4 absolute on features of size ~1 is float32 rounding of the encoder (measured
        // 5e-6 / 1.9e-5 for the two models), with room for another CPU's summation order, not bit equality.
        Assert.IsLessThanOrEqualTo(1e-4, dLast);
        t.Dispose();

        for (int l = 0; l < Layers; l++)
        {
            var o = SpeechFixtures.Options(onnx, SslPooling.None);
            o.Layers = SslLayers.Layer(l);
            var got = SpeechFixtures.Run(ml, o, data).Single();
            double d = SpeechFixtures.MaxAbsDiff(Layer(expectedAll, l), got);
            Console.WriteLine($"{model}: hidden_states[{l}] max diff = {d:E2}");
            Assert.IsLessThanOrEqualTo(1e-4, d);
        }
        // Layer(-1) is the last layer, which equals last_hidden_state (HF convention).
        var minus1 = SpeechFixtures.Options(onnx, SslPooling.None);
        minus1.Layers = SslLayers.Layer(-1);
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(expectedLast, SpeechFixtures.Run(ml, minus1, data).Single()));
    }

    [TestMethod]
    public void GoldenStatisticsAndPooledVectors()
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav);
        var expected = SpeechFixtures.Golden.GetProperty("models").GetProperty("w2v2_tiny").GetProperty("expected");
        var last = SpeechFixtures.ReadF32("w2v2_tiny.expected_last_hidden_state.f32");

        var frames = SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.Tiny, SslPooling.None), data).Single();
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(SpeechFixtures.Floats(expected.GetProperty("frame0_first8")), frames.AsSpan(0, 8)));
        Assert.AreEqual(expected.GetProperty("last_mean").GetDouble(), frames.Average(x => (double)x), 1e-4);

        var mean = SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.Tiny, SslPooling.Mean), data).Single();
        Assert.AreEqual(Hidden, mean.Length);
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(SpeechFixtures.Floats(expected.GetProperty("mean_pooled_first8")), mean.AsSpan(0, 8)));
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(Pool(last, (a, b) => a + b, 0, x => x / Frames), mean));

        var max = SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.Tiny, SslPooling.Max), data).Single();
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(Pool(last, Math.Max, double.NegativeInfinity, x => x), max));

        var ms = SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.Tiny, SslPooling.MeanStd), data).Single();
        Assert.AreEqual(2 * Hidden, ms.Length);
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(mean, ms.AsSpan(0, Hidden)));
        var std = new float[Hidden];
        for (int j = 0; j < Hidden; j++)
        {
            double m = 0, s = 0;
            for (int f = 0; f < Frames; f++)
                m += last[f * Hidden + j];
            m /= Frames;
            for (int f = 0; f < Frames; f++)
                s += Math.Pow(last[f * Hidden + j] - m, 2);
            std[j] = (float)Math.Sqrt(s / Frames);
        }
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(std, ms.AsSpan(Hidden, Hidden)));
        Assert.IsTrue(std.Min() > 0.01f, "a constant feature would make the std check vacuous");
    }

    private static float[] Pool(float[] x, Func<double, double, double> op, double init, Func<double, double> finish)
    {
        var r = new float[Hidden];
        for (int j = 0; j < Hidden; j++)
        {
            double acc = init;
            for (int f = 0; f < Frames; f++)
                acc = op(acc, x[f * Hidden + j]);
            r[j] = (float)finish(acc);
        }
        return r;
    }

    [TestMethod]
    public void AverageAndWeightedSumOfLayers()
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav);
        var hs = SpeechFixtures.ReadF32("w2v2_tiny_group.expected_hidden_states.f32");
        float[] w = [0.2f, -0.5f, 1.3f];
        var avgExpected = new float[Frames * Hidden];
        var wsExpected = new float[Frames * Hidden];
        for (int l = 0; l < Layers; l++)
        {
            for (int i = 0; i < avgExpected.Length; i++)
            {
                avgExpected[i] += hs[l * Frames * Hidden + i] / Layers;
                wsExpected[i] += w[l] * hs[l * Frames * Hidden + i];
            }
        }
        var o = SpeechFixtures.Options(SpeechFixtures.TinyGroup, SslPooling.None);
        o.Layers = SslLayers.Average;
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(avgExpected, SpeechFixtures.Run(ml, o, data).Single()));
        o.Layers = SslLayers.WeightedSum(w);
        Assert.IsLessThanOrEqualTo(2e-4, SpeechFixtures.MaxAbsDiff(wsExpected, SpeechFixtures.Run(ml, o, data).Single()));

        // Wrong number of weights, or a layer that does not exist: errors naming the option.
        o.Layers = SslLayers.WeightedSum(1, 2);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.Speech.SslFeaturizer(o).Fit(data));
        StringAssert.Contains(e.Message, "3 layers");
        Assert.AreEqual("Layers", e.ParamName);
        o.Layers = SslLayers.Layer(3);
        Assert.AreEqual("Layers", Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.Speech.SslFeaturizer(o).Fit(data)).ParamName);
        // The lengths model has no hidden_states output: an all-layers policy is refused clearly.
        var noLayers = new SslFeaturizerOptions { ModelPath = SpeechFixtures.TinyLengths, Layers = SslLayers.Average };
        StringAssert.Contains(Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.Speech.SslFeaturizer(noLayers).Fit(data)).Message, "hidden_states");
    }

    [TestMethod]
    public void PathsBytesAndSamplesGiveTheSameFeatures()
    {
        var ml = new MLContext(seed: 1);
        var viaPath = SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.Tiny), SpeechFixtures.Paths(ml, SpeechFixtures.Wav)).Single();
        var bytes = ml.Data.LoadFromEnumerable(new[] { new SpeechFixtures.BytesRow { Audio = File.ReadAllBytes(SpeechFixtures.Wav) } });
        var viaBytes = SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.Tiny), bytes).Single();
        var samples = SpeechFixtures.Samples(ml, (SpeechFixtures.Utterance(), 16000));
        var o = SpeechFixtures.Options(SpeechFixtures.Tiny);
        o.SampleRateColumnName = "Rate";
        var viaSamples = SpeechFixtures.Run(ml, o, samples).Single();
        CollectionAssert.AreEqual(viaPath, viaBytes);
        CollectionAssert.AreEqual(viaPath, viaSamples);
    }

    [TestMethod]
    public void NormalisationFollowsMetadataUnlessOverridden()
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav);
        var expectedLast = SpeechFixtures.ReadF32("w2v2_tiny.expected_last_hidden_state.f32");
        var o = SpeechFixtures.Options(SpeechFixtures.Tiny, SslPooling.None);
        o.Normalize = false;
        var raw = SpeechFixtures.Run(ml, o, data, out var t).Single();
        Assert.IsFalse(t.Normalize);
        Assert.IsGreaterThan(0.01, SpeechFixtures.MaxAbsDiff(expectedLast, raw), "without normalisation the output differs");
        t.Dispose();
        // Normalising by hand and feeding samples with Normalize = false gives the reference again.
        var x = SpeechFixtures.Utterance();
        AudioFrontEnd.Normalize(x);
        var pre = SpeechFixtures.Run(ml, o, SpeechFixtures.Samples(ml, (x, 16000))).Single();
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(expectedLast, pre));
    }

    [TestMethod]
    public void ResampledInputIsCloseToTheNativeRate()
    {
        // The utterance upsampled to 44.1 kHz (outside the test: by our resampler) and read back at 44.1 kHz gives features
        // close to the 16 kHz ones: the front end resamples before the encoder.
        var ml = new MLContext(seed: 1);
        var x = SpeechFixtures.Utterance();
        var up = new Resampler(16000, 44100).Process(x);
        var wav44 = Path.Combine(Path.GetTempPath(), $"alz-speech-{Guid.NewGuid():N}.wav");
        File.WriteAllBytes(wav44, SpeechFixtures.WavBytes([up], 44100, SpeechFixtures.Encoding.Float32));
        try
        {
            var a = SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.TinyGroup), SpeechFixtures.Paths(ml, SpeechFixtures.Wav)).Single();
            var b = SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.TinyGroup), SpeechFixtures.Paths(ml, wav44)).Single();
            double d = SpeechFixtures.MaxAbsDiff(a, b);
            double scale = a.Max(Math.Abs);
            Console.WriteLine($"16k vs 16k->44.1k->16k pooled features: max diff {d:E2} (max |feature| {scale:F2})");
            Assert.IsLessThanOrEqualTo(0.02 * scale, d);
        }
        finally
        {
            File.Delete(wav44);
        }
    }

    [TestMethod]
    public void ForeignEncoderWithoutMetadata()
    {
        // Any ONNX model with a dynamic sample axis: other names, no metadata, fixed batch of 1, hidden size read from the
        // output shape or (when dynamic) from a probe run.
        var ml = new MLContext(seed: 1);
        var x = SpeechFixtures.Utterance().AsSpan(0, 16000).ToArray();
        foreach (bool dynamicHidden in new[] { false, true })
        {
            var (model, w, output) = SpeechFixtures.ForeignEncoder(8, dynamicHidden);
            var o = new SslFeaturizerOptions { ModelBytes = model, Pooling = SslPooling.None, InputColumnName = "Audio" };
            var got = SpeechFixtures.Run(ml, o, SpeechFixtures.Samples(ml, (x, 16000)), out var t).Single();
            Assert.AreEqual(8, t.HiddenSize);
            Assert.AreEqual(1, t.LayerCount);
            Assert.IsFalse(t.Normalize);
            var expected = SpeechFixtures.ForeignReference(x, w, 8);
            Assert.AreEqual(49 * 8, got.Length);
            Assert.IsLessThanOrEqualTo(1e-5, SpeechFixtures.MaxAbsDiff(expected, got));
            t.Dispose();
            o.LastHiddenStateTensorName = output;
            o.InputTensorName = "wave";
            CollectionAssert.AreEqual(got, SpeechFixtures.Run(ml, o, SpeechFixtures.Samples(ml, (x, 16000))).Single());
            o.InputTensorName = "nope";
            StringAssert.Contains(Assert.Throws<ArgumentOutOfRangeException>(() => SpeechFixtures.Run(ml, o, SpeechFixtures.Samples(ml, (x, 16000)))).Message, "wave");
        }
    }
    private sealed class InputValuesRow
    {
        [VectorType]
        public float[] input_values { get; set; } = [];
    }

    [TestMethod]
    public void SameFramesAsMlNetApplyOnnxModel()
    {
        // Cross-check with ML.NET's own OnnxTransformer on the same normalised samples (batch of 1, flat output).
        var ml = new MLContext(seed: 1);
        var x = SpeechFixtures.Utterance();
        var ours = SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.Tiny, SslPooling.None), SpeechFixtures.Samples(ml, (x, 16000))).Single();
        AudioFrontEnd.Normalize(x);
        var rows = ml.Data.LoadFromEnumerable(new[] { new InputValuesRow { input_values = x } });
        var apply = ml.Transforms.ApplyOnnxModel(["last_hidden_state"], ["input_values"], SpeechFixtures.Tiny).Fit(rows);
        var theirs = apply.Transform(rows).GetColumn<float[]>("last_hidden_state").Single();
        apply.Dispose();
        Assert.AreEqual(0.0, SpeechFixtures.MaxAbsDiff(theirs, ours));
    }
}
