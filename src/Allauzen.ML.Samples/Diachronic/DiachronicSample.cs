using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Diachronic;
using Allauzen.ML.Samples.Common;
using Microsoft.ML;

namespace Allauzen.ML.Samples.Diachronic;

/// <summary>One sentence of the dated corpus as an IDataView row.</summary>
public sealed class SentenceRow
{
    public string[] Tokens { get; set; } = [];

    public int Slice { get; set; }
}

/// <summary>
/// The `diachronic` sample: 4-year slices of the Debian-changelog corpus (the CI slice shipped in Data/, or
/// --corpus FILE, or --corpus system to rebuild it from /usr/share/doc), top drifting words, neighbours of
/// git / python / vcs per slice, a drift plot and word2vec exports, then the drift-injection benchmark (P@2K per model).
/// </summary>
public static class DiachronicSample
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(SampleArgs args)
    {
        var ml = new MLContext(seed: 1);
        ml.UseAllauzen();
        string corpusArg = args.Get("corpus") ?? Path.Combine(AppContext.BaseDirectory, "Data", "debian-changelogs-ci.tsv.gz");
        var sw = Stopwatch.StartNew();
        List<DatedSentence> dated = corpusArg == "system"
            ? ChangelogExtractor.Extract("/usr/share/doc").ToList()
            : DatedCorpus.ReadTsv(corpusArg).ToList();
        if (args.Get("speed") == "true")
            return Speed(ml, dated, args);
        const int firstYear = 1999, width = 4, slices = 6;
        var sentences = DatedCorpus.Bin(dated, firstYear, width, slices);
        long tokens = sentences.Sum(s => (long)s.Tokens.Length);
        Console.WriteLine($"corpus {corpusArg}: {dated.Count:N0} dated sentences, {sentences.Count:N0} in {firstYear}-{firstYear + width * slices - 1} " +
            $"({tokens:N0} tokens), {slices} slices of {width} years, read in {sw.Elapsed.TotalSeconds:F1} s");
        // eligibility threshold scaled to the corpus size (30 occurrences per slice on the full 2.72 M-token corpus)
        int minc = int.Parse(args.Get("min-count") ?? Math.Max(5, (int)Math.Round(30 * tokens / 2_719_094.0)).ToString(Inv), Inv);
        int epochs = args.Epochs ?? 5;
        int dims = int.Parse(args.Get("dims") ?? "100", Inv);
        string output = Path.Combine(args.Output, "diachronic");
        Directory.CreateDirectory(output);

        // 1. Real chronology, incremental skip-gram with whole-corpus initialisation.
        var real = ml.Data.LoadFromEnumerable(sentences.Select(s => new SentenceRow { Tokens = s.Tokens, Slice = s.Slice }));
        var options = new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(SentenceRow.Tokens),
            TimeColumnName = nameof(SentenceRow.Slice),
            Model = DiachronicModel.IncrementalSkipGram,
            Initialization = DiachronicInitialization.WholeCorpus,
            Dimensions = dims,
            Epochs = epochs,
            InitEpochs = epochs,
            Seed = 1,
        };
        sw.Restart();
        var model = ml.Transforms.Text.DiachronicEmbeddings(options).Fit(real);
        double wps = model.WordsPerSecond;
        Console.WriteLine($"incremental skip-gram: V = {model.Vocabulary.Count:N0}, K = {dims}, {sw.Elapsed.TotalSeconds:F1} s, " +
            $"{wps:N0} raw words/s ({model.EffectiveWordsPerSecond:N0} after subsampling)");
        Console.WriteLine($"top drifting words {firstYear}-{firstYear + width - 1} -> {firstYear + width * (slices - 1)}-{firstYear + width * slices - 1} (>= {minc} per slice):");
        foreach (var (w, d) in model.GetDriftRanking(0, slices - 1, minc).Where(x => x.Word.Length > 2).Take(15))
            Console.WriteLine($"  {w,-20} {d:F3}");
        foreach (var probe in new[] { "git", "python", "vcs" })
        {
            Console.WriteLine($"neighbours of '{probe}':");
            for (int t = 0; t < slices; t++)
            {
                long c = model.GetCount(probe, t);
                var nn = c >= 5 ? model.GetNearestNeighbors(probe, t, 8, minCount: 5) : [];
                string years = $"{firstYear + t * width}-{firstYear + t * width + width - 1}";
                Console.WriteLine(nn.Count == 0
                    ? $"  {years}: ({c} occurrences)"
                    : $"  {years} ({c}): {string.Join(", ", nn.Select(x => x.Word))}");
            }
        }
        string plot = Path.Combine(output, "drift.png");
        model.SaveDriftPlot(plot, ["git", "python", "vcs", "package", "debian"]);
        string w2v = Path.Combine(output, $"slice{slices - 1}.w2v.txt");
        model.ExportWord2Vec(slices - 1, w2v, minCount: 5);
        Console.WriteLine($"drift plot {plot}, word2vec export of the last slice {w2v}");

        // 2. Injection benchmark (shuffled chronology: the injected swaps are the only diachronic signal).
        bool shuffled = (args.Get("chronology") ?? "shuffled") == "shuffled";
        var inj = DriftInjection.Inject(sentences, slices, pairs: 10, t0: 3, t1: 4, minCount: minc, shuffle: shuffled, seed: 0);
        var gold = inj.Gold;
        Console.WriteLine($"injection ({(shuffled ? "shuffled" : "real")} chronology): {inj.Eligible.Count} eligible words, pairs " +
            string.Join(" ", inj.Pairs.Select(p => $"{p.A}/{p.B}")));
        var metrics = new Dictionary<string, object?>
        {
            ["corpus_tokens"] = tokens,
            ["vocabulary"] = model.Vocabulary.Count,
            ["words_per_second"] = Math.Round(wps),
            ["effective_words_per_second"] = Math.Round(model.EffectiveWordsPerSecond),
            ["eligible"] = inj.Eligible.Count,
        };
        var injected = ml.Data.LoadFromEnumerable(inj.Sentences.OrderBy(s => s.Slice).Select(s => new SentenceRow { Tokens = s.Tokens, Slice = s.Slice }));
        var models = (args.Get("models") ?? "incremental,aligned,dbe").Split(',');
        foreach (var name in models)
        {
            var o = BenchmarkOptions(name, dims, epochs);
            sw.Restart();
            using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(injected);
            var ranking = m.GetDriftRanking(0, slices - 1, minc).Where(x => x.Word.Length > 2).Select(x => x.Word).ToList();
            double p = DriftInjection.PrecisionAtK(ranking, gold, gold.Count);
            double ap = DriftInjection.AveragePrecision(ranking, gold);
            Console.WriteLine($"  {name,-12} P@{gold.Count} = {p:F2}  AP = {ap:F2}  ({ranking.Count} ranked, {sw.Elapsed.TotalSeconds:F1} s)");
            metrics[$"p_at_2k_{name}"] = p;
            metrics[$"ap_{name}"] = Math.Round(ap, 3);
        }
        // Control: the same gold list on the uninjected real chronology (aligned model).
        var control = DriftInjection.Inject(sentences, slices, pairs: 10, t0: 3, t1: 4, minCount: minc, shuffle: false, none: true, seed: 0);
        using (var m = ml.Transforms.Text.DiachronicEmbeddings(BenchmarkOptions("aligned", dims, epochs)).Fit(real))
        {
            var ranking = m.GetDriftRanking(0, slices - 1, minc).Where(x => x.Word.Length > 2).Select(x => x.Word).ToList();
            double p = DriftInjection.PrecisionAtK(ranking, gold, gold.Count);
            Console.WriteLine($"  control (uninjected, aligned) P@{gold.Count} = {p:F2} on the injected gold list; {control.Eligible.Count} eligible");
            metrics["p_at_2k_control"] = p;
        }
        MetricsFile.Write(args.MetricsOut, metrics);
        return 0;
    }

    /// <summary>
    /// Skip-gram speed on the whole corpus as one slice, gensim's settings (K 100, window 5, 5 negatives, min count 5,
    /// subsampling 1e-3, 2 threads, random init): compare with test/Allauzen.ML.Benchmarks/Diachronic/gensim_sgns_speed.py back to back.
    /// </summary>
    private static int Speed(MLContext ml, List<DatedSentence> dated, SampleArgs args)
    {
        int epochs = args.Epochs ?? 1;
        int threads = int.Parse(args.Get("threads") ?? "2", Inv);
        var data = ml.Data.LoadFromEnumerable(dated.Select(s => new SentenceRow { Tokens = s.Tokens, Slice = 0 }));
        var o = new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(SentenceRow.Tokens), TimeColumnName = nameof(SentenceRow.Slice),
            Model = DiachronicModel.AlignedSkipGram, Initialization = DiachronicInitialization.Random,
            Dimensions = 100, Window = 5, Negatives = 5, MinCount = 5, Subsampling = 1e-3, Epochs = epochs, Threads = threads, Seed = 1,
        };
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(data);
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        long tokens = dated.Sum(s => (long)s.Tokens.Length);
        Console.WriteLine($"Allauzen.ML SGNS: sentences={dated.Count} tokens={tokens} V={m.Vocabulary.Count} epochs={epochs} threads={threads}");
        Console.WriteLine($"raw words/s {m.WordsPerSecond:N0}, effective words/s {m.EffectiveWordsPerSecond:N0}, raw words per CPU-s (whole Fit) {tokens * epochs / cpu:N0}");
        MetricsFile.Write(args.MetricsOut, new Dictionary<string, object?> { ["words_per_second"] = Math.Round(m.WordsPerSecond) });
        return 0;
    }

    /// <summary>The benchmark settings of each model.</summary>
    public static DiachronicEmbeddingsOptions BenchmarkOptions(string name, int dims, int epochs) => name switch
    {
        "dbe" => new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(SentenceRow.Tokens), TimeColumnName = nameof(SentenceRow.Slice),
            Model = DiachronicModel.DynamicBernoulli, Dimensions = 50, MaxVocabularySize = 5000, Subsampling = 1e-3,
            DriftPrecision = 100, StaticSteps = 300, DynamicSteps = 400, Seed = 0,
        },
        "aligned" => new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(SentenceRow.Tokens), TimeColumnName = nameof(SentenceRow.Slice),
            Model = DiachronicModel.AlignedSkipGram, Initialization = DiachronicInitialization.Random,
            Dimensions = dims, Epochs = epochs, Seed = 1,
        },
        _ => new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(SentenceRow.Tokens), TimeColumnName = nameof(SentenceRow.Slice),
            Model = DiachronicModel.IncrementalSkipGram, Initialization = DiachronicInitialization.WholeCorpus,
            Dimensions = dims, Epochs = epochs, InitEpochs = epochs, Seed = 1,
        },
    };
}
