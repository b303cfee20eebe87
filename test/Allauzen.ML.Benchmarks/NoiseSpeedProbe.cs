using System.Diagnostics;
using Allauzen.ML.Core;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// <c>-- --noise-speed [seconds]</c>: GB/s of <see cref="GaussianNoise.Fill"/> into a 4 MiB float32 buffer on one thread,
/// per instruction set (and for the sampler's 784-value samples with a centre, and the uniform words alone), by wall time and by this thread's CPU time (the per-core figure on a shared machine, where wall
/// time also counts the time other processes hold the core).
/// </summary>
internal static class NoiseSpeedProbe
{
    public static void Run(string[] args)
    {
        double seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 2;
        const int n = 1 << 20;
        var buffer = new float[n];
        const int d = 784;
        var centre = new float[d];
        var bits = new uint[n];
        Console.WriteLine($"Resolved: {GaussianNoise.Resolved}; buffer {n * 4 / 1048576} MiB; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        void Samples(long fill)
        {
            // The sampler's direct path: samples of d values, x + σε with one centre x.
            for (int i = 0; i + d <= n; i += d)
                GaussianNoise.Fill(buffer.AsSpan(i, d), 1, (ulong)(fill * n + i), 0, 0.25f, centre);
        }
        foreach (var (name, fill) in new (string, Action<long>)[]
        {
            ("avx512", f => GaussianNoise.Fill(buffer, 1, (ulong)f, 0, 0.25f, default, NoiseIsa.Avx512)),
            ("avx2", f => GaussianNoise.Fill(buffer, 1, (ulong)f, 0, 0.25f, default, NoiseIsa.Avx2)),
            ("scalar", f => GaussianNoise.Fill(buffer, 1, (ulong)f, 0, 0.25f, default, NoiseIsa.Scalar)),
            ("software", f => GaussianNoise.Fill(buffer, 1, (ulong)f, 0, 0.25f, default, NoiseIsa.Software)),
            ("784+centre", Samples),
            ("bits", f => GaussianNoise.FillBits(bits, 1, (ulong)f, 0)),
        })
        {
            try
            {
                fill(0);
            }
            catch (PlatformNotSupportedException)
            {
                continue;
            }
            for (int i = 0; i < 20 && name != "software"; i++)
                fill(i);
            var cpu0 = ThreadCpu();
            var wall = Stopwatch.StartNew();
            long fills = 0;
            while (ThreadCpu() - cpu0 < seconds)
                fill(fills++);
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
