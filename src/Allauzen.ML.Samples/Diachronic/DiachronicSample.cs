using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Diachronic;
using Allauzen.ML.Plots;
using Allauzen.ML.Samples.Common;
using Microsoft.ML;

namespace Allauzen.ML.Samples.Diachronic;

/// <summary>One sentence of the dated corpus as an IDataView row.</summary>
public sealed class SentenceRow
{
    public string[] Tokens { get; set; } = [];

    public int Slice { get; set; }
}

/// <summary>A sentence with its year.</summary>
/// <summary>A sentence of the benchmark with its line in the corpus (the order column).</summary>
public sealed class LineRow
{
    public string[] Tokens { get; set; } = [];

    public int Slice { get; set; }

    public long Line { get; set; }
}

public sealed class YearRow
{
    public string[] Tokens { get; set; } = [];

    public int Year { get; set; }
}

/// <summary>
/// The `diachronic` sample: 4-year slices of the Debian-changelog corpus (the CI slice shipped in Data/, or
/// --corpus FILE, or --corpus system to rebuild it from /usr/share/doc), top drifting words, neighbours of
/// git / python / vcs per slice, a drift plot and word2vec exports, then the drift-injection benchmark (P@2K per model).
/// </summary>
public static class DiachronicSample
{

    private static readonly Option<string?> Corpus = SampleCli.Text("--corpus",
        "dated corpus TSV (default: the shipped CI slice of Debian changelogs), or 'system' to rebuild it from /usr/share/doc");
    private static readonly Option<string> Models = SampleCli.Option("--models", "incremental,aligned,dbe,control",
        "models of the injection benchmark, comma-separated, among incremental, aligned, dbe (the notes' setting), dbe-default (DynamicBernoulli at its defaults, K = --bench-dims), control");
    private static readonly Option<int?> Epochs = SampleCli.Epochs("5; benchmark: 5 incremental, 10 aligned; speed: 1");
    private static readonly Option<int?> MinCount = SampleCli.OptionalInt("--min-count", "eligibility threshold per slice (default: 30 scaled to the corpus size)");
    private static readonly Option<int> Dims = SampleCli.Int("--dims", 100, "embedding dimensions of the real chronology");
    private static readonly Option<bool> SkipReal = SampleCli.Option("--skip-real", false, "skip the real chronology, run the benchmark only");
    private static readonly Option<bool> Speed = SampleCli.Option("--speed", false, "only measure skip-gram speed on the whole corpus (gensim's settings)");
    private static readonly Option<int> Threads = SampleCli.Int("--threads", 2, "threads of the speed measurement");
    private static readonly Option<int> BenchWidth = SampleCli.Int("--bench-width", 8, "benchmark: years per slice");
    private static readonly Option<int> BenchSlices = SampleCli.Int("--bench-slices", 3, "benchmark: slices");
    private static readonly Option<int> BenchFirstYear = SampleCli.Int("--bench-first-year", 1999, "benchmark: first year");
    private static readonly Option<int> Pairs = SampleCli.Int("--pairs", 5, "benchmark: word pairs swapped", min: 0);
    private static readonly Option<int> T0 = SampleCli.Int("--t0", 1, "benchmark: first slice of the swap (p = 0.5)", min: 0);
    private static readonly Option<int> T1 = SampleCli.Int("--t1", 2, "benchmark: slice from which the swap is complete", min: 0);
    private static readonly Option<string> Chronology = SampleCli.Choice("--chronology", "shuffled",
        "benchmark: shuffled (the injected swaps are the only diachronic signal) or real", "shuffled", "real");
    private static readonly Option<int> BenchDims = SampleCli.Int("--bench-dims", 50, "benchmark: embedding dimensions");
    private static readonly Option<int> BenchThreads = SampleCli.Int("--bench-threads", 2, "benchmark: threads");
    private static readonly Option<bool> Verbose = SampleCli.Option("--verbose", false, "benchmark: print each model's top words and the gold ranks");
    private static readonly Option<string?> PairsFile = SampleCli.Text("--pairs-file", "benchmark: fixed pairs to swap (word<TAB>word per line)");
    private static readonly Option<string?> Dump = SampleCli.Text("--dump", "benchmark: write the injected corpus, control, pairs and eligible words to PREFIX.*");
    private static readonly Option<double?> DbeLambda = SampleCli.OptionalReal("--dbe-lambda", "DBE: drift precision λ (dbe: 10; dbe-default: the library default)");
    private static readonly Option<int> InjectSeed = SampleCli.Int("--inject-seed", 0, "benchmark: seed of the injection (pairs drawn, swaps, shuffled chronology)", min: 0);
    private static readonly Option<double?> DbeSample = SampleCli.OptionalReal("--dbe-sample", "DBE: subsampling threshold");
    private static readonly Option<int?> DbeStatic = SampleCli.OptionalInt("--dbe-static", "DBE: static steps");
    private static readonly Option<int?> DbeDynamic = SampleCli.OptionalInt("--dbe-dynamic", "DBE: dynamic steps");
    private static readonly Option<string?> DbeRegularizer = SampleCli.Text("--dbe-regularizer", "DBE: drift regularizer, randomwalk, anchored or grouplasso");
    private static readonly Option<double?> DbeWeight = SampleCli.OptionalReal("--dbe-weight", "DBE: drift penalty weight");
    private static readonly Option<double?> DbeLearningRate = SampleCli.OptionalReal("--dbe-lr", "DBE: Adam learning rate");
    private static readonly Option<double?> DbeBatch = SampleCli.OptionalReal("--dbe-batch", "DBE: fraction of every slice per step");
    private static readonly Option<int?> DbeSeed = SampleCli.OptionalInt("--dbe-seed", "DBE: seed", min: 0);
    private static readonly Option<int?> DbeContext = SampleCli.OptionalInt("--dbe-context", "DBE: context words (even)", min: 2);
    private static readonly Option<double?> DbeStaticLearningRate = SampleCli.OptionalReal("--dbe-static-lr", "DBE: Adam learning rate of the static pre-fit");
    private static readonly Option<bool> OrderByLine = SampleCli.Option("--order-by-line", false,
        "benchmark: pass the corpus line as OrderColumnName (sentences of a slice keep the corpus order instead of the hashed order)");
    private static readonly Option<int?> DbeNegatives = SampleCli.OptionalInt("--dbe-negatives", "DBE: negatives per target", min: 1);
    private static readonly Option<bool> DbeTrace = SampleCli.Option("--dbe-trace", false, "DBE: print the loss per target every 50 steps");
    private static readonly Option<int> BenchRounds = SampleCli.Int("--bench-rounds", 1,
        "benchmark: fit the models this many times in turn in one process and report each model's time against the first model's (median of the rounds)", min: 1);
    private static readonly Option<int?> AlignMin = SampleCli.OptionalInt("--align-min", "aligned model: minimum count of the alignment anchors");
    private static readonly Option<string?> MetricsOut = SampleCli.MetricsOut();
    private static readonly Option<string?> Output = SampleCli.Output("diachronic");

    /// <summary>`diachronic`: drift on the real chronology, then the drift-injection benchmark.</summary>
    public static Command Command { get; } = SampleCli.Sample("diachronic",
        "Diachronic embeddings on Debian changelogs: top drifting words, neighbours per slice, drift plot, word2vec export, then the drift-injection benchmark.",
        Run, Corpus, Models, Epochs, MinCount, Dims, SkipReal, Speed, Threads, BenchWidth, BenchSlices, BenchFirstYear, Pairs, T0, T1, Chronology, BenchDims,
        BenchThreads, Verbose, PairsFile, Dump, DbeLambda, InjectSeed, DbeSample, DbeStatic, DbeDynamic, DbeRegularizer, DbeWeight, DbeLearningRate, DbeBatch, DbeSeed, DbeContext, DbeStaticLearningRate, OrderByLine, DbeNegatives, DbeTrace, BenchRounds, AlignMin, MetricsOut, Output);

    private static int Run(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        string corpusArg = args.GetValue(Corpus) ?? Path.Combine(AppContext.BaseDirectory, "Data", "debian-changelogs-ci.tsv.gz");
        if (corpusArg != "system" && !File.Exists(corpusArg))
            throw new UsageException($"Invalid value '{corpusArg}' for option '--corpus': no such file.");
        DriftRegularizer? regularizer = args.GetValue(DbeRegularizer) is { } rg
            ? Enum.TryParse<DriftRegularizer>(rg, ignoreCase: true, out var r) ? r
                : throw new UsageException($"Invalid value '{rg}' for option '--dbe-regularizer': use {string.Join(", ", Enum.GetNames<DriftRegularizer>())}.")
            : null;
        var sw = Stopwatch.StartNew();
        List<DatedSentence> dated = corpusArg == "system"
            ? ChangelogExtractor.Extract("/usr/share/doc").ToList()
            : DatedCorpus.ReadTsv(corpusArg).ToList();
        string output = SampleCli.OutputFolder(args.GetValue(Output), "diachronic");
        if (args.GetValue(Speed))
            return SpeedRun(ml, dated, args.GetValue(Epochs) ?? 1, args.GetValue(Threads), args.GetValue(MetricsOut));
        const int firstYear = 1999, width = 4, slices = 6;
        var sentences = DatedCorpus.Bin(dated, firstYear, width, slices);
        long tokens = sentences.Sum(s => (long)s.Tokens.Length);
        Console.WriteLine($"corpus {corpusArg}: {dated.Count:N0} dated sentences, {sentences.Count:N0} in {firstYear}-{firstYear + width * slices - 1} " +
            $"({tokens:N0} tokens), {slices} slices of {width} years, read in {sw.Elapsed.TotalSeconds:F1} s");
        // eligibility threshold scaled to the corpus size (30 occurrences per slice on the full 2.72 M-token corpus)
        int minc = args.GetValue(MinCount) ?? Math.Max(5, (int)Math.Round(30 * tokens / 2_719_094.0));
        int epochs = args.GetValue(Epochs) ?? 5;
        int dims = args.GetValue(Dims);

        var metrics = new Dictionary<string, object?> { ["corpus_tokens"] = tokens };
        if (!args.GetValue(SkipReal))
            RealChronology(ml, sentences, metrics, firstYear, width, slices, minc, epochs, dims, output);

        // 2. Injection benchmark, CI-sized: 3 slices of 8 years, shuffled chronology (the injected swaps are the only
        //    diachronic signal), K = 5 pairs swapped with p = 0, 0.5, 1.
        var bench = new BenchmarkSettings
        {
            Width = args.GetValue(BenchWidth),
            Slices = args.GetValue(BenchSlices),
            Pairs = args.GetValue(Pairs),
            T0 = args.GetValue(T0),
            T1 = args.GetValue(T1),
            Shuffled = args.GetValue(Chronology) == "shuffled",
            Epochs = args.GetValue(Epochs),
            Dimensions = args.GetValue(BenchDims),
            DbeLambda = args.GetValue(DbeLambda),
            InjectSeed = args.GetValue(InjectSeed),
            Threads = args.GetValue(BenchThreads),
            Verbose = args.GetValue(Verbose),
            PairsFile = args.GetValue(PairsFile),
            DumpPrefix = args.GetValue(Dump),
            FirstYear = args.GetValue(BenchFirstYear),
            DbeSubsampling = args.GetValue(DbeSample),
            DbeStaticSteps = args.GetValue(DbeStatic),
            DbeDynamicSteps = args.GetValue(DbeDynamic),
            DbeRegularizer = regularizer,
            DbePenaltyWeight = args.GetValue(DbeWeight),
            DbeSeed = args.GetValue(DbeSeed),
            DbeContextSize = args.GetValue(DbeContext),
            DbeStaticLearningRate = args.GetValue(DbeStaticLearningRate),
            OrderByLine = args.GetValue(OrderByLine),
            DbeLearningRate = args.GetValue(DbeLearningRate),
            DbeBatchFraction = args.GetValue(DbeBatch),
            AlignmentMinCount = args.GetValue(AlignMin),
            DbeTrace = args.GetValue(DbeTrace),
            Rounds = args.GetValue(BenchRounds),
            DbeNegatives = args.GetValue(DbeNegatives),
        };
        foreach (var (key, value) in RunBenchmark(ml, dated, bench, args.GetValue(Models)!.Split(',')))
            metrics[key] = value;
        MetricsFile.Write(args.GetValue(MetricsOut), metrics);
        return 0;
    }

    /// <summary>Part 1: the real chronology in 4-year slices with incremental skip-gram (whole-corpus initialisation).</summary>
    private static void RealChronology(MLContext ml, List<SlicedSentence> sentences, Dictionary<string, object?> metrics,
        int firstYear, int width, int slices, int minc, int epochs, int dims, string output)
    {
        // 1. Real chronology, incremental skip-gram with whole-corpus initialisation.
        // the time column holds years (here the first year of each 4-year bin); SliceWidth = 4 bins them again
        var real = ml.Data.LoadFromEnumerable(sentences.Select(s => new YearRow { Tokens = s.Tokens, Year = firstYear + s.Slice * width }));
        var options = new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(YearRow.Tokens),
            TimeColumnName = nameof(YearRow.Year),
            SliceWidth = width,
            SliceOrigin = firstYear,
            Model = DiachronicModel.IncrementalSkipGram,
            Initialization = DiachronicInitialization.WholeCorpus,
            Dimensions = dims,
            Epochs = epochs,
            InitEpochs = epochs,
            Seed = 1,
        };
        var sw = Stopwatch.StartNew();
        DiachronicEmbeddingsTransformer model;
        using (var progress = new ConsoleProgress("incremental skip-gram (whole corpus, then each slice)", 1 + slices, TimeSpan.FromSeconds(5)))
        {
            options.Progress = new SyncProgress<DiachronicProgress>(p => progress.Report(p.Phase switch
            {
                "init" => p.Fraction,
                "slice" => 1 + p.Slice + p.Fraction,
                _ => 0,
            }, string.Create(CultureInfo.InvariantCulture, $"{p.Phase}{(p.Slice >= 0 ? $" {p.Slice}" : "")}, {p.WordsPerSecond:N0} words/s")));
            model = ml.Transforms.Text.DiachronicEmbeddings(options).Fit(real);
        }
        using var disposeModel = model;
        double wps = model.WordsPerSecond;
        metrics["vocabulary"] = model.Vocabulary.Count;
        metrics["words_per_second"] = Math.Round(wps);
        metrics["effective_words_per_second"] = Math.Round(model.EffectiveWordsPerSecond);
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
        SampleCli.Wrote(plot, "drift plot");
        string w2v = Path.Combine(output, $"slice{slices - 1}.w2v.txt");
        model.ExportWord2Vec(slices - 1, w2v, minCount: 5);
        SampleCli.Wrote(w2v, "word2vec export of the last slice");
    }

    /// <summary>
    /// Skip-gram speed on the whole corpus as one slice, gensim's settings (K 100, window 5, 5 negatives, min count 5,
    /// subsampling 1e-3, 2 threads, random init): compare with test/Allauzen.ML.Benchmarks/Diachronic/gensim_sgns_speed.py back to back.
    /// </summary>
    private static int SpeedRun(MLContext ml, List<DatedSentence> dated, int epochs, int threads, string? metricsOut)
    {
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
        // WordsPerSecond counts in-vocabulary tokens; gensim's raw count includes the tokens under min count, so
        // convert to corpus tokens over the same training time for the comparison.
        long inVocabulary = m.Vocabulary.Sum(w => m.GetCount(w, 0));
        double trainSeconds = inVocabulary * (double)epochs / m.WordsPerSecond;
        double raw = tokens * (double)epochs / trainSeconds;
        Console.WriteLine($"Allauzen.ML SGNS: sentences={dated.Count} tokens={tokens} V={m.Vocabulary.Count} epochs={epochs} threads={threads}");
        Console.WriteLine($"train {trainSeconds:F2} s, raw words/s {raw:N0}, effective words/s {m.EffectiveWordsPerSecond:N0}, raw words per CPU-s (whole Fit, vocabulary passes included) {tokens * epochs / cpu:N0}");
        MetricsFile.Write(metricsOut, new Dictionary<string, object?> { ["words_per_second"] = Math.Round(raw), ["effective_words_per_second"] = Math.Round(m.EffectiveWordsPerSecond) });
        return 0;
    }

    /// <summary>Settings of the injection benchmark.</summary>
    public sealed class BenchmarkSettings
    {
        public int FirstYear { get; set; } = 1999;
        public int Width { get; set; } = 8;
        public int Slices { get; set; } = 3;
        public int Pairs { get; set; } = 5;
        public int T0 { get; set; } = 1;
        public int T1 { get; set; } = 2;
        public bool Shuffled { get; set; } = true;
        public int? Epochs { get; set; }
        public int Dimensions { get; set; } = 100;
        public double? DbeLambda { get; set; }
        public int InjectSeed { get; set; }
        public int Threads { get; set; } = 2;
        public bool Verbose { get; set; }
        public string? PairsFile { get; set; }
        public string? DumpPrefix { get; set; }
        public double? DbeSubsampling { get; set; }
        public int? DbeStaticSteps { get; set; }
        public int? DbeDynamicSteps { get; set; }
        public DriftRegularizer? DbeRegularizer { get; set; }
        public double? DbePenaltyWeight { get; set; }
        public int? DbeSeed { get; set; }
        public int? DbeContextSize { get; set; }
        public double? DbeStaticLearningRate { get; set; }
        /// <summary>Passes the corpus line as the order column (the within-slice order of the corpus is kept).</summary>
        public bool OrderByLine { get; set; }
        public double? DbeLearningRate { get; set; }
        public double? DbeBatchFraction { get; set; }
        public int? AlignmentMinCount { get; set; }
        /// <summary>Prints the DBE loss per target every 50 steps (compare with dbe_reference.py --trace).</summary>
        public bool DbeTrace { get; set; }
        /// <summary>Fits of every model, in turn, in one process (the time ratios' median over the rounds).</summary>
        public int Rounds { get; set; } = 1;
        public int? DbeNegatives { get; set; }
    }

    /// <summary>Prints the DBE loss per target (the static and dynamic phases report every 50 steps).</summary>
    private static void TraceDbe(DiachronicProgress value)
    {
        if (value.Phase is "static" or "dynamic")
            Console.WriteLine($"  {value.Phase,-7} {value.Fraction.ToString("P0", CultureInfo.InvariantCulture)} loss/target {value.Loss.ToString("F5", CultureInfo.InvariantCulture)}" +
                $"  at {TraceClock.Elapsed.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture)} s");
    }

    /// <summary>Time since the process started the benchmark's first fit (the trace's time stamps).</summary>
    private static readonly Stopwatch TraceClock = new();

    /// <summary>
    /// The drift-injection benchmark: bin, inject (seed 0), fit each model, rank the eligible words by first-last drift
    /// (cosine; squared Euclidean for the dynamic model), P@2K and AP; "control" fits the aligned model on the uninjected real chronology and scores it with the same gold list.
    /// </summary>
    public static Dictionary<string, object?> RunBenchmark(MLContext ml, IReadOnlyList<DatedSentence> dated, BenchmarkSettings b, IEnumerable<string> models)
    {
        var sentences = DatedCorpus.Bin(dated, b.FirstYear, b.Width, b.Slices);
        long tokens = sentences.Sum(s => (long)s.Tokens.Length);
        // eligibility: 30 occurrences per slice on the full corpus (≈ 450 k tokens per 4-year slice), scaled to the slice size
        int minc = Math.Max(5, (int)Math.Round(30 * tokens / (double)b.Slices / 450_000));
        var fixedPairs = b.PairsFile is null ? null
            : File.ReadLines(b.PairsFile).Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split('\t')).Select(f => (f[0], f[1])).ToList();
        var inj = DriftInjection.Inject(sentences, b.Slices, pairs: b.Pairs, t0: b.T0, t1: b.T1, minCount: minc, shuffle: b.Shuffled, seed: b.InjectSeed,
            fixedPairs: fixedPairs);
        // the recipe's eligible set (step 2: ≥ minc in every slice before the swaps, longer than 2 characters); every
        // detector ranks exactly these words, so a gold word whose count falls under minc in a half-swapped slice is still ranked
        var eligible = inj.Eligible.ToHashSet(StringComparer.Ordinal);
        // the control (uninjected real chronology) ranks the words eligible in its own corpus
        var controlEligible = DriftInjection.Inject(sentences, b.Slices, pairs: 0, minCount: minc, none: true).Eligible.ToHashSet(StringComparer.Ordinal);
        var gold = inj.Gold;
        Console.WriteLine($"injection benchmark: {b.Slices} slices of {b.Width} years, {tokens:N0} tokens, {(b.Shuffled ? "shuffled" : "real")} chronology, " +
            $"{inj.Eligible.Count} eligible words (>= {minc} per slice), pairs {string.Join(" ", inj.Pairs.Select(p => $"{p.A}/{p.B}"))}");
        if (b.DumpPrefix is { } dump)
        {
            // the injected corpus (slice<TAB>tokens), the control corpus, the pairs and the eligible words, in the format of
            // the notes' inject.py, so the gensim baselines (test/Allauzen.ML.Benchmarks/Diachronic/gensim_injection.py) run on the same data
            File.WriteAllLines(dump + ".tsv", inj.Sentences.OrderBy(s => s.Slice).Select(s => $"{s.Slice}\t{string.Join(' ', s.Tokens)}"));
            File.WriteAllLines(dump + ".control.tsv", sentences.Select(s => $"{s.Slice}\t{string.Join(' ', s.Tokens)}"));
            File.WriteAllLines(dump + ".truth.tsv", new[] { $"# T={b.Slices} t0={b.T0} t1={b.T1} shuffle={b.Shuffled} eligible={inj.Eligible.Count}" }
                .Concat(inj.Pairs.Select(p => $"{p.A}\t{p.B}")));
            File.WriteAllLines(dump + ".eligible.txt", inj.Eligible.Order(StringComparer.Ordinal));
            foreach (var suffix in new[] { ".tsv", ".control.tsv", ".truth.tsv", ".eligible.txt" })
                SampleCli.Wrote(dump + suffix);
        }
        var metrics = new Dictionary<string, object?> { ["eligible"] = inj.Eligible.Count };
        // rows in corpus order: with the shuffled chronology their slices are not sorted (the estimator accepts any order)
        var injected = b.OrderByLine
            ? ml.Data.LoadFromEnumerable(inj.Sentences.Select((s, i) => new LineRow { Tokens = s.Tokens, Slice = s.Slice, Line = i }))
            : ml.Data.LoadFromEnumerable(inj.Sentences.Select(s => new SentenceRow { Tokens = s.Tokens, Slice = s.Slice }));
        var sw = new Stopwatch();
        var names = models.Where(n => n.Length > 0).ToList();
        var seconds = names.ToDictionary(n => n, _ => new List<double>());
        foreach (var name in names)
        {
            bool control = name == "control";
            var o = BenchmarkModelOptions(name, b);
            var data = control
                ? ml.Data.LoadFromEnumerable(sentences.Select(s => new SentenceRow { Tokens = s.Tokens, Slice = s.Slice }))
                : injected;
            sw.Restart();
            TraceClock.Restart();
            using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(data);
            seconds[name].Add(sw.Elapsed.TotalSeconds);
            if (b.DbeTrace)
                Console.WriteLine($"  fit done at {TraceClock.Elapsed.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture)} s");
            var ranked = control ? controlEligible : eligible;
            var ranking = m.GetDriftRanking(0, b.Slices - 1, 1).Where(x => ranked.Contains(x.Word)).Select(x => x.Word).ToList();
            double p = DriftInjection.PrecisionAtK(ranking, gold, gold.Count);
            double ap = DriftInjection.AveragePrecision(ranking, gold);
            Console.WriteLine($"  {name,-12} P@{gold.Count} = {p:F2}  AP = {ap:F2}  ({ranking.Count} ranked, {sw.Elapsed.TotalSeconds:F1} s)");
            if (b.Verbose)
            {
                Console.WriteLine("    top: " + string.Join(" ", ranking.Take(15).Select(w => $"{w}({m.GetCount(w, 0)}/{m.GetCount(w, b.Slices - 1)})")));
                Console.WriteLine("    gold ranks: " + string.Join(" ", gold.Select(w => $"{w}:{ranking.IndexOf(w) + 1}")));
                foreach (var measure in Enum.GetValues<DriftMeasure>().Where(x => x != m.DefaultDriftMeasure))
                {
                    var other = m.GetDriftRanking(0, b.Slices - 1, 1, measure).Where(x => ranked.Contains(x.Word)).Select(x => x.Word).ToList();
                    Console.WriteLine($"    {measure}: P@{gold.Count} = {DriftInjection.PrecisionAtK(other, gold, gold.Count):F2}  AP = {DriftInjection.AveragePrecision(other, gold):F2}");
                }
            }
            metrics[$"p_at_2k_{name}"] = p;
            metrics[$"ap_{name}"] = Math.Round(ap, 3);
        }
        // timing rounds after the first (scored) one: the same fits again, in turn, their times only
        for (int round = 1; round < b.Rounds; round++)
        {
            foreach (var name in names)
            {
                var again = BenchmarkModelOptions(name, b);
                var data = name == "control" ? ml.Data.LoadFromEnumerable(sentences.Select(s => new SentenceRow { Tokens = s.Tokens, Slice = s.Slice })) : injected;
                sw.Restart();
                using (ml.Transforms.Text.DiachronicEmbeddings(again).Fit(data))
                    seconds[name].Add(sw.Elapsed.TotalSeconds);
                Console.WriteLine($"  round {round + 1}: {name,-12} {seconds[name][^1]:F2} s");
            }
        }
        if (b.Rounds > 1 && names.Count > 1)
        {
            // each model's fit time over the first model's, round by round (the same conditions within a round)
            foreach (var name in names.Skip(1))
            {
                var ratios = seconds[name].Zip(seconds[names[0]], (x, y) => x / y).Order().ToList();
                double median = ratios[ratios.Count / 2];
                Console.WriteLine($"  time {name} / {names[0]}: median {median:F2} over {ratios.Count} rounds (sorted: {string.Join(" ", ratios.Select(r => r.ToString("F2", CultureInfo.InvariantCulture)))}); " +
                    $"median times {Median(seconds[name]):F2} s / {Median(seconds[names[0]]):F2} s");
                metrics[$"time_ratio_{name}"] = Math.Round(median, 3);
            }
        }
        return metrics;

        static double Median(List<double> x) => x.Order().ElementAt(x.Count / 2);
    }

    /// <summary>A model's options for the benchmark (its settings, then the command line's overrides).</summary>
    private static DiachronicEmbeddingsOptions BenchmarkModelOptions(string name, BenchmarkSettings b)
    {
        bool control = name == "control";
        var o = BenchmarkOptions(control ? "aligned" : name, b.Dimensions, control ? 5 : b.Epochs);
        o.Threads = b.Threads;
        if (b.OrderByLine && !control)
            o.OrderColumnName = nameof(LineRow.Line);
        o.AlignmentMinCount = b.AlignmentMinCount ?? o.AlignmentMinCount;
        if (name.StartsWith("dbe", StringComparison.Ordinal))
        {
            o.DriftPrecision = b.DbeLambda ?? o.DriftPrecision;
            o.Subsampling = b.DbeSubsampling ?? o.Subsampling;
            o.StaticSteps = b.DbeStaticSteps ?? o.StaticSteps;
            o.DynamicSteps = b.DbeDynamicSteps ?? o.DynamicSteps;
            o.DriftRegularizer = b.DbeRegularizer ?? o.DriftRegularizer;
            o.DriftPenaltyWeight = b.DbePenaltyWeight ?? o.DriftPenaltyWeight;
            o.Seed = b.DbeSeed ?? o.Seed;
            o.DynamicLearningRate = b.DbeLearningRate ?? o.DynamicLearningRate;
            o.BatchFraction = b.DbeBatchFraction ?? o.BatchFraction;
            o.ContextSize = b.DbeContextSize ?? o.ContextSize;
            o.StaticLearningRate = b.DbeStaticLearningRate ?? o.StaticLearningRate;
            o.DynamicNegatives = b.DbeNegatives ?? o.DynamicNegatives;
            if (b.DbeTrace)
                o.Progress = new SyncProgress<DiachronicProgress>(TraceDbe);
        }
        return o;
    }

    /// <summary>The benchmark settings of each model.</summary>
    public static DiachronicEmbeddingsOptions BenchmarkOptions(string name, int dims, int? epochs) => name switch
    {
        "dbe" => new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(SentenceRow.Tokens), TimeColumnName = nameof(SentenceRow.Slice),
            Model = DiachronicModel.DynamicBernoulli, Dimensions = 50, MaxVocabularySize = 5000, Subsampling = 1e-3,
            DriftPrecision = 10, StaticSteps = 300, DynamicSteps = 400, DynamicLearningRate = 1e-2, Seed = 0,
        },
        "dbe-default" => new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(SentenceRow.Tokens), TimeColumnName = nameof(SentenceRow.Slice),
            Model = DiachronicModel.DynamicBernoulli, Dimensions = dims,
        },
        "aligned" => new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(SentenceRow.Tokens), TimeColumnName = nameof(SentenceRow.Slice),
            Model = DiachronicModel.AlignedSkipGram, Initialization = DiachronicInitialization.Random,
            Dimensions = dims, Epochs = epochs ?? 10, Seed = 1,
        },
        _ => new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(SentenceRow.Tokens), TimeColumnName = nameof(SentenceRow.Slice),
            Model = DiachronicModel.IncrementalSkipGram, Initialization = DiachronicInitialization.WholeCorpus,
            Dimensions = dims, Epochs = epochs ?? 5, InitEpochs = epochs ?? 5, Seed = 1,
        },
    };
}
