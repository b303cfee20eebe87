using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Evaluation;
using BenchmarkDotNet.Attributes;

namespace Allauzen.ML.Benchmarks.Evaluation;

/// <summary>Random PRDC inputs (two Gaussian sets in d dimensions, the generated one shifted) and a naive reference.</summary>
internal static class PrdcData
{
    public static (VectorSet P, VectorSet Q) Sets(int n, int d, int seed = 1)
    {
        var rng = new Random(seed);
        VectorSet Draw(double shift) => new(Enumerable.Range(0, n * d).Select(_ =>
            (float)(shift + Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()))).ToArray(), n, d);
        return (Draw(0), Draw(0.1));
    }

    /// <summary>The definitions pair by pair in float64 (no blocks, no torch): the baseline.</summary>
    public static (double P, double R, double D, double C) Naive(VectorSet p, VectorSet q, int k)
    {
        var c = PrdcDefinition.Counts(q, p, PrdcDefinition.SquaredRadii(q, k), PrdcDefinition.SquaredRadii(p, k));
        return ((double)c.PrecisionHits / q.Rows, (double)c.RecallHits / p.Rows, c.DensityCount / ((double)k * q.Rows), (double)c.CoverageHits / p.Rows);
    }
}

/// <summary>
/// PRDC throughput: the blocked evaluator core (float32 torch blocks, exact float64 decisions) against the naive
/// definitions evaluated pair by pair in float64 in C# (PrdcDefinition), same sets, same process (Ratio = blocked time / naive time).
/// The input preparation (normalisation, PCA) is left out of both.
/// </summary>
[MemoryDiagnoser]
public class PrdcBenchmarks
{
    private VectorSet _p = null!, _q = null!;

    /// <summary>Rows of each set.</summary>
    [Params(2000)]
    public int N { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Torch.TorchRuntime.EnsureInitialized();
        (_p, _q) = PrdcData.Sets(N, 64);
        var naive = PrdcData.Naive(_p, _q, 5);
        var blocked = GenerativeEvaluator.Compute(_p, _q, 5, VectorSetMetrics.DefaultBlockSize, out _);
        if (naive != (blocked.Precision, blocked.Recall, blocked.Density, blocked.Coverage))
            throw new InvalidOperationException($"Blocked {blocked} differs from naive {naive}.");
    }

    [Benchmark(Baseline = true)]
    public (double, double, double, double) NaiveFloat64() => PrdcData.Naive(_p, _q, 5);

    [Benchmark]
    public GenerativeMetrics Blocked() => GenerativeEvaluator.Compute(_p, _q, 5, VectorSetMetrics.DefaultBlockSize, out _);
}

/// <summary>
/// Peak working set of PRDC on large sets (not BenchmarkDotNet: one run, native memory included):
/// <c>--prdc-memory [rows=50000] [d=64] [block=1024] [--phases | --repeat [--construct]]</c> prints the time, the
/// metrics, the working set before the computation and the process's peak working set (which includes the runtime and
/// libtorch); <c>--phases</c> reports after each pass (radii of P, radii of Q, cross counts), <c>--repeat</c> runs the
/// radii of P six times (a growing working set means native memory is kept across calls).
/// </summary>
/// <example><c>OMP_NUM_THREADS=2 dotnet test/Allauzen.ML.Benchmarks/bin/Release/net10.0/Allauzen.ML.Benchmarks.dll --prdc-memory 50000 64</c></example>
public static class PrdcMemoryProbe
{
    public static void Run(string[] args)
    {
        var numbers = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
        int Arg(int i, int fallback) => numbers.Length > i - 1 ? int.Parse(numbers[i - 1], CultureInfo.InvariantCulture) : fallback;
        int n = Arg(1, 50_000), d = Arg(2, 64), block = Arg(3, VectorSetMetrics.DefaultBlockSize);
        Torch.TorchRuntime.EnsureInitialized();
        var (p, q) = PrdcData.Sets(n, d);
        using var self = Process.GetCurrentProcess();
        string Memory()
        {
            self.Refresh();
            return string.Create(CultureInfo.InvariantCulture, $"working set {self.WorkingSet64 / 1048576.0:0} MB, peak {self.PeakWorkingSet64 / 1048576.0:0} MB, managed heap {GC.GetGCMemoryInfo().HeapSizeBytes / 1048576.0:0} MB");
        }
        Console.WriteLine($"before: {Memory()}");
        var sw = Stopwatch.StartNew();
        if (args.Contains("--repeat"))
        {
            var r2 = args.Contains("--cross") ? VectorSetMetrics.KthNearestSquared(p, p, 5, true, block) : [];
            for (int r = 0; r < 6; r++)
            {
                if (args.Contains("--cross"))
                    VectorSetMetrics.CrossIndicators(p, p, r2, r2, block);
                else if (args.Contains("--construct"))
                    new PairwiseBlocks(p, p, block).Dispose();
                else
                    VectorSetMetrics.KthNearestSquared(p, p, 5, true, block);
                Console.WriteLine($"radii of P #{r}: {sw.Elapsed.TotalSeconds:0.0} s, {Memory()}");
            }
            return;
        }
        if (args.Contains("--phases"))
        {
            var r2P = VectorSetMetrics.KthNearestSquared(p, p, 5, true, block);
            Console.WriteLine($"radii of P: {sw.Elapsed.TotalSeconds:0.0} s, {Memory()}");
            var r2Q = VectorSetMetrics.KthNearestSquared(q, q, 5, true, block);
            Console.WriteLine($"radii of Q: {sw.Elapsed.TotalSeconds:0.0} s, {Memory()}");
            VectorSetMetrics.CrossIndicators(q, p, r2Q, r2P, block);
            Console.WriteLine($"cross: {sw.Elapsed.TotalSeconds:0.0} s, {Memory()}");
            return;
        }
        var m = GenerativeEvaluator.Compute(p, q, 5, block, out _);
        sw.Stop();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"PRDC {n}×{n} d={d} block={block} threads={TorchSharp.torch.get_num_threads()}: {sw.Elapsed.TotalSeconds:0.0} s; {m}; {Memory()}"));
    }
}
