using System.Diagnostics;
using Allauzen.ML.Speech;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Speech;

/// <summary>Issue #14 rows 1-3: sample-rate range and duration checked from the header, non-finite samples and
/// header-only WAVs are errors naming the file (and the row, through the featurizer).</summary>
[TestClass]
public sealed class AudioLimitsTests
{
    private static readonly string Dir = Path.Combine(Path.GetTempPath(), "alz-audio-limits-" + Guid.NewGuid().ToString("N"));

    [ClassInitialize]
    public static void Init(TestContext _) => Directory.CreateDirectory(Dir);

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(Dir, recursive: true);

    private static string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(Dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Pcm16(int rate, int frames) => SpeechFixtures.Riff(1, 1, rate, 16, new byte[frames * 2]);

    private static InvalidDataException Featurize(IDataView data, Action<SslFeaturizerOptions>? configure = null)
    {
        var ml = new MLContext(seed: 1);
        var o = SpeechFixtures.Options(SpeechFixtures.TinyGroup);
        configure?.Invoke(o);
        return Assert.Throws<InvalidDataException>(() => SpeechFixtures.Run(ml, o, data));
    }

    // ---------------------------------------------------------------- row 1: rate range and duration

    [TestMethod]
    public void OneHertzWav_FailsFast_NamingFileRowAndRate()
    {
        string path = Write("one-hertz.wav", Pcm16(rate: 1, frames: 1000)); // ~2 KB: 1000 s at 1 Hz
        var sw = Stopwatch.StartNew();
        var e = Featurize(SpeechFixtures.Paths(new MLContext(), SpeechFixtures.Wav, path));
        Assert.IsLessThan(10.0, sw.Elapsed.TotalSeconds, "the header is rejected before any resampling");
        StringAssert.Contains(e.Message, "row 1");
        StringAssert.Contains(e.Message, "one-hertz.wav");
        StringAssert.Contains(e.Message, "sample rate 1 Hz is outside the accepted range [1000, 384000] Hz");
        StringAssert.Contains(e.Message, "MinSampleRate");
    }

    [TestMethod]
    public void RateAboveMaximumOrBelowAnOverriddenMinimum_IsRejected()
    {
        var high = Assert.Throws<InvalidDataException>(() => WavReader.Decode(Pcm16(400_000, 10), "'hi.wav'"));
        StringAssert.Contains(high.Message, "'hi.wav'");
        StringAssert.Contains(high.Message, "400000 Hz");
        var custom = new AudioLimits(16000, 48000, 600);
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.Decode(Pcm16(8000, 10), "x", custom)).Message, "[16000, 48000]");
        Assert.AreEqual(10, WavReader.Decode(Pcm16(500, 10), "x", new AudioLimits(100, 1000, 600)).Samples.Length, "limits are overridable");
    }

    [TestMethod]
    public void DurationAboveMaxAudioSeconds_IsRejectedFromTheHeader_AndOverridable()
    {
        // The 'data' chunk announces 2 h of 48 kHz stereo float64 (about 5.5 GB) in a file of a few bytes:
        // the limit is checked on what the file holds, before any sample array is allocated.
        byte[] liar = SpeechFixtures.Riff(3, 2, 48000, 64, new byte[16 * 1000]);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => WavReader.Decode(liar, "'x.wav'", new AudioLimits(1000, 384000, 0.01)));
        Assert.IsLessThan(1L << 20, GC.GetAllocatedBytesForCurrentThread() - before);
        StringAssert.Contains(e.Message, "'x.wav'");
        StringAssert.Contains(e.Message, "more than the limit of 0.01 s");
        StringAssert.Contains(e.Message, "MaxAudioSeconds");

        string path = Write("eleven-minutes.wav", SpeechFixtures.Riff(1, 1, 1000, 8, new byte[1000 * 660]));
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.ReadFile(path)).Message, "660 s, more than the limit of 600 s");
        Assert.AreEqual(660_000, WavReader.ReadFile(path, new AudioLimits(1000, 384000, 700)).Samples.Length);

        var viaOptions = Featurize(SpeechFixtures.Paths(new MLContext(), SpeechFixtures.Wav), o => o.MaxAudioSeconds = 0.5);
        StringAssert.Contains(viaOptions.Message, "utt16k.wav");
        StringAssert.Contains(viaOptions.Message, "more than the limit of 0.5 s");
    }

    [TestMethod]
    public void SamplesInput_UsesTheSameRateAndDurationLimits()
    {
        var ml = new MLContext(seed: 1);
        var slow = SpeechFixtures.Samples(ml, (new float[1000], 16000), (new float[2000], 1));
        var e = Featurize(slow, o => o.SampleRateColumnName = "Rate");
        StringAssert.Contains(e.Message, "row 1");
        StringAssert.Contains(e.Message, "sample rate 1 Hz");
        var bad = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Transforms.Speech.SslFeaturizer(new SslFeaturizerOptions { ModelPath = SpeechFixtures.TinyGroup, SampleRate = 500 }));
        StringAssert.Contains(bad.Message, "SampleRate");
        StringAssert.Contains(bad.Message, "[1000, 384000]");
        StringAssert.Contains(Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Transforms.Speech.SslFeaturizer(new SslFeaturizerOptions { ModelPath = SpeechFixtures.TinyGroup, MaxAudioSeconds = 0 })).Message, "MaxAudioSeconds");
        StringAssert.Contains(Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Transforms.Speech.SslFeaturizer(new SslFeaturizerOptions { ModelPath = SpeechFixtures.TinyGroup, MinSampleRate = 8000, MaxSampleRate = 4000 })).Message, "MaxSampleRate");
    }

    [TestMethod]
    public void Resampler_ChecksTheOutputLengthBeforeAllocating()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => new Resampler(1000, 16000).Process(new float[1000], maxOutputSamples: 15999));
        Assert.IsLessThan(1L << 20, GC.GetAllocatedBytesForCurrentThread() - before);
        StringAssert.Contains(e.Message, "16000 samples, more than the limit of 15999");
        Assert.HasCount(16000, new Resampler(1000, 16000).Process(new float[1000], maxOutputSamples: 16000));
    }

    [TestMethod]
    public void DeviceOrFolderAsWavPath_IsRejectedWithoutReading()
    {
        if (OperatingSystem.IsLinux())
            StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.ReadFile("/dev/zero")).Message, "not a regular file (it is a character device)");
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.ReadFile(Dir)).Message, "not a regular file");
    }

    // ---------------------------------------------------------------- row 2: non-finite samples

    [TestMethod]
    [DataRow(SpeechFixtures.Encoding.Float32, float.NaN, "NaN")]
    [DataRow(SpeechFixtures.Encoding.Float32, float.PositiveInfinity, "Infinity")]
    [DataRow(SpeechFixtures.Encoding.Float64, float.NegativeInfinity, "-Infinity")]
    public void NonFiniteFloatSample_IsAnError_NamingFileAndIndex(SpeechFixtures.Encoding enc, float bad, string shown)
    {
        var x = new float[3000];
        x[1234] = bad;
        byte[] wav = SpeechFixtures.WavBytes([x], 16000, enc);
        var e = Assert.Throws<InvalidDataException>(() => WavReader.Decode(wav, "'nan.wav'"));
        StringAssert.Contains(e.Message, "'nan.wav'");
        StringAssert.Contains(e.Message, $"sample 1234 is {shown}");

        string path = Write($"bad-{enc}.wav", wav);
        var f = Featurize(SpeechFixtures.Paths(new MLContext(), SpeechFixtures.Wav, path));
        StringAssert.Contains(f.Message, "row 1");
        StringAssert.Contains(f.Message, $"bad-{enc}.wav");
        StringAssert.Contains(f.Message, "sample 1234");
    }

    [TestMethod]
    public void Float64SampleOverflowingSingle_IsAnError()
    {
        var x = new float[100];
        byte[] wav = SpeechFixtures.WavBytes([x], 16000, SpeechFixtures.Encoding.Float64);
        int data = wav.AsSpan().IndexOf("data"u8) + 8;
        System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(wav.AsSpan(data + 8 * 7), 1e300);
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.Decode(wav, "x")).Message, "sample 7 is Infinity");
    }

    // ---------------------------------------------------------------- row 3: header-only WAVs

    [TestMethod]
    public void HeaderOnlyOrZeroSampleWav_IsAnError_NamingTheFile()
    {
        string empty = Write("header-only.wav", SpeechFixtures.Riff(1, 1, 16000, 16, []));
        var e = Featurize(SpeechFixtures.Paths(new MLContext(), SpeechFixtures.Wav, empty));
        StringAssert.Contains(e.Message, "row 1");
        StringAssert.Contains(e.Message, "header-only.wav");
        StringAssert.Contains(e.Message, "no samples");

        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.Decode(SpeechFixtures.Riff(1, 2, 16000, 16, [1, 2]), "'half.wav'")).Message,
            "'half.wav': no samples", "less than one frame");
        byte[] noData = SpeechFixtures.Riff(1, 1, 16000, 16, []);
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => WavReader.Decode(noData.AsSpan(0, noData.Length - 8), "'cut.wav'")).Message,
            "'cut.wav': truncated: no 'data' chunk");
    }
}
