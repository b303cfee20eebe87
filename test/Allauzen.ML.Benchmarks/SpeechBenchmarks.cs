using Allauzen.ML.Speech;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Speech SSL featurizer throughput: the whole featurizer (WAV decoding, normalisation, ONNX Runtime, mean pooling,
/// through ML.NET's lazy IDataView) vs a bare ONNX Runtime session on the same model and the same, already decoded and
/// normalised audio (the baseline). Goal: ratio ≥ 0.9 (the featurizer adds ≤ 10 %). Both use 2 intra-op threads; the
/// RTF column is audio seconds per wall-clock second (8 × the 4.42 s shipped utterance per operation).
/// </summary>
[Config(typeof(RtfConfig))]
public class SpeechBenchmarks
{
    internal const int Utterances = 8;
    internal const int Threads = 2;

    private MLContext _ml = null!;
    private InferenceSession _session = null!;
    private RunOptions _runOptions = null!;
    private float[] _normalized = [];
    private IDataView _paths = null!;
    private IDataView _samples = null!;
    private SslFeaturizerTransformer _fromPaths = null!;
    private SslFeaturizerTransformer _fromSamples = null!;

    public static string Model => Path.Combine(AppContext.BaseDirectory, "Data", "Speech", "w2v2_tiny.onnx");

    public static string Wav => Path.Combine(AppContext.BaseDirectory, "Data", "Speech", "utt16k.wav");

    internal static double AudioSeconds => Utterances * WavReader.ReadFile(Wav).Samples.Length / 16000.0;

    public sealed class PathRow
    {
        public string Audio { get; set; } = "";
    }

    public sealed class SamplesRow
    {
        [VectorType]
        public float[] Audio { get; set; } = [];
    }

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        var audio = WavReader.ReadFile(Wav).Samples;
        _normalized = (float[])audio.Clone();
        AudioFrontEnd.Normalize(_normalized); // the model's metadata says do_normalize = true
        _session = new InferenceSession(Model, new SessionOptions { IntraOpNumThreads = Threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL });
        _runOptions = new RunOptions();
        _paths = _ml.Data.LoadFromEnumerable(Enumerable.Range(0, Utterances).Select(_ => new PathRow { Audio = Wav }).ToArray());
        _samples = _ml.Data.LoadFromEnumerable(Enumerable.Range(0, Utterances).Select(_ => new SamplesRow { Audio = audio }).ToArray());
        var o = new SslFeaturizerOptions { ModelPath = Model, IntraOpNumThreads = Threads };
        _fromPaths = _ml.Transforms.Speech.SslFeaturizer(o).Fit(_paths);
        _fromSamples = _ml.Transforms.Speech.SslFeaturizer(o).Fit(_samples);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _fromPaths.Dispose();
        _fromSamples.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
    }

    /// <summary>Bare ONNX Runtime: one Run per utterance on decoded, normalised audio, then the mean over frames.</summary>
    [Benchmark(Baseline = true)]
    public float BareOrtSession()
    {
        float s = 0;
        string[] inputs = ["input_values"], outputs = ["last_hidden_state"];
        for (int u = 0; u < Utterances; u++)
        {
            using var x = OrtValue.CreateTensorValueFromMemory(_normalized, [1, _normalized.Length]);
            using var r = _session.Run(_runOptions, inputs, [x], outputs);
            var shape = r[0].GetTensorTypeAndShape().Shape;
            var y = r[0].GetTensorDataAsSpan<float>();
            int frames = (int)shape[1], h = (int)shape[2];
            var mean = new float[h];
            for (int f = 0; f < frames; f++)
            {
                for (int j = 0; j < h; j++)
                    mean[j] += y[f * h + j];
            }
            s += mean[0] / frames;
        }
        return s;
    }

    /// <summary>The featurizer on a column of WAV paths (reads and decodes the files).</summary>
    [Benchmark]
    public float FeaturizerFromWavPaths() => Consume(_fromPaths.Transform(_paths));

    /// <summary>The featurizer on a column of float samples.</summary>
    [Benchmark]
    public float FeaturizerFromSamples() => Consume(_fromSamples.Transform(_samples));

    private static float Consume(IDataView scored)
    {
        float s = 0;
        var col = scored.Schema["Features"];
        using var cursor = scored.GetRowCursor([col]);
        var g = cursor.GetGetter<VBuffer<float>>(col);
        VBuffer<float> v = default;
        while (cursor.MoveNext())
        {
            g(ref v);
            s += v.GetValues()[0];
        }
        return s;
    }

    /// <summary>Adds the RTF column (audio seconds / wall-clock seconds).</summary>
    private sealed class RtfConfig : ManualConfig
    {
        public RtfConfig() => AddColumn(new RtfColumn());
    }

    private sealed class RtfColumn : IColumn
    {
        private static readonly Lazy<double> Audio = new(() => AudioSeconds);

        public string Id => "SpeechRtf";

        public string ColumnName => "RTF (audio s / wall s)";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => 0;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => "Seconds of audio featurized per wall-clock second (8 × 4.42 s per operation)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
            summary[benchmarkCase]?.ResultStatistics is { } s
                ? (Audio.Value / (s.Mean / 1e9)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture)
                : "NA";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public bool IsAvailable(Summary summary) => true;
    }
}
