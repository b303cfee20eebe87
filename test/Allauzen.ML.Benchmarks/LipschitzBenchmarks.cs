using Allauzen.ML.Lipschitz;
using Allauzen.ML.Mlp;
using BenchmarkDotNet.Attributes;
using Microsoft.ML;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Spectral norm of a 64×64×3×3 convolution (circular padding) on a 32×32 input, float32: the Gram iteration against power
/// iteration (the baseline) at equal precision — each runs the fewest iterations that reach a relative error ≤ 1e-3 against
/// the exact FFT+SVD value (counts chosen in the setup and printed).
/// </summary>
public class LipschitzBoundBenchmarks
{
    private Tensor _kernel = null!;
    private int _gramIterations, _powerIterations;

    [GlobalSetup]
    public void Setup()
    {
        Torch.TorchRuntime.EnsureInitialized();
        torch.manual_seed(1);
        _kernel = torch.randn(64, 64, 3, 3) / 24.0;
        var k = _kernel.contiguous().data<float>().ToArray();
        double exact = SpectralNorm.ConvCircularExact(k, 64, 64, 3, 3, 32, 32).Value;
        _gramIterations = Enumerable.Range(1, 12).First(t => Gram(t) / exact - 1 <= 1e-3);
        _powerIterations = 1;
        while (_powerIterations < 5000 && Math.Abs(Power(_powerIterations) / exact - 1) > 1e-3)
            _powerIterations = (int)Math.Ceiling(_powerIterations * 1.25);
        Console.WriteLine($"// exact {exact:G8}; Gram iterations {_gramIterations} (bound {Gram(_gramIterations):G8}); power iterations {_powerIterations} ({Power(_powerIterations):G8})");
    }

    private double Gram(int t)
    {
        using var scope = torch.NewDisposeScope();
        return GramIteration.Circular(_kernel, 32, 32, t).item<float>();
    }

    private double Power(int n)
    {
        using var scope = torch.NewDisposeScope();
        return SpectralNorm.PowerIterationCircular(_kernel, 32, 32, n, 7).item<float>();
    }

    [Benchmark(Baseline = true)]
    public double PowerIterationAtEqualPrecision() => Power(_powerIterations);

    [Benchmark]
    public double GramIterationAtEqualPrecision() => Gram(_gramIterations);

    [GlobalCleanup]
    public void Cleanup() => _kernel.Dispose();
}

/// <summary>One training epoch of the certified classifiers (dense SLL and CPL, depth 3, width 256) against the plain Mlp (baseline).</summary>
public class LipschitzEpochBenchmarks
{
    private MLContext _ml = null!;
    private IDataView _train = null!;

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        (_train, _, _) = BenchData.Prepared(_ml);
        Torch.TorchRuntime.EnsureInitialized();
    }

    private LipschitzClassifierOptions Options(LipschitzArchitecture a) =>
        new() { Architecture = a, Depth = 3, Width = 256, Epochs = 1, BatchSize = 128, Seed = 1, DataCaching = DataCaching.InMemory };

    [Benchmark(Baseline = true)]
    public object MlpEpoch() => _ml.MulticlassClassification.Trainers.Mlp(
        new MlpOptions { HiddenSizes = [256], Epochs = 1, BatchSize = 128, DataCaching = DataCaching.InMemory, Seed = 1 }).Fit(_train);

    [Benchmark]
    public object SllEpoch() => _ml.MulticlassClassification.Trainers.LipschitzClassifier(Options(LipschitzArchitecture.Sll)).Fit(_train);

    [Benchmark]
    public object CplEpoch() => _ml.MulticlassClassification.Trainers.LipschitzClassifier(Options(LipschitzArchitecture.Cpl)).Fit(_train);
}
