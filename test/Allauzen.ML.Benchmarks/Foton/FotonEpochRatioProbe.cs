using System.Diagnostics;
using System.Globalization;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// <see cref="FotonBenchmarks"/>' two epochs (backprop, FOTON with the warm projection) alternated in one process, pair
/// by pair: the median over pairs of the FOTON/backprop ratio, in wall time and in the calling thread's CPU time. Two
/// neighbouring epochs share the machine's phase, so the median of the pairs' ratios moves less than a ratio of means
/// on this VM. <c>--foton-epochs [pairs] [depth]</c> (defaults 15 and 2; two warm-up pairs are not counted).
/// </summary>
public static class FotonEpochRatioProbe
{
    public static void Run(string[] args)
    {
        int pairs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 15;
        int depth = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2;
        var bench = new FotonBenchmarks { Depth = depth };
        bench.Setup();
        var wall = new List<double>();
        var cpu = new List<double>();
        var times = new List<(double Backprop, double Foton)>();
        for (int k = -2; k < pairs; k++)
        {
            var (bw, bc) = Measure(() => bench.BackpropEpoch());
            var (fw, fc) = Measure(() => bench.FotonEpochWarmProjection());
            if (k < 0)
                continue;
            wall.Add(fw / bw);
            cpu.Add(fc / bc);
            times.Add((bw, fw));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"depth {depth}, {pairs} pairs: FOTON/backprop epoch, median {Median(wall):F3} wall (range {wall.Min():F2}–{wall.Max():F2}), {Median(cpu):F3} thread CPU; backprop {Median([.. times.Select(t => t.Backprop)]):F1} ms, FOTON {Median([.. times.Select(t => t.Foton)]):F1} ms (medians)"));
    }

    private static (double Wall, double Cpu) Measure(Func<object> act)
    {
        double c0 = FotonStepProbe.ThreadCpuMs();
        var sw = Stopwatch.StartNew();
        act();
        return (sw.Elapsed.TotalMilliseconds, FotonStepProbe.ThreadCpuMs() - c0);
    }

    private static double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
}
