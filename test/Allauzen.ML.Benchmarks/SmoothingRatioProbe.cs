using System.Diagnostics;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// <c>-- --smoothing-ratio [pairs] [serial]</c>: the <see cref="SmoothingBenchmarks"/> cases timed back to back in pairs (baseline,
/// then certifier) in one process, printing each pair's time ratio and the median: on a shared machine the load changes
/// between BenchmarkDotNet's separate blocks of iterations, and interleaving keeps both sides of a ratio under the same load.
/// </summary>
internal static class SmoothingRatioProbe
{
    public static void Run(string[] args)
    {
        int pairs = args.Length > 1 ? int.Parse(args[1]) : 7;
        if (args.Length > 2 && args[2] == "serial")
            Smoothing.SmoothingSampler.ParallelNoise = false;
        Console.WriteLine($"noise drawn {(Smoothing.SmoothingSampler.ParallelNoise ? "on all cores" : "on the calling thread")}");
        var b = new SmoothingBenchmarks();
        b.Setup();
        try
        {
            Measure("Torch direct noise / raw forward", () => b.RawBatchedForward(), () => b.CertifyCohenDirectNoise(), pairs);
            Measure("Torch shortcut / raw forward", () => b.RawBatchedForward(), () => b.CertifyCohen(), pairs);
            Measure("ONNX / raw ORT forward", () => b.RawOrtForward(), () => b.CertifyCohenOnnx(), pairs);
        }
        finally
        {
            b.Cleanup();
        }
    }

    private static void Measure(string name, Action baseline, Action candidate, int pairs)
    {
        baseline();
        candidate();
        var ratios = new List<double>();
        for (int i = 0; i < pairs; i++)
        {
            var sw = Stopwatch.StartNew();
            baseline();
            double tb = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            candidate();
            double tc = sw.Elapsed.TotalMilliseconds;
            ratios.Add(tc / tb);
            Console.WriteLine($"  {name}: baseline {tb:F0} ms, certifier {tc:F0} ms, ratio {tc / tb:F2}; load {File.ReadAllText("/proc/loadavg").Trim()}");
        }
        ratios.Sort();
        Console.WriteLine($"{name}: median time ratio {ratios[ratios.Count / 2]:F2} (range {ratios[0]:F2}–{ratios[^1]:F2}) over {pairs} pairs");
    }
}
