using Allauzen.ML.Speech;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Speech;

[TestClass]
public sealed class SpeechEncodersTests
{
    /// <summary>ln(Σₖ mel[m,k]·|Σₙ w[n]x[320f+n]e^{−2πikn/512}|² + 1e-6), in double.</summary>
    private static double[] Reference(float[] x, int frame, int melBins)
    {
        var fb = SpeechEncoders.MelFilterBank(melBins, 257, 16000, 512);
        var power = new double[257];
        for (int k = 0; k < 257; k++)
        {
            double re = 0, im = 0;
            for (int n = 0; n < 400; n++)
            {
                double w = 0.5 - 0.5 * Math.Cos(2 * Math.PI * n / 400);
                double v = w * x[frame * 320 + n];
                re += v * Math.Cos(2 * Math.PI * k * n / 512);
                im -= v * Math.Sin(2 * Math.PI * k * n / 512);
            }
            power[k] = re * re + im * im;
        }
        var r = new double[melBins];
        for (int m = 0; m < melBins; m++)
        {
            double s = 0;
            for (int k = 0; k < 257; k++)
                s += fb[m * 257 + k] * power[k];
            r[m] = Math.Log(s + 1e-6);
        }
        return r;
    }

    [TestMethod]
    public void LogMelEncoderMatchesTheDirectComputation()
    {
        var ml = new MLContext(seed: 1);
        var o = new SslFeaturizerOptions { ModelBytes = SpeechEncoders.LogMelSpectrogram(), Pooling = SslPooling.None };
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav);
        var t = ml.Transforms.Speech.SslFeaturizer(o).Fit(data);
        Assert.AreEqual(80, t.HiddenSize);
        Assert.IsFalse(t.Normalize);
        Assert.AreEqual(320, t.FrameStrideSamples);
        var frames = t.Transform(data).GetColumn<float[]>("Features").Single();
        Assert.AreEqual(220 * 80, frames.Length);
        var x = SpeechFixtures.Utterance();
        double maxDiff = 0;
        foreach (int f in new[] { 0, 1, 50, 110, 219 })
        {
            var r = Reference(x, f, 80);
            for (int m = 0; m < 80; m++)
                maxDiff = Math.Max(maxDiff, Math.Abs(r[m] - frames[f * 80 + m]));
        }
        Console.WriteLine($"log-mel ONNX vs direct DFT: max |diff| = {maxDiff:E2} (natural log units)");
        Assert.IsLessThanOrEqualTo(1e-3, maxDiff);
        t.Dispose();
    }

    [TestMethod]
    public void MelFilterBankCoversTheSpectrum()
    {
        var fb = SpeechEncoders.MelFilterBank(80, 257, 16000, 512);
        // Every mel band has weight, triangles peak at most at 1, and interior DFT bins are covered by two bands summing to 1.
        for (int m = 0; m < 80; m++)
        {
            var row = fb.AsSpan(m * 257, 257).ToArray();
            Assert.IsGreaterThan(0f, row.Sum());
            Assert.IsLessThanOrEqualTo(1f, row.Max());
        }
        for (int k = 10; k < 240; k++) // between the first and the last band centres (≈ 7.77 kHz)
        {
            float s = 0;
            for (int m = 0; m < 80; m++)
                s += fb[m * 257 + k];
            Assert.AreEqual(1f, s, 1e-4f, $"bin {k}");
        }
    }
}
