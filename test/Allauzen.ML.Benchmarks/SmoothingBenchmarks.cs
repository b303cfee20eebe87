using Allauzen.ML.Core;
using Allauzen.ML.Lipschitz;
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
/// with BaseModelOnnxPath (its graph starts with a Gemm of h = 256 &lt; d = 784: the first-layer shortcut, the rest of the
/// graph in its own session); CertifyCohenOnnxDirectNoise = the same with the shortcut off (the path every ONNX model
/// took before session 8); CertifyCohenOnnxPooledRest = the shortcut with the rest of the graph on ONNX Runtime's thread
/// pool instead of the calling thread.</item>
/// <item>Categories TorchCnn and OnnxCnn: the same on a small LeNet-like CNN (two 3×3 convolutions of 16 channels with
/// ReLU on the 28×28 image, 4×4 pooling, a 128-wide dense layer; a Lipschitz AOL network folded into plain Conv/Gemm
/// weights), CnnRows × (n0 + CnnEstimation) samples in batches of CnnBatch. A convolution has no first-layer shortcut:
/// this is the input-noise path convolutional models take, with far more work per input value than the MLP.</item>
/// </list>
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class SmoothingBenchmarks
{
    private const int Rows = 4, Selection = 100, Estimation = 10_000, Batch = 1000;
    private const int CnnRows = 2, CnnEstimation = 2000, CnnBatch = 500;
    private LipschitzClassifierTransformer _cnn = null!;
    private RandomizedSmoothingTransformer _cnnCertifier = null!;
    private RandomizedSmoothingTransformer _cnnOnnxCertifier = null!;
    private IDataView _cnnRows = null!;
    private InferenceSession _cnnSession = null!;
    private torch.Tensor _cnnBatch = null!;
    private float[] _cnnOnnxBatch = null!;
    private string _cnnOnnxPath = null!;
    private MLContext _ml = null!;
    private MlpTransformer _model = null!;
    private IDataView _rows = null!;
    private RandomizedSmoothingTransformer _certifier = null!;
    private RandomizedSmoothingTransformer _direct = null!;
    private RandomizedSmoothingTransformer _onnxCertifier = null!;
    private RandomizedSmoothingTransformer _onnxDirect = null!;
    private RandomizedSmoothingTransformer _onnxPooledRest = null!;
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
        _onnxDirect = _ml.Transforms.CertifyRandomizedSmoothing(onnxOptions).Fit(_rows);
        _onnxDirect.Sampler.UseFirstLayerShortcut = false;
        // The same shortcut with the rest of the graph on ONNX Runtime's thread pool (the default runs this small rest on the calling thread).
        OnnxBaseModel.RestOnCallingThread = false;
        _onnxPooledRest = _ml.Transforms.CertifyRandomizedSmoothing(onnxOptions).Fit(_rows);
        _ = _onnxPooledRest.Sampler.Model.FirstLayer;
        OnnxBaseModel.RestOnCallingThread = null;
        _session = new InferenceSession(_onnxPath);
        _onnxBatch = _batch.data<float>().ToArray();

        int side = (int)Math.Round(Math.Sqrt(_model.FeatureCount));
        _cnn = _ml.MulticlassClassification.Trainers.LipschitzClassifier(new LipschitzClassifierOptions
        {
            Architecture = LipschitzArchitecture.Aol, Convolutional = true, ImageHeight = side, ImageWidth = side, ImageChannels = 1, Width = 16,
            Depth = 2, KernelSize = 3, PoolSize = 4, DenseDepth = 1, DenseWidth = 128, Epochs = 1, BatchSize = 64, Seed = 1,
        }).Fit(_ml.Data.TakeRows(train, 2000));
        _cnnRows = _ml.Data.Cache(_ml.Data.TakeRows(_rows, CnnRows));
        RandomizedSmoothingOptions CnnOptions() => new()
        {
            BaseModel = _cnn, SelectionSamples = Selection, EstimationSamples = CnnEstimation, BatchSize = CnnBatch, Sigma = 0.25,
        };
        _cnnCertifier = _ml.Transforms.CertifyRandomizedSmoothing(CnnOptions()).Fit(_cnnRows);
        _cnnBatch = torch.rand(CnnBatch, _cnn.FeatureCount);
        _cnnOnnxPath = Path.Combine(Path.GetTempPath(), $"smoothing-bench-cnn-{Environment.ProcessId}.onnx");
        _ml.Model.ExportToOnnx(_cnn, _cnnRows, _cnnOnnxPath);
        var cnnOnnxOptions = CnnOptions();
        cnnOnnxOptions.BaseModel = null;
        cnnOnnxOptions.BaseModelOnnxPath = _cnnOnnxPath;
        cnnOnnxOptions.OnnxInputName = "Features";
        cnnOnnxOptions.OnnxOutputName = "Score.output";
        cnnOnnxOptions.BaseModelOutputsProbabilities = true;
        _cnnOnnxCertifier = _ml.Transforms.CertifyRandomizedSmoothing(cnnOnnxOptions).Fit(_cnnRows);
        _cnnSession = new InferenceSession(_cnnOnnxPath);
        _cnnOnnxBatch = _cnnBatch.data<float>().ToArray();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _session.Dispose();
        _cnnSession.Dispose();
        File.Delete(_onnxPath);
        File.Delete(_cnnOnnxPath);
    }

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Torch")]
    public float RawBatchedForward() => TorchForward(_model, _batch, Rows * (long)(Selection + Estimation), Batch);

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("TorchCnn")]
    public float RawCnnForward() => TorchForward(_cnn, _cnnBatch, CnnRows * (long)(Selection + CnnEstimation), CnnBatch);

    [Benchmark]
    [BenchmarkCategory("TorchCnn")]
    public double CertifyCnn() => SumRadii(_cnnCertifier, _cnnRows);

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("OnnxCnn")]
    public float RawCnnOrtForward() => OrtForward(_cnnSession, _cnnOnnxBatch, _cnn.FeatureCount, CnnRows * (long)(Selection + CnnEstimation), CnnBatch);

    [Benchmark]
    [BenchmarkCategory("OnnxCnn")]
    public double CertifyCnnOnnx() => SumRadii(_cnnOnnxCertifier, _cnnRows);

    /// <summary>Logits and argmax of <paramref name="total"/> samples in batches of <paramref name="batch"/>, as the sampler runs them.</summary>
    private static float TorchForward(ITransformer model, torch.Tensor input, long total, int batch)
    {
        float s = 0;
        var lm = (ILogitsModel)model;
        using var noGrad = torch.no_grad();
        for (long done = 0; done < total; done += batch)
        {
            using var scope = torch.NewDisposeScope();
            int b = (int)Math.Min(batch, total - done);
            var z = lm.ForwardLogits(input.narrow(0, 0, b)).argmax(1);
            s += z[0].ToSingle();
        }
        return s;
    }

    private static float OrtForward(InferenceSession session, float[] input, int d, long total, int batch)
    {
        float s = 0;
        using var runOptions = new RunOptions();
        for (long done = 0; done < total; done += batch)
        {
            int b = (int)Math.Min(batch, total - done);
            using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(input, 0, b * d), [b, d]);
            using var results = session.Run(runOptions, ["Features"], [value], ["Score.output"]);
            s += results[0].GetTensorDataAsSpan<float>()[0];
        }
        return s;
    }

    [Benchmark]
    [BenchmarkCategory("Torch")]
    public double CertifyCohen() => SumRadii(_certifier, _rows);

    [Benchmark]
    [BenchmarkCategory("Torch")]
    public double CertifyCohenDirectNoise() => SumRadii(_direct, _rows);

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("Onnx")]
    public float RawOrtForward() => OrtForward(_session, _onnxBatch, _model.FeatureCount, Rows * (long)(Selection + Estimation), Batch);

    [Benchmark]
    [BenchmarkCategory("Onnx")]
    public double CertifyCohenOnnx() => SumRadii(_onnxCertifier, _rows);

    [Benchmark]
    [BenchmarkCategory("Onnx")]
    public double CertifyCohenOnnxDirectNoise() => SumRadii(_onnxDirect, _rows);

    [Benchmark]
    [BenchmarkCategory("Onnx")]
    public double CertifyCohenOnnxPooledRest() => SumRadii(_onnxPooledRest, _rows);

    /// <summary>Whether the ONNX certifier takes the first-layer shortcut (its width), for the probe's header.</summary>
    internal string OnnxShortcut => _onnxCertifier.Sampler.Model.FirstLayer is { } f ? $"first-layer shortcut, h = {f.Width}" : "no shortcut";

    private static double SumRadii(RandomizedSmoothingTransformer certifier, IDataView rows)
    {
        double s = 0;
        foreach (double r in certifier.Transform(rows).GetColumn<double>(SmoothingColumnNames.CertifiedRadius))
            s += r;
        return s;
    }
}
