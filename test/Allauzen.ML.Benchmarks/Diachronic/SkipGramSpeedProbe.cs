using System.Diagnostics;
using Allauzen.ML.Diachronic;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// <c>-- --skipgram-speed [threads] [epochs] [runs] [window|pair|both] [shared|separate]</c>: skip-gram on the CI corpus with gensim's settings (as
/// <see cref="DiachronicBenchmarks"/>), <c>runs</c> trainings in this one process from the same initial vectors; prints
/// per run the raw words/s by wall time and by process CPU time, so a cold first run (JIT tiering) shows against the
/// warm ones. Run it in fresh processes back to back for the run-to-run spread. The update rule (<see cref="SkipGramUpdate"/>)
/// defaults to the engine's; <c>both</c> alternates per-pair and window-batched runs in this process (interleaved
/// comparison under the same load). <c>separate</c> trains <c>threads</c> independent engines at once, one thread each
/// (no row is shared between the threads: against <c>shared</c>, this separates Hogwild's cache-line traffic on common
/// rows from the cost of two cores sharing caches and memory).
/// </summary>
internal static class SkipGramSpeedProbe
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1]) : 1;
        int epochs = args.Length > 2 ? int.Parse(args[2]) : 1;
        int runs = args.Length > 3 ? int.Parse(args[3]) : 1;
        string mode = args.Length > 4 ? args[4] : "default";
        bool separate = args.Length > 5 && args[5] == "separate";
        string path = Path.Combine(AppContext.BaseDirectory, "Data", "debian-changelogs-ci.tsv.gz");
        var whole = DatedCorpus.ReadTsv(path).Select(s => (0, s.Tokens)).ToList();
        var corpus = DiachronicCorpus.Build(whole, 1, 0, 1, minCount: 5, maxVocabulary: 0);
        var (tokens, ends) = corpus.Whole();
        var engine = new SkipGramEngine(corpus.VocabularySize, 100);
        var others = Enumerable.Range(1, separate ? threads - 1 : 0).Select(_ => new SkipGramEngine(corpus.VocabularySize, 100)).ToArray();
        using var self = Process.GetCurrentProcess();
        for (int r = 0; r < runs; r++)
        {
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
            SkipGramStats stats;
            if (separate)
            {
                foreach (var e in others)
                {
                    e.InitRows(0, corpus.VocabularySize, 1);
                    e.Update = engine.Update;
                }
                var sw = Stopwatch.StartNew();
                var ts = others.Select(e => new Thread(() => e.Train(tokens, ends, corpus.TotalCounts, epochs, 0.025, 1e-4, 5, 5, 1e-3, 1, 7))).ToArray();
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
            Console.WriteLine($"run {r} {engine.Update} threads {threads}{(separate ? " separate engines" : "")} epochs {epochs}: {stats.RawWordsPerSecond:F0} words/s wall, {stats.RawWords / cpu:F0} words per CPU-s, " +
                $"{stats.Seconds:F3} s, checksum {Checksum(engine):X16}; load {File.ReadAllText("/proc/loadavg").Trim()}");
        }
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
