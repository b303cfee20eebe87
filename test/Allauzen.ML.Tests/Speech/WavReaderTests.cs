using Allauzen.ML.Speech;

namespace Allauzen.ML.Tests.Speech;

[TestClass]
public sealed class WavReaderTests
{
    [TestMethod]
    public void ReadsTheFixtureUtteranceExactly()
    {
        var a = WavReader.ReadFile(SpeechFixtures.Wav);
        var wav = SpeechFixtures.Golden.GetProperty("wav");
        Assert.AreEqual(wav.GetProperty("num_samples").GetInt32(), a.Samples.Length);
        Assert.AreEqual(16000, a.SampleRate);
        Assert.AreEqual(16, a.BitsPerSample);
        var first = wav.GetProperty("first32_int16").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        for (int i = 0; i < first.Length; i++)
            Assert.AreEqual(first[i], (int)(a.Samples[i] * 32768), $"sample {i}");
        var mid = wav.GetProperty("samples_1000_1015_int16").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        for (int i = 0; i < mid.Length; i++)
            Assert.AreEqual(mid[i], (int)(a.Samples[1000 + i] * 32768), $"sample {1000 + i}");
        double mean = a.Samples.Average(x => (double)x);
        Assert.AreEqual(wav.GetProperty("float_mean").GetDouble(), mean, 1e-7);
    }

    [TestMethod]
    public void NormalisationMatchesTheGoldenValues()
    {
        var x = SpeechFixtures.Utterance();
        AudioFrontEnd.Normalize(x);
        var n = SpeechFixtures.Golden.GetProperty("normalization");
        var first8 = SpeechFixtures.Floats(n.GetProperty("normalized_first8"));
        var mid8 = SpeechFixtures.Floats(n.GetProperty("normalized_1000_1007"));
        Assert.IsLessThanOrEqualTo(1e-5, SpeechFixtures.MaxAbsDiff(first8, x.AsSpan(0, 8)));
        Assert.IsLessThanOrEqualTo(1e-5, SpeechFixtures.MaxAbsDiff(mid8, x.AsSpan(1000, 8)));
    }

    [TestMethod]
    [DataRow(SpeechFixtures.Encoding.Pcm8, false, 1.0 / 128)]
    [DataRow(SpeechFixtures.Encoding.Pcm16, false, 1.0 / 32768)]
    [DataRow(SpeechFixtures.Encoding.Pcm24, false, 1.0 / 8388608)]
    [DataRow(SpeechFixtures.Encoding.Pcm32, false, 1e-9)]
    [DataRow(SpeechFixtures.Encoding.Float32, false, 1e-7)]
    [DataRow(SpeechFixtures.Encoding.Float64, false, 1e-7)]
    [DataRow(SpeechFixtures.Encoding.Pcm16, true, 1.0 / 32768)]
    [DataRow(SpeechFixtures.Encoding.Pcm24, true, 1.0 / 8388608)]
    [DataRow(SpeechFixtures.Encoding.Float32, true, 1e-7)]
    public void ReadsEveryEncodingMonoAndStereo(SpeechFixtures.Encoding enc, bool extensible, double quantum)
    {
        const int n = 1001, rate = 22050;
        var left = Enumerable.Range(0, n).Select(i => (float)(0.8 * Math.Sin(2 * Math.PI * 440 * i / rate))).ToArray();
        var right = Enumerable.Range(0, n).Select(i => (float)(0.3 * Math.Cos(2 * Math.PI * 1234 * i / rate))).ToArray();

        var mono = WavReader.Decode(SpeechFixtures.WavBytes([left], rate, enc, extensible, extraChunks: true), "mono");
        Assert.AreEqual(n, mono.Samples.Length);
        Assert.AreEqual(rate, mono.SampleRate);
        Assert.AreEqual(1, mono.Channels);
        Assert.IsLessThanOrEqualTo(quantum * 0.51 + 1e-9, SpeechFixtures.MaxAbsDiff(left, mono.Samples));

        var stereo = WavReader.Decode(SpeechFixtures.WavBytes([left, right], rate, enc, extensible), "stereo");
        Assert.AreEqual(2, stereo.Channels);
        var mix = left.Zip(right, (l, r) => (l + r) / 2).ToArray();
        Assert.IsLessThanOrEqualTo(quantum * 0.51 + 1e-7, SpeechFixtures.MaxAbsDiff(mix, stereo.Samples));
    }

    [TestMethod]
    public void IntegerScalingUsesTwoToTheBitsMinusOne()
    {
        // Extremes of each format map to −1 and (2^(b−1) − 1)/2^(b−1).
        var pcm8 = WavReader.Decode(SpeechFixtures.Riff(1, 1, 8000, 8, [0, 128, 255, 0]), "pcm8");
        CollectionAssert.AreEqual(new[] { -1f, 0f, 127f / 128 }, pcm8.Samples.Take(3).ToArray());
        var pcm24 = WavReader.Decode(SpeechFixtures.Riff(1, 1, 8000, 24, [0x00, 0x00, 0x80, 0xFF, 0xFF, 0x7F]), "pcm24");
        CollectionAssert.AreEqual(new[] { -1f, 8388607f / 8388608 }, pcm24.Samples);
    }

    [TestMethod]
    public void BadFilesGiveClearErrors()
    {
        var good = SpeechFixtures.WavBytes([new float[100]], 16000, SpeechFixtures.Encoding.Pcm16);
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.Decode("hello world, not audio"u8.ToArray(), "x.wav")).Message, "not a WAV file");
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.Decode(good.AsSpan(0, 8), "x.wav")).Message, "shorter than a RIFF header");
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.Decode(good.AsSpan(0, good.Length - 20), "x.wav")).Message, "truncated");
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.Decode(good.AsSpan(0, 30), "x.wav")).Message, "truncated");
        var adpcm = SpeechFixtures.Riff(2, 1, 16000, 4, new byte[64]);
        var e = Assert.Throws<InvalidDataException>(() => WavReader.Decode(adpcm, "'speech.wav'"));
        StringAssert.Contains(e.Message, "'speech.wav'");
        StringAssert.Contains(e.Message, "unsupported codec");
        StringAssert.Contains(e.Message, "ADPCM");
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.Decode(SpeechFixtures.Riff(1, 1, 16000, 12, new byte[64]), "x")).Message, "12 bits");
    }
}
