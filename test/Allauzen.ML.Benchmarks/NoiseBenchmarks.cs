using Allauzen.ML.Core;
using BenchmarkDotNet.Attributes;
using TorchSharp;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Gaussian noise into a float32 buffer of 2²⁰ values (4 MiB), one thread: GB/s = 4.19 / (mean time in ms). Baseline:
/// libtorch's <c>normal_</c> with a seeded generator on the same buffer (what the smoothing sampler used before);
/// then the counter-based generator (<see cref="GaussianNoise"/>, ARS-7 + Box–Muller) on 16, 8 and 1 lanes, by samples of 784
/// values with the centre added (the sampler's direct path writes x + σε in one pass), and its uniform words alone.
/// </summary>
[MemoryDiagnoser]
public class NoiseBenchmarks
{
    private const int N = 1 << 20;
    private readonly float[] _buffer = new float[N];
    private const int D = 784;
    private readonly float[] _centre = new float[D];
    private readonly uint[] _bits = new uint[N];
    private torch.Tensor _tensor = null!;

    [GlobalSetup]
    public void Setup()
    {
        Torch.TorchRuntime.EnsureInitialized();
        torch.set_num_threads(1);
        _tensor = torch.frombuffer(_buffer, torch.float32);
        for (int i = 0; i < D; i++)
            _centre[i] = i % 7 * 0.1f;
    }

    [Benchmark(Baseline = true)]
    public float TorchNormal()
    {
        using var gen = new torch.Generator(42, torch.CPU);
        _tensor.normal_(0, 0.25, gen);
        return _buffer[N - 1];
    }

    [Benchmark]
    public float ArsAvx512()
    {
        GaussianNoise.Fill(_buffer, 42, 0, 0, 0.25f, default, Avx512Or(NoiseIsa.Avx2));
        return _buffer[N - 1];
    }

    [Benchmark]
    public float ArsAvx2()
    {
        GaussianNoise.Fill(_buffer, 42, 0, 0, 0.25f, default, NoiseIsa.Avx2);
        return _buffer[N - 1];
    }

    [Benchmark]
    public float ArsScalar()
    {
        GaussianNoise.Fill(_buffer, 42, 0, 0, 0.25f, default, NoiseIsa.Scalar);
        return _buffer[N - 1];
    }

    /// <summary>What the smoothing sampler does: samples of d = 784 values, each x + σε with the same 784-value centre x.</summary>
    [Benchmark]
    public float ArsSamplesWithCentre()
    {
        for (int i = 0; i + D <= N; i += D)
            GaussianNoise.Fill(_buffer.AsSpan(i, D), 42, (ulong)i, 0, 0.25f, _centre);
        return _buffer[N - 1];
    }

    /// <summary>The uniform words alone (the ARS share of a fill; 4 MiB of uint32).</summary>
    [Benchmark]
    public uint ArsBits()
    {
        GaussianNoise.FillBits(_bits, 42, 0, 0);
        return _bits[N - 1];
    }

    private static NoiseIsa Avx512Or(NoiseIsa fallback) =>
        System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? NoiseIsa.Avx512 : fallback;
}
