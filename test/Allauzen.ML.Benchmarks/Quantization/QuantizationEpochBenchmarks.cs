using Allauzen.ML.Quantization;
using BenchmarkDotNet.Attributes;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Benchmarks.Quantization;

/// <summary>
/// Training cost of conditional quantization against the same network trained with plain MSE (the baseline: one point,
/// no argmin, no classifier): two epochs on 20,000 synthetic rows of 16 features, trunk 64×64, in memory, one thread.
/// </summary>
[MemoryDiagnoser]
public class QuantizationEpochBenchmarks
{
    private MLContext _ml = null!;
    private IDataView _train = null!;

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        _train = Data(_ml);
        Torch.TorchRuntime.EnsureInitialized();
    }

    /// <summary>20,000 rows: y = ±|x₀ + x₁| + sin(3x₂) + small noise, 16 features in [−1, 1].</summary>
    internal static IDataView Data(MLContext ml)
    {
        var rng = new Random(1);
        return ml.Data.Cache(ml.Data.LoadFromEnumerable(Enumerable.Range(0, 20_000).Select(_ =>
        {
            var x = Enumerable.Range(0, 16).Select(_ => (float)(2 * rng.NextDouble() - 1)).ToArray();
            double s = rng.NextDouble() < 0.5 ? -1 : 1;
            return new Row { Features = x, Label = (float)(s * Math.Abs(x[0] + x[1]) + Math.Sin(3 * x[2]) + 0.05 * (rng.NextDouble() - 0.5)) };
        }).ToArray()));
    }

    internal static ConditionalQuantizationOptions Options(int points, bool plainMse = false) => new()
    {
        NumberOfPoints = points,
        PlainMseBaseline = plainMse,
        HiddenSizes = [64, 64],
        Epochs = 2,
        BatchSize = 64,
        DataCaching = DataCaching.InMemory,
        NumberOfThreads = 1,
        Seed = 1,
    };

    [Benchmark(Baseline = true)]
    public object PlainMseOnePoint() => _ml.Regression.Trainers.ConditionalQuantization(Options(1, plainMse: true)).Fit(_train);

    [Benchmark]
    public object QuantizationOnePoint() => _ml.Regression.Trainers.ConditionalQuantization(Options(1)).Fit(_train);

    [Benchmark]
    public object QuantizationTwoPoints() => _ml.Regression.Trainers.ConditionalQuantization(Options(2)).Fit(_train);

    [Benchmark]
    public object QuantizationEightPoints() => _ml.Regression.Trainers.ConditionalQuantization(Options(8)).Fit(_train);

    private sealed class Row
    {
        [VectorType(16)]
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }
}
