using Allauzen.ML.Speech;
using Allauzen.ML.Tests.Mlp;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Speech;

/// <summary>The estimator contract, persistence, bad inputs, progress, cancellation, device and option checks.</summary>
[TestClass]
public sealed class SslFeaturizerContractTests
{
    private static string _tmp = "";

    [ClassInitialize]
    public static void Init(TestContext _)
    {
        _tmp = Path.Combine(Path.GetTempPath(), "alz-speech-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_tmp);
        var u = SpeechFixtures.Utterance();
        // A second utterance: the first 1.5 s at 22.05 kHz stereo PCM24 (resampled and down-mixed by the front end).
        var part = new Resampler(16000, 22050).Process(u.AsSpan(0, 24000));
        File.WriteAllBytes(Path.Combine(_tmp, "b.wav"), SpeechFixtures.WavBytes([part, part.Select(v => v * 0.5f).ToArray()], 22050, SpeechFixtures.Encoding.Pcm24));
        File.WriteAllBytes(Path.Combine(_tmp, "not-riff.wav"), "this is not audio at all"u8.ToArray());
        var good = File.ReadAllBytes(SpeechFixtures.Wav);
        File.WriteAllBytes(Path.Combine(_tmp, "truncated.wav"), good.AsSpan(0, 2000).ToArray());
        File.WriteAllBytes(Path.Combine(_tmp, "adpcm.wav"), SpeechFixtures.Riff(2, 1, 16000, 4, new byte[512]));
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        try
        {
            Directory.Delete(_tmp, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string Tmp(string name) => Path.Combine(_tmp, name);

    private sealed class FloatAudioRow
    {
        public float Audio { get; set; }
    }

    [TestMethod]
    [DataRow(SslPooling.Mean)]
    [DataRow(SslPooling.None)]
    public void EstimatorContractHolds(SslPooling pooling)
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav, Tmp("b.wav"));
        var wrongType = ml.Data.LoadFromEnumerable(new[] { new FloatAudioRow { Audio = 1 } });
        var missing = ml.Data.LoadFromEnumerable(new[] { new SpeechFixtures.BytesRow() });
        var renamed = ml.Transforms.CopyColumns("Other", "Audio").Append(ml.Transforms.DropColumns("Audio")).Fit(missing).Transform(missing);
        var report = EstimatorContract.Check(
            ml.Transforms.Speech.SslFeaturizer(SpeechFixtures.Options(SpeechFixtures.Tiny, pooling)), data, data, ["Features"],
            [(wrongType, "Audio", true), (renamed, "Audio", true)], onnx: false);
        Assert.AreEqual(0.0, report.RowMapperMaxDiff, "PredictionEngine's row mapper equals the batched Transform");
        var schema = report.Transformer.GetOutputSchema(data.Schema);
        if (pooling == SslPooling.Mean)
            Assert.AreEqual(128, ((VectorDataViewType)schema["Features"].Type).Size);
        else
            Assert.AreEqual(NumberDataViewType.Int32, schema["FrameCount"].Type);
        ((IDisposable)report.Transformer).Dispose();
    }

    [TestMethod]
    public void SaveLoadEmbeddedOrByPath()
    {
        AppContext.SetSwitch(SslFeaturizerOptions.AllowReferencedModelFilesSwitch, true); // by-path loading is opt-in
        try
        {
            SaveLoadEmbeddedOrByPathCore();
        }
        finally
        {
            AppContext.SetSwitch(SslFeaturizerOptions.AllowReferencedModelFilesSwitch, false);
        }
    }

    private static void SaveLoadEmbeddedOrByPathCore()
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav, Tmp("b.wav"));
        string modelCopy = Tmp("model-copy.onnx");
        File.Copy(SpeechFixtures.Tiny, modelCopy, overwrite: true);
        foreach (bool embed in new[] { true, false })
        {
            var o = new SslFeaturizerOptions { ModelPath = modelCopy, EmbedModel = embed, Pooling = SslPooling.MeanStd, Layers = SslLayers.WeightedSum(0.5f, 0.25f, 0.25f) };
            var t = ml.Transforms.Speech.SslFeaturizer(o).Fit(data);
            var expected = t.Transform(data).GetColumn<float[]>("Features").ToArray();
            string zip = Tmp($"featurizer-{embed}.zip");
            ml.Model.Save(t, data.Schema, zip);
            long size = new FileInfo(zip).Length;
            Assert.AreEqual(embed, size > new FileInfo(modelCopy).Length / 2, $"embedded: {embed}, zip {size} bytes");
            var ml2 = new MLContext(seed: 2);
            ml2.UseAllauzen();
            var loaded = ml2.Model.Load(zip, out _);
            var actual = loaded.Transform(data).GetColumn<float[]>("Features").ToArray();
            for (int i = 0; i < expected.Length; i++)
                CollectionAssert.AreEqual(expected[i], actual[i], $"row {i} after load (embed {embed})");
            var inner = loaded is SslFeaturizerTransformer s ? s : ((TransformerChain<ITransformer>)loaded).OfType<SslFeaturizerTransformer>().Single();
            Assert.AreEqual(SslLayerPolicy.WeightedSum, inner.Layers.Policy);
            ((IDisposable)inner).Dispose();
            t.Dispose();
        }

        // By path: a changed or missing model file is a clear error.
        string byPath = Tmp("featurizer-False.zip");
        var bytes = File.ReadAllBytes(modelCopy);
        bytes[^1] ^= 1;
        File.WriteAllBytes(modelCopy, bytes);
        var ml3 = new MLContext();
        ml3.UseAllauzen();
        var changed = Assert.Throws<Exception>(() => ml3.Model.Load(byPath, out _));
        StringAssert.Contains(Flatten(changed), "has changed");
        File.Delete(modelCopy);
        var gone = Assert.Throws<Exception>(() => ml3.Model.Load(byPath, out _));
        StringAssert.Contains(Flatten(gone), "model-copy.onnx");
        // The embedded zip does not need the file.
        var stillOk = ml3.Model.Load(Tmp("featurizer-True.zip"), out _);
        Assert.AreEqual(2, stillOk.Transform(data).GetColumn<float[]>("Features").Count());
    }

    private static string Flatten(Exception e)
    {
        var s = "";
        for (Exception? x = e; x is not null; x = x.InnerException)
            s += x.Message + " | ";
        return s;
    }

    [TestMethod]
    [DataRow("not-riff.wav", "not a WAV file")]
    [DataRow("truncated.wav", "truncated")]
    [DataRow("adpcm.wav", "unsupported codec")]
    [DataRow("missing.wav", "file not found")]
    public void BadFilesNameTheFileAndTheRow(string file, string message)
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav, Tmp("b.wav"), Tmp(file));
        var t = ml.Transforms.Speech.SslFeaturizer(SpeechFixtures.Options(SpeechFixtures.TinyGroup)).Fit(data);
        var e = Assert.Throws<InvalidDataException>(() => t.Transform(data).GetColumn<float[]>("Features").ToArray());
        StringAssert.Contains(e.Message, "row 2");
        StringAssert.Contains(e.Message, "'Audio'");
        StringAssert.Contains(e.Message, file);
        StringAssert.Contains(e.Message, message);
        t.Dispose();
    }

    [TestMethod]
    public void BadSamplesAndRates()
    {
        var ml = new MLContext(seed: 1);
        var o = SpeechFixtures.Options(SpeechFixtures.TinyGroup);
        o.SampleRateColumnName = "Rate";
        var nan = SpeechFixtures.Samples(ml, (new float[1000], 16000), ([0.1f, float.NaN, 0.2f], 16000));
        var e = Assert.Throws<InvalidDataException>(() => SpeechFixtures.Run(ml, o, nan));
        StringAssert.Contains(e.Message, "row 1");
        StringAssert.Contains(e.Message, "NaN");
        var zeroRate = SpeechFixtures.Samples(ml, (new float[1000], 0));
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => SpeechFixtures.Run(ml, o, zeroRate)).Message, "'Rate'");
        var empty = SpeechFixtures.Paths(ml, "");
        StringAssert.Contains(Assert.Throws<InvalidDataException>(() => SpeechFixtures.Run(ml, SpeechFixtures.Options(SpeechFixtures.TinyGroup), empty)).Message, "empty");
        // A sample-rate column of the wrong type is a schema error naming it.
        o.SampleRateColumnName = "Audio2";
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.Speech.SslFeaturizer(o).Fit(SpeechFixtures.Samples(ml, (new float[1000], 16000))));
        StringAssert.Contains(e2.Message, "'Audio2'");
    }

    [TestMethod]
    public void ExportToOnnxFailsClearly()
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav);
        var t = ml.Transforms.Speech.SslFeaturizer(SpeechFixtures.Options(SpeechFixtures.TinyGroup)).Fit(data);
        var e = Assert.Throws<NotSupportedException>(() => ml.Model.ExportToOnnx(t, data, new MemoryStream()));
        StringAssert.Contains(e.Message, "SslFeaturizer");
        t.Dispose();
    }

    [TestMethod]
    public void ProgressAndCancellation()
    {
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav, Tmp("b.wav"), SpeechFixtures.Wav);
        var reports = new List<SslFeaturizerProgress>();
        var o = SpeechFixtures.Options(SpeechFixtures.TinyGroup);
        o.ScoringBatchSize = 2;
        o.Progress = new SyncProgress<SslFeaturizerProgress>(reports.Add);
        var t = ml.Transforms.Speech.SslFeaturizer(o).Fit(data);
        Assert.AreEqual(3, t.Transform(data).GetColumn<float[]>("Features").Count());
        Assert.AreEqual(2, reports.Count, "one report per scored batch of 2 rows");
        Assert.AreEqual(3L, reports[^1].Rows);
        Assert.AreEqual(2 * 70663 / 16000.0 + 1.5, reports[^1].AudioSeconds, 0.01);
        Assert.IsGreaterThan(0.0, reports[^1].RealTimeFactor);
        Assert.AreEqual(reports[^1], t.Statistics);

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        t.CancellationToken = cts.Token;
        Assert.Throws<OperationCanceledException>(() => t.Transform(data).GetColumn<float[]>("Features").ToArray());

        // Cancelled while a long dataset is being featurized: the next batch stops.
        using var midway = new CancellationTokenSource();
        t.CancellationToken = midway.Token;
        t.ScoringBatchSize = 1;
        long before = t.Statistics.Rows;
        t.Progress = new SyncProgress<SslFeaturizerProgress>(_ => midway.Cancel());
        int seen = 0;
        Assert.Throws<OperationCanceledException>(() =>
        {
            foreach (var _ in t.Transform(data).GetColumn<float[]>("Features"))
                seen++;
        });
        Assert.AreEqual(1, seen, "one row featurized, then cancelled");
        Assert.AreEqual(before + 1, t.Statistics.Rows);
        t.Dispose();
    }

    [TestMethod]
    public void GpuRequestFallsBackOrFailsClearly()
    {
        var ml = new MLContext(seed: 1);
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("FallbackToCpu", StringComparison.Ordinal)) lock (warnings) warnings.Add(e.Message); };
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav);
        var o = SpeechFixtures.Options(SpeechFixtures.TinyGroup);
        o.GpuDeviceId = 0;
        o.FallbackToCpu = true;
        var t = ml.Transforms.Speech.SslFeaturizer(o).Fit(data);
        if (t.ExecutionProvider == "CPU")
        {
            // This machine's ONNX Runtime has no CUDA: the fallback warned, and without fallback the error is explicit.
            Assert.IsNotEmpty(warnings);
            o.FallbackToCpu = false;
            var e = Assert.Throws<InvalidOperationException>(() => ml.Transforms.Speech.SslFeaturizer(o).Fit(data));
            StringAssert.Contains(e.Message, "FallbackToCpu");
        }
        Assert.AreEqual(128, t.Transform(data).GetColumn<float[]>("Features").Single().Length);
        t.Dispose();
    }

    [TestMethod]
    public void InvalidOptionsNameTheOption()
    {
        var ml = new MLContext();
        void Check(string option, Action<SslFeaturizerOptions> change)
        {
            var o = SpeechFixtures.Options(SpeechFixtures.Tiny);
            change(o);
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.Speech.SslFeaturizer(o));
            Assert.AreEqual(option, e.ParamName, e.Message);
        }
        Check("ModelPath", o => o.ModelPath = Tmp("nope.onnx"));
        Check("ModelPath", o => o.ModelBytes = [1, 2, 3]);
        Check("ChunkSeconds", o => o.ChunkSeconds = -1);
        Check("ContextSeconds", o => o.ContextSeconds = double.NaN);
        Check("SampleRate", o => o.SampleRate = 0);
        Check("ScoringBatchSize", o => o.ScoringBatchSize = 0);
        Check("IntraOpNumThreads", o => o.IntraOpNumThreads = -1);
        Check("GpuDeviceId", o => o.GpuDeviceId = -2);
        Check("InputScale", o => o.InputScale = 0);
        Check("FrameCountColumnName", o => { o.Pooling = SslPooling.None; o.FrameCountColumnName = "Features"; });
        Check("EmbedModel", o => { o.ModelPath = null; o.ModelBytes = File.ReadAllBytes(SpeechFixtures.Tiny); o.EmbedModel = false; });
        Assert.Throws<ArgumentOutOfRangeException>(() => SslLayers.WeightedSum());
        // A file that is not an ONNX model fails when the encoder opens, naming the file.
        var bad = Tmp("bad.onnx");
        File.WriteAllText(bad, "not a model");
        var ex = Assert.Throws<InvalidDataException>(() => ml.Transforms.Speech.SslFeaturizer(new SslFeaturizerOptions { ModelPath = bad }).Fit(SpeechFixtures.Paths(ml, SpeechFixtures.Wav)));
        StringAssert.Contains(ex.Message, "bad.onnx");
    }
}
