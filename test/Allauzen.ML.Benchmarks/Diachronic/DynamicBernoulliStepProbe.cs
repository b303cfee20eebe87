using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Diachronic;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Time per training step of the managed dynamic Bernoulli state on the injection case's corpus (the CI corpus,
/// Data/debian-changelogs-ci.tsv.gz, 3 slices of 8 years from 1999, min count 5: V = 9,831; K = 64; default options),
/// for the static phase (α trained, T = 1) and the dynamic phase (T = 3): the likelihood alone, the two-call form
/// (<c>ComputeLossAndGradients</c> then <c>AdamStep</c>) and the fused <c>Step</c>, in alternating blocks of 10 steps in
/// one process (medians of the blocks), so load changes hit both forms alike. Not BenchmarkDotNet: a step's state
/// moves on. <c>--dbe-step [blocks=15] [threads=2]</c>
/// </summary>
public static class DynamicBernoulliStepProbe
{
    /// <summary>Default options with K = 64 and <paramref name="threads"/> threads, the CI corpus's size and subsampled slices, the negative table, a generator.</summary>
    private static (DiachronicEmbeddingsOptions O, int V, int K, int[][] Streams, int[] Table, SplitMix64 Rng) Setup(int threads)
    {
        var corpus = CiCorpus();
        var o = new DiachronicEmbeddingsOptions { Model = DiachronicModel.DynamicBernoulli, Dimensions = 64, Threads = threads };
        var rng = new SplitMix64(3);
        var streams = DynamicBernoulliEngine.Subsample(corpus, o.Subsampling, ref rng);
        return (o, corpus.VocabularySize, o.Dimensions, streams, SkipGramEngine.BuildNegativeTable(corpus.TotalCounts), rng);
    }

    /// <summary>The CI corpus in 3 slices of 8 years from 1999, min count 5 (V = 9,831).</summary>
    internal static DiachronicCorpus CiCorpus()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Data", "debian-changelogs-ci.tsv.gz");
        var sliced = DatedCorpus.Bin(DatedCorpus.ReadTsv(path), 1999, 8, 3).Select(s => (s.Slice, s.Tokens)).ToList();
        return DiachronicCorpus.Build(sliced, 3, 0, 1, minCount: 5, maxVocabulary: 0);
    }

    /// <summary>
    /// The dynamic phase's steps one by one against groups of 2, 4 and 8 (<c>Steps</c>), on the same minibatches, in
    /// alternating blocks of 8 steps: <c>--dbe-step --group [blocks=15] [threads=2]</c>. The engines end with the same ρ (checked).
    /// </summary>
    private static void Groups(string[] args)
    {
        int blocks = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 15;
        int threads = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2;
        var (o, v, k, streams, table, rng) = Setup(threads);
        var alpha = Enumerable.Range(0, v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        var rho = Enumerable.Range(0, 3 * v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        int[] sizes = [1, 2, 4, 8, 4];
        bool[] fusedKernel = [true, true, true, true, false]; // the last: groups of 4 with the prior and Adam as separate passes
        var engines = sizes.Select(_ => new DynamicBernoulliEngine(v, k, 3, o, alpha, rho) { TrainAlpha = false, Lambda = o.DriftPrecision }).ToArray();
        var times = sizes.Select(_ => new List<double>()).ToArray();
        var sw = new Stopwatch();
        for (int b = 0; b < blocks + 1; b++)
        {
            var batches = Enumerable.Range(0, 8).Select(_ => (IReadOnlyList<DbeSliceBatch>)DynamicBernoulliEngine.SampleBatch(streams, o, table, ref rng, staticPhase: false)).ToList();
            for (int f = 0; f < sizes.Length; f++)
            {
                DynamicBernoulliEngine.FusedPriorAdam = fusedKernel[f];
                sw.Restart();
                for (int u = 0; u < 8; u += sizes[f])
                    engines[f].Steps(batches.Skip(u).Take(sizes[f]).ToList(), o.DynamicLearningRate);
                if (b > 0)
                    times[f].Add(sw.Elapsed.TotalMilliseconds / 8);
            }
        }
        DynamicBernoulliEngine.FusedPriorAdam = true;
        double Median(List<double> x) => x.Order().ElementAt(x.Count / 2);
        bool same = engines.All(e => e.Rho.AsSpan().SequenceEqual(engines[0].Rho));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"dynamic step, ms (median of {blocks} blocks of 8 steps; threads {threads}): {string.Join(", ", sizes.Select((g, f) => $"groups of {g}{(fusedKernel[f] ? "" : " (prior and Adam apart)")} {Median(times[f]):F2}"))}; same ρ: {same}"));
        foreach (var e in engines)
            e.Dispose();
    }

    public static void Run(string[] args)
    {
        if (args.Contains("--adam"))
        {
            // RowAdam.Update alone over T×V×K floats, one thread, whole array vs rows of 64
            int len = 3 * 9831 * 64;
            var adam = new RowAdam(len);
            var p = new float[len];
            var g = Enumerable.Range(0, len).Select(i => (float)Math.Sin(i)).ToArray();
            var sw0 = Stopwatch.StartNew();
            foreach (int chunk in new[] { len, 2048, 64, len, 2048, 64 })
            {
                sw0.Restart();
                for (int r = 0; r < 20; r++)
                {
                    adam.BeginStep(1e-3);
                    for (int o0 = 0; o0 < len; o0 += chunk)
                    {
                        int n = Math.Min(chunk, len - o0);
                        adam.Update(p.AsSpan(o0, n), g.AsSpan(o0, n), o0, g.AsSpan(o0, n));
                    }
                }
                Console.WriteLine($"RowAdam.Update over {len} floats in pieces of {chunk}: {sw0.Elapsed.TotalMilliseconds / 20:F2} ms");
            }
            return;
        }
        if (args.Contains("--group"))
        {
            Groups(args.Where(a => a != "--group").ToArray());
            return;
        }
        int blocks = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 15;
        int threads = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 2;
        if (args.Length > 3)
            DynamicBernoulliEngine.PrefetchDistance = int.Parse(args[3], CultureInfo.InvariantCulture);
        var (o, v, k, streams, table, rng) = Setup(threads);
        Console.WriteLine($"Vector512 accelerated: {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}; V = {v}, K = {k}, threads = {threads}, tokens kept per slice {string.Join("/", streams.Select(s => s.Length))}");
        {
            var probe = DynamicBernoulliEngine.SampleBatch(streams, o, table, ref rng, staticPhase: false);
            var rows = probe.Select(b => b.Targets.Concat(b.Negatives).Distinct().Count()).ToArray();
            int words = probe.SelectMany(b => b.Targets.Concat(b.Negatives)).Distinct().Count();
            Console.WriteLine($"one dynamic minibatch: targets {string.Join("/", probe.Select(b => b.Targets.Length))}; rows touched per slice {string.Join("/", rows)} of {v}; words touched in any slice {words}");
        }
        {
            // the minibatch draw alone (it runs on a third thread beside the step)
            List<DbeSliceBatch>? spare = null;
            var swb = Stopwatch.StartNew();
            for (int rep = 0; rep < 3; rep++)
            {
                swb.Restart();
                for (int s = 0; s < 200; s++)
                {
                    var drawn = DynamicBernoulliEngine.SampleBatch(streams, o, table, ref rng, staticPhase: false, spare);
                    spare = drawn;
                }
                Console.WriteLine($"one minibatch drawn in {swb.Elapsed.TotalMilliseconds / 200:F3} ms");
            }
        }
        foreach (bool staticPhase in new[] { true, false })
        {
            int t = staticPhase ? 1 : 3;
            var alpha = Enumerable.Range(0, v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
            var rho = Enumerable.Range(0, t * v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
            using var twoCall = new DynamicBernoulliEngine(v, k, t, o, alpha, rho) { TrainAlpha = staticPhase, Lambda = o.DriftPrecision };
            using var fused = new DynamicBernoulliEngine(v, k, t, o, alpha, rho) { TrainAlpha = staticPhase, Lambda = o.DriftPrecision };
            var times = new List<double>[6] { new(), new(), new(), new(), new(), new() };
            var cpu = new List<double>[6] { new(), new(), new(), new(), new(), new() };
            using var self = Process.GetCurrentProcess();
            var sw = new Stopwatch();
            for (int b = 0; b < blocks + 1; b++)
            {
                for (int form = 0; form < 6; form++)
                {
                    var batches = Enumerable.Range(0, 10).Select(_ => DynamicBernoulliEngine.SampleBatch(streams, o, table, ref rng, staticPhase)).ToList();
                    self.Refresh();
                    var cpu0 = self.TotalProcessorTime;
                    sw.Restart();
                    foreach (var batch in batches)
                    {
                        if (form == 0 || form == 3)
                        {
                            DynamicBernoulliEngine.PrefetchRows = form == 0;
                            fused.NegativeLogLikelihood(batch, withValue: false);
                            DynamicBernoulliEngine.PrefetchRows = true;
                        }
                        else if (form == 1)
                        {
                            twoCall.ComputeLossAndGradients(batch, withPriorValue: false);
                            twoCall.AdamStep(o.DynamicLearningRate);
                        }
                        else if (form == 2)
                            fused.Step(batch, o.DynamicLearningRate, withLossValue: false);
                        else if (form == 4)
                            fused.Step([], o.DynamicLearningRate, withLossValue: false); // the dense part alone
                        else
                        {
                            twoCall.ComputeLossAndGradients([], withPriorValue: false); // the two-call form's dense part alone
                            twoCall.AdamStep(o.DynamicLearningRate);
                        }
                    }
                    sw.Stop();
                    self.Refresh();
                    if (b > 0) // block 0 warms up
                    {
                        times[form].Add(sw.Elapsed.TotalMilliseconds / 10);
                        cpu[form].Add((self.TotalProcessorTime - cpu0).TotalMilliseconds / 10);
                    }
                }
            }
            double Median(List<double> x) => x.Order().ElementAt(x.Count / 2);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{(staticPhase ? "static " : "dynamic")}: likelihood {Median(times[0]):F2} ms (without prefetch {Median(times[3]):F2}), two-call step {Median(times[1]):F2} ms, fused step {Median(times[2]):F2} ms (its dense part alone {Median(times[4]):F2} ms; the two-call form's {Median(times[5]):F2} ms) per step (medians of {blocks} blocks of 10); fused/two-call {Median(times[2]) / Median(times[1]):F2}; CPU ms per step {Median(cpu[0]):F2} / {Median(cpu[1]):F2} / {Median(cpu[2]):F2}"));
        }
    }
}
