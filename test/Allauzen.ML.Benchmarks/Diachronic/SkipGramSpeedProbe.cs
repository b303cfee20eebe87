using System.Diagnostics;
using Allauzen.ML.Diachronic;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// <c>-- --skipgram-speed [threads|1/2] [epochs] [runs] [window|pair|both|default] [shared|separate|alternate|unpadded|padding]</c>: skip-gram on the CI corpus with gensim's settings (as
/// <see cref="DiachronicBenchmarks"/>), <c>runs</c> trainings in this one process from the same initial vectors; prints
/// per run the raw words/s by wall time and by process CPU time, so a cold first run (JIT tiering) shows against the
/// warm ones. Run it in fresh processes back to back for the run-to-run spread. The update rule (<see cref="SkipGramUpdate"/>)
/// defaults to the engine's; <c>both</c> alternates per-pair and window-batched runs in this process (interleaved
/// comparison under the same load). <c>separate</c> trains <c>threads</c> independent engines at once, one thread each
/// (no row is shared between the threads: against <c>shared</c>, this separates Hogwild's cache-line traffic on common
/// rows from the cost of two cores sharing caches and memory; <c>alternate</c>: shared on even runs, separate on odd runs,
/// paired in this process; with several threads the window rule trains on 64-byte-aligned padded rows,
/// <see cref="SkipGramEngine.PadRows"/>: <c>unpadded</c> turns that off, <c>padding</c> runs unpadded on even runs and
/// padded on odd runs). Threads <c>1/2</c> alternates one and two threads (the
/// scaling as paired ratios; <c>both</c>, <c>alternate</c>, <c>padding</c> and <c>1/2</c> end with the median ratio of
/// adjacent runs, <c>1/2</c> also over the pairs whose two-thread run had a core per thread). Each line also gives
/// the JIT work during the run, the CPU time of the process's other threads (tiered JIT, GC; the training threads have
/// exited by then, their share is the rest) and the machine's busy and stolen time, to tell a slow run caused by this
/// process from one caused by the machine.
/// </summary>
internal static class SkipGramSpeedProbe
{
    public static void Run(string[] args)
    {
        // "1/2": one thread on even runs, two on odd runs (the 1 → 2 scaling as paired ratios in one process)
        var threadCounts = (args.Length > 1 ? args[1] : "1").Split('/').Select(int.Parse).ToArray();
        int threads = threadCounts.Max();
        int epochs = args.Length > 2 ? int.Parse(args[2]) : 1;
        int runs = args.Length > 3 ? int.Parse(args[3]) : 1;
        string mode = args.Length > 4 ? args[4] : "default";
        string sharing = args.Length > 5 ? args[5] : "shared";
        bool anySeparate = sharing is "separate" or "alternate";
        string path = Path.Combine(AppContext.BaseDirectory, "Data", "debian-changelogs-ci.tsv.gz");
        var whole = DatedCorpus.ReadTsv(path).Select(s => (0, s.Tokens)).ToList();
        var corpus = DiachronicCorpus.Build(whole, 1, 0, 1, minCount: 5, maxVocabulary: 0);
        var (tokens, ends) = corpus.Whole();
        var engine = new SkipGramEngine(corpus.VocabularySize, 100);
        var others = Enumerable.Range(1, anySeparate ? threads - 1 : 0).Select(_ => new SkipGramEngine(corpus.VocabularySize, 100)).ToArray();
        using var self = Process.GetCurrentProcess();
        var perCpu = new double[runs];
        var perWall = new double[runs];
        for (int r = 0; r < runs; r++)
        {
            threads = threadCounts[r % threadCounts.Length];
            bool separate = sharing == "separate" || (sharing == "alternate" && r % 2 == 1);
            engine.PadRows = sharing != "unpadded" && (sharing != "padding" || r % 2 == 1);
            engine.InitRows(0, corpus.VocabularySize, 1);
            engine.Update = mode switch
            {
                "pair" => SkipGramUpdate.PerPair,
                "window" => SkipGramUpdate.Window,
                "both" => r % 2 == 0 ? SkipGramUpdate.PerPair : SkipGramUpdate.Window,
                _ => engine.Update,
            };
            self.Refresh();
            var cpu0 = self.TotalProcessorTime;
            var jit0 = System.Runtime.JitInfo.GetCompilationTime(false);
            var tasks0 = ThreadTicks();
            var (busy0, steal0) = MachineTicks();
            long jitCount0 = System.Runtime.JitInfo.GetCompiledMethodCount(false);
            SkipGramStats stats;
            if (separate)
            {
                foreach (var e in others.Take(threads - 1))
                {
                    e.InitRows(0, corpus.VocabularySize, 1);
                    e.Update = engine.Update;
                }
                var sw = Stopwatch.StartNew();
                var ts = others.Take(threads - 1).Select(e => new Thread(() => e.Train(tokens, ends, corpus.TotalCounts, epochs, 0.025, 1e-4, 5, 5, 1e-3, 1, 7))).ToArray();
                foreach (var t in ts)
                    t.Start();
                var own = engine.Train(tokens, ends, corpus.TotalCounts, epochs, 0.025, 1e-4, 5, 5, 1e-3, 1, 7);
                foreach (var t in ts)
                    t.Join();
                stats = new SkipGramStats(own.RawWords * threads, own.EffectiveWords * threads, sw.Elapsed.TotalSeconds);
            }
            else
            {
                stats = engine.Train(tokens, ends, corpus.TotalCounts, epochs, 0.025, 1e-4, 5, 5, 1e-3, threads, 7);
            }
            self.Refresh();
            double cpu = (self.TotalProcessorTime - cpu0).TotalSeconds;
            double jit = (System.Runtime.JitInfo.GetCompilationTime(false) - jit0).TotalSeconds;
            long jitCount = System.Runtime.JitInfo.GetCompiledMethodCount(false) - jitCount0;
            var tasks1 = ThreadTicks();
            var (busy1, steal1) = MachineTicks();
            string byThread = string.Join(", ", tasks1.Select(t => (t.Key.Name, Ticks: t.Value - tasks0.GetValueOrDefault(t.Key)))
                .GroupBy(t => t.Name.StartsWith("sgns-", StringComparison.Ordinal) || t.Name.StartsWith(".NET TP", StringComparison.Ordinal) ? t.Name[..4] : t.Name)
                .Select(g => (g.Key, Ticks: g.Sum(t => t.Ticks))).Where(g => g.Ticks > 0).OrderByDescending(g => g.Ticks).Select(g => $"{g.Key} {g.Ticks * 10} ms"));
            perCpu[r] = stats.RawWords / cpu;
            perWall[r] = stats.RawWordsPerSecond;
            Console.WriteLine($"run {r} {engine.Update} threads {threads}{(separate ? " separate engines" : "")}{(threads > 1 && !engine.PadRows ? " unpadded rows" : "")} epochs {epochs}: {stats.RawWordsPerSecond:F0} words/s wall, {stats.RawWords / cpu:F0} words per CPU-s, " +
                $"{stats.Seconds:F3} s, JIT during it {jitCount} methods {jit:F3} s, checksum {Checksum(engine):X16}; CPU by thread: {byThread}; machine busy {(busy1 - busy0) * 10} ms, steal {(steal1 - steal0) * 10} ms; load {File.ReadAllText("/proc/loadavg").Trim()}");
        }
        if ((mode == "both" || sharing is "alternate" or "padding" || threadCounts.Length == 2) && runs >= 2)
        {
            // each odd run against the even run before it: the machine's speed drifts, adjacent runs share most of it
            var cpuRatio = Enumerable.Range(0, runs / 2).Select(i => perCpu[2 * i + 1] / perCpu[2 * i]).ToArray();
            var wallRatio = Enumerable.Range(0, runs / 2).Select(i => perWall[2 * i + 1] / perWall[2 * i]).ToArray();
            Console.WriteLine($"odd / even runs, median of {cpuRatio.Length} adjacent pairs: words per CPU-s {Median(cpuRatio):F3} " +
                $"(range {cpuRatio.Min():F3}-{cpuRatio.Max():F3}), wall words/s {Median(wallRatio):F3} ({wallRatio.Min():F3}-{wallRatio.Max():F3}); " +
                $"medians even {Median(perCpu.Where((_, i) => i % 2 == 0)):F0} / odd {Median(perCpu.Where((_, i) => i % 2 == 1)):F0} words per CPU-s");
            if (threadCounts.Length == 2 && threadCounts[1] > 1)
            {
                // on a shared host the odd run's threads only sometimes get a core each: keep the pairs where they did
                // (process CPU time ≥ 0.9 × threads × wall time)
                var coRunning = Enumerable.Range(0, runs / 2).Where(i => perWall[2 * i + 1] / perCpu[2 * i + 1] >= 0.9 * threadCounts[1]).ToArray();
                Console.WriteLine($"pairs whose {threadCounts[1]}-thread run had a core per thread: {coRunning.Length} of {runs / 2}" + (coRunning.Length == 0 ? ""
                    : $", wall words/s ratio median {Median(coRunning.Select(i => wallRatio[i])):F3} (range {coRunning.Min(i => wallRatio[i]):F3}-{coRunning.Max(i => wallRatio[i]):F3})"));
            }
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>utime + stime (clock ticks, 10 ms on Linux) of each thread of this process, by (id, name); empty off Linux.</summary>
    private static Dictionary<(int Id, string Name), long> ThreadTicks()
    {
        var d = new Dictionary<(int, string), long>();
        if (!Directory.Exists("/proc/self/task"))
            return d;
        foreach (var dir in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int open = stat.IndexOf('('), close = stat.LastIndexOf(')');
                var f = stat[(close + 2)..].Split(' ');
                d[(int.Parse(Path.GetFileName(dir)), stat[(open + 1)..close])] = long.Parse(f[11]) + long.Parse(f[12]);
            }
            catch (IOException)
            {
                // the thread ended between the listing and the read
            }
        }
        return d;
    }

    /// <summary>The machine's busy (all but idle and iowait) and steal clock ticks from /proc/stat (0, 0 off Linux).</summary>
    private static (long Busy, long Steal) MachineTicks()
    {
        if (!File.Exists("/proc/stat"))
            return (0, 0);
        var f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
        return (f[0] + f[1] + f[2] + f[5] + f[6], f.Length > 7 ? f[7] : 0);
    }

    /// <summary>FNV-1a over the bits of both matrices: equal across builds iff one-thread training is bit-identical.</summary>
    private static ulong Checksum(SkipGramEngine engine)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (var m in new[] { engine.Syn0, engine.Syn1 })
            foreach (float x in m)
                h = (h ^ BitConverter.SingleToUInt32Bits(x)) * 0x100000001B3UL;
        return h;
    }
}
