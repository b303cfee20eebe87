using System.Diagnostics;
using Allauzen.ML.Core;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// <c>-- --noise-speed [seconds]</c>: GB/s of <see cref="GaussianNoise.Fill"/> into a 4 MiB float32 buffer on one thread,
/// per instruction set, by wall time and by this thread's CPU time (the per-core figure on a shared machine, where wall
/// time also counts the time other processes hold the core).
/// </summary>
internal static class NoiseSpeedProbe
{
    public static void Run(string[] args)
    {
        double seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 2;
        const int n = 1 << 20;
        var buffer = new float[n];
        var centre = new float[n];
        Console.WriteLine($"Resolved: {GaussianNoise.Resolved}; buffer {n * 4 / 1048576} MiB; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        foreach (var (name, isa, withCentre) in new[]
        {
            ("avx512", NoiseIsa.Avx512, false), ("avx2", NoiseIsa.Avx2, false), ("scalar", NoiseIsa.Scalar, false), ("auto+centre", NoiseIsa.Auto, true),
        })
        {
            if ((isa == NoiseIsa.Avx512 && !System.Runtime.Intrinsics.X86.Avx512F.IsSupported) || (isa == NoiseIsa.Avx2 && !System.Runtime.Intrinsics.X86.Avx2.IsSupported))
                continue;
            for (int i = 0; i < 20; i++)
                GaussianNoise.Fill(buffer, 1, (ulong)i, 0, 0.25f, withCentre ? centre : default, isa);
            var cpu0 = ThreadCpu();
            var wall = Stopwatch.StartNew();
            long fills = 0;
            while (ThreadCpu() - cpu0 < seconds)
            {
                GaussianNoise.Fill(buffer, 1, (ulong)fills, 0, 0.25f, withCentre ? centre : default, isa);
                fills++;
            }
            double cpu = ThreadCpu() - cpu0, bytes = fills * (double)n * 4;
            Console.WriteLine($"{name,-12} {bytes / cpu / 1e9,6:F2} GB/s per CPU-second   {bytes / wall.Elapsed.TotalSeconds / 1e9,6:F2} GB/s wall   ({fills} fills)");
        }
        Console.WriteLine($"load average {File.ReadAllText("/proc/loadavg").Trim()}");
    }

    /// <summary>CPU seconds of the calling thread (Linux: /proc/thread-self/stat utime + stime, in clock ticks of 10 ms).</summary>
    private static double ThreadCpu()
    {
        var fields = File.ReadAllText("/proc/thread-self/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0;
    }
}
