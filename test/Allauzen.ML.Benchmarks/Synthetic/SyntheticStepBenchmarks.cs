using Allauzen.ML.Synthetic;
using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Benchmarks.Synthetic;

/// <summary>
/// The transport part of one flow step, X̃ − F⁻¹_Ỹ(F_X̃(X̃)) on S = 25 rows of n smoothed projections against M target
/// quantiles, one libtorch thread. Baseline: the tensor composition the step used before (sort, gather, two
/// searchsorted interpolations); then the kernel that replaced it (bit-identical results). n = 10 000, d-independent;
/// M = 100 (the options' default) and 30 000 (the reference's MNIST config).
/// </summary>
[MemoryDiagnoser]
public class SyntheticStepBenchmarks
{
    private const int S = 25, N = 10_000;
    private Tensor _xProj = null!, _qTarget = null!, _pct = null!;

    [Params(100, 30_000)]
    public int Percentiles { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Torch.TorchRuntime.SetThreads(1);
        using var gen = new torch.Generator(1, torch.CPU);
        _xProj = 7.5 * torch.randn([S, N], generator: gen);
        _qTarget = (7.5 * torch.randn([S, Percentiles], generator: gen)).sort(1).Values;
        _pct = SlicedWassersteinFlow.Percentiles(Percentiles);
    }

    [Benchmark(Baseline = true)]
    public float TensorComposition()
    {
        using var scope = torch.NewDisposeScope();
        var cdf = SlicedWassersteinFlow.Interpolate(SlicedWassersteinFlow.Quantiles(_xProj, _pct), _pct.expand(S, Percentiles), _xProj);
        return (_xProj - SlicedWassersteinFlow.Interpolate(_pct.expand(S, Percentiles), _qTarget, cdf))[S - 1, N - 1].item<float>();
    }

    [Benchmark]
    public float Kernel()
    {
        using var scope = torch.NewDisposeScope();
        return SlicedWassersteinFlow.TransportResiduals(_xProj, _qTarget, _pct)[S - 1, N - 1].item<float>();
    }
}
