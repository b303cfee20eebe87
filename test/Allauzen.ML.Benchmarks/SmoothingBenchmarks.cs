using Allauzen.ML.Core;
using Allauzen.ML.Mlp;
using Allauzen.ML.Smoothing;
using BenchmarkDotNet.Attributes;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Certification throughput vs the raw batched forward pass of the same base model: both push
/// Rows × (n0 + n) samples through the MLP in batches of BatchSize; the certifier also draws the noise,
/// counts votes and computes the Clopper–Pearson certificate (goal: ratio ≥ 0.9, i.e. the baseline's time
/// over the certifier's time).
/// </summary>
[MemoryDiagnoser]
public class SmoothingBenchmarks
{
    private const int Rows = 4, Selection = 100, Estimation = 10_000, Batch = 1000;
    private MLContext _ml = null!;
    private MlpTransformer _model = null!;
    private IDataView _rows = null!;
    private RandomizedSmoothingTransformer _certifier = null!;
    private torch.Tensor _batch = null!;

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        var (train, test, _) = BenchData.Prepared(_ml);
        _model = _ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [256], Epochs = 1, BatchSize = 128 }).Fit(train);
        _rows = _ml.Data.Cache(_ml.Data.TakeRows(_ml.Transforms.SelectColumns("Features").Fit(test).Transform(test), Rows));
        _certifier = _ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = _model, SelectionSamples = Selection, EstimationSamples = Estimation, BatchSize = Batch, Sigma = 0.25,
        }).Fit(_rows);
        _batch = torch.rand(Batch, _model.FeatureCount);
    }

    [Benchmark(Baseline = true)]
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
    public double CertifyCohen()
    {
        double s = 0;
        foreach (double r in _certifier.Transform(_rows).GetColumn<double>(SmoothingColumnNames.CertifiedRadius))
            s += r;
        return s;
    }
}
