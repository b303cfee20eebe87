using Allauzen.ML.Speech;

namespace Allauzen.ML.Tests.Speech;

[TestClass]
public sealed class ResamplerTests
{
    private static float[] Sine(double freq, int rate, int n, double amp = 0.5) =>
        Enumerable.Range(0, n).Select(i => (float)(amp * Math.Sin(2 * Math.PI * freq * i / rate))).ToArray();

    /// <summary>Amplitude of the component at <paramref name="freq"/> (least squares on sin/cos, Hann-free since the fit is exact for a pure tone).</summary>
    private static double Amplitude(ReadOnlySpan<float> x, double freq, int rate)
    {
        double s = 0, c = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double ph = 2 * Math.PI * freq * i / rate;
            s += x[i] * Math.Sin(ph);
            c += x[i] * Math.Cos(ph);
        }
        return 2 * Math.Sqrt(s * s + c * c) / x.Length;
    }

    private static double Rms(ReadOnlySpan<float> x)
    {
        double ss = 0;
        foreach (var v in x)
            ss += (double)v * v;
        return Math.Sqrt(ss / x.Length);
    }

    [TestMethod]
    public void Sine44k1To16kKeepsItsFrequencyAndAmplitude()
    {
        const int n = 44100;
        var y = new Resampler(44100, 16000).Process(Sine(1000, 44100, n));
        Assert.AreEqual(16000, y.Length);
        // Away from the edges the output is the same sine sampled at 16 kHz.
        var ideal = Sine(1000, 16000, 16000);
        double maxErr = SpeechFixtures.MaxAbsDiff(y.AsSpan(200, 15600), ideal.AsSpan(200, 15600));
        Console.WriteLine($"1 kHz sine 44.1k -> 16k: max |y - ideal| = {maxErr:E2} ({20 * Math.Log10(maxErr / 0.5):F1} dB re amplitude)");
        Assert.IsLessThanOrEqualTo(0.5e-3, maxErr); // < −60 dB
        // The peak of the spectrum is at 1 kHz.
        var interior = y.AsSpan(200, 15600);
        double at1k = Amplitude(interior, 1000, 16000);
        foreach (double f in new[] { 900.0, 950, 1050, 1100, 2000, 3000 })
            Assert.IsLessThan(at1k / 100, Amplitude(interior, f, 16000), $"{f} Hz");
        Assert.AreEqual(0.5, at1k, 1e-3);
    }

    [TestMethod]
    [DataRow(12000.0)]
    [DataRow(9000.0)]
    [DataRow(20000.0)]
    public void ToneAboveTheOutputNyquistIsRemovedBelowMinus60dB(double freq)
    {
        var y = new Resampler(44100, 16000).Process(Sine(freq, 44100, 44100));
        double rel = Rms(y.AsSpan(200, 15600)) / (0.5 / Math.Sqrt(2));
        double db = 20 * Math.Log10(rel);
        Console.WriteLine($"{freq} Hz through 44.1k -> 16k: residual {db:F1} dB");
        Assert.IsLessThan(-60.0, db);
    }

    [TestMethod]
    [DataRow(8000, 16000, 1000.0)]
    [DataRow(22050, 16000, 3000.0)]
    [DataRow(48000, 16000, 5000.0)]
    [DataRow(11025, 16000, 2000.0)]
    [DataRow(16000, 44100, 6000.0)]
    public void OtherRatesKeepPassbandTones(int from, int to, double freq)
    {
        var r = new Resampler(from, to);
        var y = r.Process(Sine(freq, from, from));
        Assert.AreEqual((long)Math.Ceiling((double)from * to / from), y.Length);
        var ideal = Sine(freq, to, y.Length);
        int edge = to / 50;
        double maxErr = SpeechFixtures.MaxAbsDiff(y.AsSpan(edge, y.Length - 2 * edge), ideal.AsSpan(edge, y.Length - 2 * edge));
        Assert.IsLessThanOrEqualTo(1e-3, maxErr, $"{from} -> {to}, {freq} Hz");
    }

    [TestMethod]
    public void LengthIsTheCeilingAndDcPasses()
    {
        var r = new Resampler(44100, 16000);
        Assert.AreEqual(1L, r.OutputLength(1));
        Assert.AreEqual(363L, r.OutputLength(1000)); // ceil(1000·160/441) = ceil(362.8)
        var y = r.Process(Enumerable.Repeat(0.25f, 4410).ToArray());
        Assert.AreEqual(1600, y.Length);
        Assert.IsLessThanOrEqualTo(1e-4, SpeechFixtures.MaxAbsDiff(Enumerable.Repeat(0.25f, 1200).ToArray(), y.AsSpan(200, 1200)));
    }

    [TestMethod]
    public void UntabulatedRatioMatchesTheTable()
    {
        // 44100 -> 16001 has 16001 phases (> MaxTabulatedPhases): the per-sample path must agree with the sine.
        var y = new Resampler(44100, 16001).Process(Sine(1000, 44100, 8820));
        var ideal = Sine(1000, 16001, y.Length);
        Assert.IsLessThanOrEqualTo(1e-3, SpeechFixtures.MaxAbsDiff(y.AsSpan(200, y.Length - 400), ideal.AsSpan(200, y.Length - 400)));
    }
}
