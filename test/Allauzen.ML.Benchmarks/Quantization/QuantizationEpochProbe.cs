using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Torch;
using Microsoft.ML;

namespace Allauzen.ML.Benchmarks.Quantization;

/// <summary>
/// A paired timing of one training epoch on a shared machine (not BenchmarkDotNet): each round trains the plain-MSE
/// baseline and the quantizers in turn (same data and network as <see cref="QuantizationEpochBenchmarks"/>), takes the
/// second epoch's time (the first includes the one-off setup), and divides by the baseline's time in the same round;
/// the report gives the median ratio over rounds and each configuration's fastest epoch, in wall time and in process CPU
/// time (the epoch's compute: with one libtorch thread it is the training thread's time, which the machine's load does
/// not stretch the way it stretches wall time).
/// Usage: -- --quantization-epoch [rounds (default 9)] [batch size (default 64)]
/// </summary>
internal static class QuantizationEpochProbe
{
    public static void Run(string[] args)
    {
        if (args.Length > 1 && args[1] == "profile")
        {
            QuantizationStepProfile.Run(args);
            return;
        }
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 9;
        int batch = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 64;
        var ml = new MLContext(seed: 1);
        var data = QuantizationEpochBenchmarks.Data(ml);
        TorchRuntime.EnsureInitialized();
        (string Name, int Points, bool Plain)[] configs = [("plain MSE, 1 point", 1, true), ("quantization, 1 point", 1, false),
            ("quantization, 2 points", 2, false), ("quantization, 8 points", 8, false)];
        var times = configs.Select(_ => new List<double>()).ToArray();
        var cpuTimes = configs.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            for (int c = 0; c < configs.Length; c++)
            {
                var o = QuantizationEpochBenchmarks.Options(configs[c].Points, configs[c].Plain);
                o.BatchSize = batch;
                double last = 0, cpuLast = 0;
                var cpuAtReport = Process.GetCurrentProcess().TotalProcessorTime;
                o.Progress = new SyncProgress(p =>
                {
                    last = p.EpochTime.TotalMilliseconds;
                    var now = Process.GetCurrentProcess().TotalProcessorTime;
                    cpuLast = (now - cpuAtReport).TotalMilliseconds;
                    cpuAtReport = now;
                });
                using (ml.Regression.Trainers.ConditionalQuantization(o).Fit(data))
                {
                }
                times[c].Add(last);
                cpuTimes[c].Add(cpuLast);
            }
        }
        Console.WriteLine($"{rounds} rounds, epoch 2 of 2, 20,000 rows × 16 features, trunk 64×64, batch {batch}, 1 thread, " +
            $"load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the end");
        for (int c = 0; c < configs.Length; c++)
        {
            var ratios = Enumerable.Range(0, rounds).Select(r => times[c][r] / times[0][r]).Order().ToArray();
            var cpuRatios = Enumerable.Range(0, rounds).Select(r => cpuTimes[c][r] / cpuTimes[0][r]).Order().ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{configs[c].Name,-24} wall: fastest {times[c].Min(),6:F0} ms, median {Median(times[c]),6:F0} ms, median ratio {ratios[rounds / 2]:F2} | " +
                $"CPU: median {Median(cpuTimes[c]),6:F0} ms, median ratio {cpuRatios[rounds / 2]:F2}"));
        }
    }

    private static double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);

    /// <summary>Reports on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
