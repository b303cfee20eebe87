using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Diachronic;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Whole DBE fits (default options, K = 64) on the CI corpus (3 slices of 8 years from 1999), alternating code paths in
/// one process: <c>--dbe-fit [rounds=5] [threads=2]</c>. Prints each fit's time and the phases' split.
/// </summary>
public static class DynamicBernoulliFitProbe
{
    public static void Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
        int threads = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2;
        var corpus = DynamicBernoulliStepProbe.CiCorpus();
        var forms = new (string Name, Action Set)[]
        {
            ("fused, groups of 4", () => { DynamicBernoulliEngine.FusedSteps = true; DynamicBernoulliEngine.GroupSteps = 4; }),
            ("fused, one by one", () => { DynamicBernoulliEngine.FusedSteps = true; DynamicBernoulliEngine.GroupSteps = 1; }),
            ("two-call", () => DynamicBernoulliEngine.FusedSteps = false),
        };
        var times = forms.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds + 1; r++)
        {
            for (int f = 0; f < forms.Length; f++)
            {
                forms[f].Set();
                var sw = Stopwatch.StartNew();
                double staticEnd = 0;
                var o = new DiachronicEmbeddingsOptions
                {
                    Model = DiachronicModel.DynamicBernoulli, Dimensions = 64, Threads = threads,
                    Progress = new SyncProgress<DiachronicProgress>(p =>
                    {
                        if (p.Phase == "static" && p.Fraction >= 1)
                            staticEnd = sw.Elapsed.TotalSeconds;
                    }),
                };
                var fit = DynamicBernoulliEngine.Fit(corpus, o);
                double total = sw.Elapsed.TotalSeconds;
                if (r > 0)
                    times[f].Add(total);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"round {r} {forms[f].Name,-24}: {total:F2} s (static phase ends at {staticEnd:F2} s); ρ checksum {fit.Vectors[^1].Take(1000).Sum():R}"));
            }
        }
        for (int f = 0; f < forms.Length; f++)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{forms[f].Name}: median {times[f].Order().ElementAt(times[f].Count / 2):F2} s"));
        DynamicBernoulliEngine.FusedSteps = true;
        DynamicBernoulliEngine.GroupSteps = 4;
    }
}

/// <summary>Reports on the calling thread.</summary>
file sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
