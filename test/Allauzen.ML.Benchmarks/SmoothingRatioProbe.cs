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
        var cpuRatios = new List<double>();
        var process = Process.GetCurrentProcess();
        for (int i = 0; i < pairs; i++)
        {
            process.Refresh();
            var c0 = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            baseline();
            double tb = sw.Elapsed.TotalMilliseconds;
            process.Refresh();
            var c1 = process.TotalProcessorTime;
            Smoothing.SmoothingSampler.Profile.Reset();
            sw.Restart();
            candidate();
            double tc = sw.Elapsed.TotalMilliseconds;
            process.Refresh();
            var c2 = process.TotalProcessorTime;
            double cb = (c1 - c0).TotalMilliseconds, cc = (c2 - c1).TotalMilliseconds;
            var (draw, forward, count, batches) = Smoothing.SmoothingSampler.Profile.Read();
            ratios.Add(tc / tb);
            cpuRatios.Add(cc / cb);
            Console.WriteLine($"  {name}: baseline {tb:F0} ms (CPU {cb:F0}), certifier {tc:F0} ms (CPU {cc:F0}; draw {draw:F0}, forward {forward:F0}, " +
                $"count {count:F1} in {batches} batches), ratio {tc / tb:F2}, CPU ratio {cc / cb:F2}; load {File.ReadAllText("/proc/loadavg").Trim()}");
        }
        ratios.Sort();
        cpuRatios.Sort();
        Console.WriteLine($"{name}: median time ratio {ratios[ratios.Count / 2]:F2} (range {ratios[0]:F2}–{ratios[^1]:F2}), " +
            $"median CPU-time ratio {cpuRatios[cpuRatios.Count / 2]:F2} (range {cpuRatios[0]:F2}–{cpuRatios[^1]:F2}) over {pairs} pairs");
    }
}
