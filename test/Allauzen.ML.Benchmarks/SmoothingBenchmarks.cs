using Allauzen.ML.Core;
using Allauzen.ML.Mlp;
using Allauzen.ML.Smoothing;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Certification throughput vs the raw batched forward pass of the same base model: each baseline pushes
/// Rows × (n0 + n) samples through the MLP (784-256-10) in batches of BatchSize and takes the argmax; the
/// certifier also draws the noise, counts votes and computes the Clopper–Pearson certificate (goal: ratio ≥ 0.9,
/// i.e. the baseline's time over the certifier's time, so a Ratio column ≤ 1.11).
/// <list type="bullet">
/// <item>Category Torch: baseline = TorchSharp forward; CertifyCohen = the certifier on the TorchSharp model (with
/// the exact first-layer noise shortcut, see FirstLayerNoise); CertifyCohenDirectNoise = the same with the
/// shortcut off (d-dimensional noise added to the input).</item>
/// <item>Category Onnx: baseline = ONNX Runtime forward of the exported model; CertifyCohenOnnx = the certifier
/// with BaseModelOnnxPath (the ONNX model is opaque: direct noise only).</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class SmoothingBenchmarks
{
    private const int Rows = 4, Selection = 100, Estimation = 10_000, Batch = 1000;
    private MLContext _ml = null!;
    private MlpTransformer _model = null!;
    private IDataView _rows = null!;
    private RandomizedSmoothingTransformer _certifier = null!;
    private RandomizedSmoothingTransformer _direct = null!;
    private RandomizedSmoothingTransformer _onnxCertifier = null!;
    private InferenceSession _session = null!;
    private float[] _onnxBatch = null!;
    private torch.Tensor _batch = null!;
    private string _onnxPath = null!;

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        var (train, test, _) = BenchData.Prepared(_ml);
        _model = _ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [256], Epochs = 1, BatchSize = 128 }).Fit(train);
        _rows = _ml.Data.Cache(_ml.Data.TakeRows(_ml.Transforms.SelectColumns("Features").Fit(test).Transform(test), Rows));
        RandomizedSmoothingOptions Options() => new()
        {
            BaseModel = _model, SelectionSamples = Selection, EstimationSamples = Estimation, BatchSize = Batch, Sigma = 0.25,
        };
        _certifier = _ml.Transforms.CertifyRandomizedSmoothing(Options()).Fit(_rows);
        _direct = _ml.Transforms.CertifyRandomizedSmoothing(Options()).Fit(_rows);
        _direct.Sampler.UseFirstLayerShortcut = false;
        _batch = torch.rand(Batch, _model.FeatureCount);

        _onnxPath = Path.Combine(Path.GetTempPath(), $"smoothing-bench-{Environment.ProcessId}.onnx");
        _ml.Model.ExportToOnnx(_model, _rows, _onnxPath);
        var onnxOptions = Options();
        onnxOptions.BaseModel = null;
        onnxOptions.BaseModelOnnxPath = _onnxPath;
        onnxOptions.OnnxInputName = "Features";
        onnxOptions.OnnxOutputName = "Score.output";
        onnxOptions.BaseModelOutputsProbabilities = true;
        _onnxCertifier = _ml.Transforms.CertifyRandomizedSmoothing(onnxOptions).Fit(_rows);
        _session = new InferenceSession(_onnxPath);
        _onnxBatch = _batch.data<float>().ToArray();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _session.Dispose();
        File.Delete(_onnxPath);
    }

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Torch")]
    public float RawBatchedForward()
    {
        float s = 0;
        var lm = (ILogitsModel)_model;
        long total = Rows * (long)(Selection + Estimation);
        using var noGrad = torch.no_grad();
        for (long done = 0; done < total; done += Batch)
        {
            using var scope = torch.NewDisposeScope();
            int b = (int)Math.Min(Batch, total - done);
            var z = lm.ForwardLogits(_batch.narrow(0, 0, b)).argmax(1);
            s += z[0].ToSingle();
        }
        return s;
    }

    [Benchmark]
    [BenchmarkCategory("Torch")]
    public double CertifyCohen() => SumRadii(_certifier);

    [Benchmark]
    [BenchmarkCategory("Torch")]
    public double CertifyCohenDirectNoise() => SumRadii(_direct);

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Onnx")]
    public float RawOrtForward()
    {
        float s = 0;
        long total = Rows * (long)(Selection + Estimation);
        int d = _model.FeatureCount;
        using var runOptions = new RunOptions();
        for (long done = 0; done < total; done += Batch)
        {
            int b = (int)Math.Min(Batch, total - done);
            using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(_onnxBatch, 0, b * d), [b, d]);
            using var results = _session.Run(runOptions, ["Features"], [value], ["Score.output"]);
            var span = results[0].GetTensorDataAsSpan<float>();
            s += span[0];
        }
        return s;
    }

    [Benchmark]
    [BenchmarkCategory("Onnx")]
    public double CertifyCohenOnnx() => SumRadii(_onnxCertifier);

    private double SumRadii(RandomizedSmoothingTransformer certifier)
    {
        double s = 0;
        foreach (double r in certifier.Transform(_rows).GetColumn<double>(SmoothingColumnNames.CertifiedRadius))
            s += r;
        return s;
    }
}
