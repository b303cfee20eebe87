using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Datasets;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Mlp;
using Allauzen.ML.Samples.Common;
using Allauzen.ML.Synthetic;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Synthetic;

/// <summary>
/// The `synthetic` sample: differentially private synthetic images with the sliced-Wasserstein flow run in the 8-d code
/// space of a small autoencoder, class-conditional, over ε ∈ {1, 5, 10, ∞}. For each ε: PRDC against real test images,
/// train-on-synthetic/test-on-real accuracy (Mlp), the distance-to-closest-record membership audit (AUC, ε̂), SW₂ to the
/// test images, the smallest distance of a generated image to a private one, and a grid of generated images. Each
/// finite ε is released R times (<c>--repeats</c>, fresh secret noise each time); the monotonicity checks compare the
/// per-ε means and the JSON reports mean ± sd and an estimate of each check's failure probability.
/// </summary>
/// <remarks>
/// Split (seeded shuffle): private rows (the flow's data), public rows (the autoencoder's data, as the reference code
/// does with a disjoint half of the training set), test rows (never seen). With <c>--autoencoder private</c> the
/// autoencoder is trained on the private rows and the reported ε no longer covers the generator's decoder.
/// </remarks>
public static class SyntheticSample
{
    private static readonly Option<string> Data = SampleCli.Data("digits");
    private static readonly Option<string> Epsilons = SampleCli.Option("--epsilons", "1,5,10,inf", "privacy budgets ε (comma-separated; inf = no noise)");
    private static readonly Option<int> Latent = SampleCli.Int("--latent", 8, "code size d of the autoencoder (the flow's dimension)");
    private static readonly Option<int> Steps = SampleCli.Int("--steps", 1500, "flow steps per class");
    private static readonly Option<int> Projections = SampleCli.Int("--projections", 70, "K: released directions");
    private static readonly Option<int> Percentiles = SampleCli.Int("--percentiles", 100, "M: released quantiles per direction");
    private static readonly Option<int?> AeEpochs = SampleCli.OptionalInt("--ae-epochs", "autoencoder epochs (default: 150 on digits, 15 on Fashion-MNIST)");
    private static readonly Option<string> Autoencoder = SampleCli.Choice("--autoencoder", "public",
        "rows the autoencoder is trained on: public (a disjoint split; ε covers everything) or private (ε excludes the decoder)", "public", "private");
    private static readonly Option<int> MaxRows = SampleCli.Int("--max-rows", 12000, "Fashion-MNIST training images read (half private, half public)");
    private static readonly Option<bool> Joint = SampleCli.Option("--joint", false,
        "one flow for all classes (the whole ε on one release, as in the paper; no train-on-synthetic accuracy) instead of one per class");
    private static readonly Option<int> Repeats = SampleCli.Int("--repeats", 5,
        "R: independent releases (fit with fresh secret noise, generate, measure) per finite ε; the monotonicity checks compare the means over them (ε = ∞ has no noise: one release)");
    private static readonly Option<string?> MetricsOut = SampleCli.MetricsOut();
    private static readonly Option<string?> Output = SampleCli.Output("synthetic");

    /// <summary>`synthetic`: private synthetic images over ε, with utility and privacy-audit metrics.</summary>
    public static Command Command { get; } = SampleCli.Sample("synthetic",
        "Differentially private synthetic images (DP sliced-Wasserstein flow in an autoencoder's code space): PRDC, train-on-synthetic accuracy, membership audit and SW2 over epsilon.",
        Run, Data, Epsilons, Latent, Steps, Projections, Percentiles, AeEpochs, Autoencoder, MaxRows, Joint, Repeats, MetricsOut, Output);

    private const double Delta = 1e-5;

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static int Run(ParseResult args)
    {
        var sw = Stopwatch.StartNew();
        var ml = new MLContext(seed: 1);
        string folder = SampleCli.OutputFolder(args.GetValue(Output), "synthetic");
        double[] epsilons = ParseEpsilons(args.GetValue(Epsilons)!);
        var (images, test, name, side) = LoadImages(args.GetValue(Data)!, args.GetValue(MaxRows));
        var order = Enumerable.Range(0, images.Length).ToArray();
        new Random(1).Shuffle(order);
        var priv = order.Take(images.Length / 2).Select(i => images[i]).ToArray();
        var pub = order.Skip(images.Length / 2).Select(i => images[i]).ToArray();
        bool publicAe = args.GetValue(Autoencoder) == "public";
        int d = side * side;
        int aeEpochs = args.GetValue(AeEpochs) ?? (name == "digits" ? 150 : 15);

        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(LabelledImage.View(ml, test));
        var privateView = ml.Data.Cache(keys.Transform(LabelledImage.View(ml, priv)));
        var publicView = ml.Data.Cache(keys.Transform(LabelledImage.View(ml, pub)));
        var testView = ml.Data.Cache(keys.Transform(LabelledImage.View(ml, test)));
        Console.WriteLine(F($"{name}: {priv.Length} private rows (the flow), {pub.Length} public rows (the autoencoder{(publicAe ? "" : ": unused, --autoencoder private")}), {test.Length} test rows; {d} pixels in [0, 1]"));
        double realAccuracy = Accuracy(ml, privateView, testView);
        double floor = SlicedWasserstein2(priv.Select(i => i.Pixels).ToArray(), test.Select(i => i.Pixels).ToArray(), 200, 1);
        Console.WriteLine(F($"reference: Mlp trained on the private rows → test accuracy {realAccuracy:F3}; SW₂(private, test) = {floor:F4} (sampling floor)"));

        bool joint = args.GetValue(Joint);
        var testPixels = testView.GetColumn<VBuffer<float>>("Features").Select(v => v.DenseValues().ToArray()).ToArray();
        var testLabels = testView.GetColumn<uint>("Label").ToArray();
        var table = new List<string>
        {
            "| ε | σ | SW₂ to test | class SW₂ | precision | recall | density | coverage | TSTR acc. | audit AUC | ε̂ | ε̂ interval | min DCR | s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        };
        var results = new List<Dictionary<string, object?>>();
        var grids = new List<(double Epsilon, float[][] Rows)>();
        int repeats = args.GetValue(Repeats);
        // Per ε: the first release fills the table, the grid and the PRDC columns; every release (R per finite ε, one at
        // ε = ∞, where the fit is deterministic) gives SW₂, class SW₂, TSTR, the audit and the min DCR.
        var perEpsilon = new List<List<Dictionary<string, object?>>>();
        foreach (double eps in epsilons)
        {
            var releases = new List<Dictionary<string, object?>>();
            int count = double.IsFinite(eps) ? repeats : 1;
            for (int r = 0; r < count; r++)
            {
                var clock = Stopwatch.StartNew();
                var options = new PrivateSyntheticDataOptions
                {
                    Epsilon = eps, Delta = Delta, ClassConditional = joint ? null : "Label", Seed = 1, Steps = args.GetValue(Steps),
                    NumberOfProjections = args.GetValue(Projections), Percentiles = args.GetValue(Percentiles),
                    LowerBounds = new float[d], UpperBounds = [.. Enumerable.Repeat(1f, d)],
                    Latent = new LatentAutoencoderOptions
                    {
                        LatentDimension = args.GetValue(Latent), Epochs = aeEpochs, Seed = 1, PublicData = publicAe ? publicView : null,
                    },
                };
                var generator = ml.Transforms.PrivateSyntheticData(options).Fit(privateView);
                double fitSeconds = clock.Elapsed.TotalSeconds;
                int classes = generator.PrivacyReport.Classes;
                IDataView synthetic;
                string what = count > 1 ? F($"flow, ε = {EpsilonText(eps)}, release {r + 1}/{count}") : F($"flow, ε = {EpsilonText(eps)}");
                using (var progress = new ConsoleProgress(what, classes * options.Steps, TimeSpan.FromSeconds(10)))
                {
                    generator.Progress = new SyncProgress<SyntheticDataProgress>(p => progress.Report(p.Class * p.Steps + p.Step, F($"class {p.Class + 1}/{p.Classes}")));
                    synthetic = ml.Data.Cache(generator.Generate(priv.Length, seed: 2));
                }
                var generated = synthetic.GetColumn<VBuffer<float>>("Features").Select(v => v.DenseValues().ToArray()).ToArray();
                double generateSeconds = clock.Elapsed.TotalSeconds - fitSeconds;
                var labels = joint ? [.. Enumerable.Repeat(1u, generated.Length)] : synthetic.GetColumn<uint>("Label").ToArray();
                double sw2 = SlicedWasserstein2(generated, test.Select(i => i.Pixels).ToArray(), 200, 1);
                double? sw2Class = joint ? null : ClassSlicedWasserstein2(generated, labels, testPixels, testLabels);
                double? tstr = joint ? null : Accuracy(ml, synthetic, testView);
                // The threshold t* is chosen on half of the rows and the ε̂ interval counted on the other half, among thresholds that
                // flag at least 10 % of the rows (a top-of-ranking threshold holds too few rows to bound ε from above).
                var audit = ml.Data.AuditMembership(privateView, testView, new MembershipAuditOptions
                {
                    SyntheticData = synthetic, Delta = Delta, Seed = 1, HoldOutThreshold = true, MinimumFlaggedFraction = 0.1,
                });
                double minDcr = MinDistance(generated, priv);
                var report = generator.PrivacyReport;
                string tstrText = tstr is double t ? t.ToString("F3", CultureInfo.InvariantCulture) : "—";
                string sw2ClassText = sw2Class is double w ? w.ToString("F4", CultureInfo.InvariantCulture) : "—";
                var release = new Dictionary<string, object?>
                {
                    ["sw2"] = sw2, ["sw2_class"] = sw2Class, ["tstr_accuracy"] = tstr, ["audit_auc"] = audit.Auc,
                    ["audit_epsilon"] = Json(audit.EpsilonLowerBound), ["audit_epsilon_low"] = Json(audit.EpsilonInterval.Low),
                    ["audit_epsilon_high"] = Json(audit.EpsilonInterval.High), ["min_dcr"] = minDcr,
                    ["fit_seconds"] = fitSeconds, ["generate_seconds"] = generateSeconds,
                };
                if (r == 0)
                {
                    var prdc = ml.Data.EvaluateGenerative(testView, synthetic, new GenerativeEvaluatorOptions { K = 5, Seed = 1 });
                    double seconds = clock.Elapsed.TotalSeconds;
                    table.Add(F($"| {EpsilonText(eps)} | {report.Sigma:F2} | {sw2:F4} | {sw2ClassText} | {prdc.Precision:F3} | {prdc.Recall:F3} | {prdc.Density:F3} | {prdc.Coverage:F3} | {tstrText} | {audit.Auc:F3} | {audit.EpsilonLowerBound:F2} | [{audit.EpsilonInterval.Low:F2}, {audit.EpsilonInterval.High:F2}] | {minDcr:F3} | {seconds:F1} |"));
                    Console.WriteLine(F($"ε = {EpsilonText(eps)}: σ = {report.Sigma:F3}, SW₂ {sw2:F4}, {prdc}, TSTR accuracy {tstrText}, audit {audit}, min DCR {minDcr:F3} ({seconds:F1} s)"));
                    results.Add(new Dictionary<string, object?>(release)
                    {
                        ["epsilon"] = Json(eps), ["sigma"] = report.Sigma, ["covers_whole_generator"] = report.CoversWholeGenerator,
                        ["precision"] = prdc.Precision, ["recall"] = prdc.Recall, ["density"] = prdc.Density, ["coverage"] = prdc.Coverage,
                        ["seconds"] = seconds,
                    });
                    grids.Add((eps, joint ? [.. generated.Take(100)] : [.. Enumerable.Range(0, 10).SelectMany(c => generated.Where((_, i) => labels[i] == c + 1).Take(10))]));
                    if (eps == epsilons[^1])
                        Console.WriteLine($"privacy report (last ε): {report.Mechanism}");
                }
                else
                {
                    Console.WriteLine(F($"ε = {EpsilonText(eps)}, release {r + 1}/{count}: SW₂ {sw2:F4}, class SW₂ {sw2ClassText}, TSTR accuracy {tstrText}, audit {audit}, min DCR {minDcr:F3} ({clock.Elapsed.TotalSeconds:F1} s: fit {fitSeconds:F1}, flow {generateSeconds:F1})"));
                }
                release["seconds"] = clock.Elapsed.TotalSeconds;
                releases.Add(release);
            }
            perEpsilon.Add(releases);
            var current = results[^1];
            current["releases"] = releases;
            current["repeats"] = releases.Count;
            foreach (string key in new[] { "sw2", "sw2_class", "tstr_accuracy" })
            {
                var values = releases.Select(x => x[key] as double?).ToArray();
                current[key + "_mean"] = values.All(v => v is not null) ? values.Average(v => v!.Value) : null;
                current[key + "_sd"] = values.All(v => v is not null) ? StandardDeviation([.. values.Select(v => v!.Value)]) : null;
            }
        }
        table.ForEach(Console.WriteLine);
        Console.WriteLine(F($"Over the releases (R = {repeats} per finite ε, 1 at ε = ∞; mean ± sample sd):"));
        Console.WriteLine("| ε | R | SW₂ to test | class SW₂ | TSTR acc. | largest ε̂ upper end | min DCR |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var (eps, releases) in epsilons.Zip(perEpsilon))
        {
            var m = results[perEpsilon.IndexOf(releases)];
            string Pm(string key, string format) => m[key + "_mean"] is double mean
                ? $"{mean.ToString(format, CultureInfo.InvariantCulture)} ± {((double)m[key + "_sd"]!).ToString(format, CultureInfo.InvariantCulture)}" : "—";
            Console.WriteLine(F($"| {EpsilonText(eps)} | {releases.Count} | {Pm("sw2", "F4")} | {Pm("sw2_class", "F4")} | {Pm("tstr_accuracy", "F3")} | {releases.Max(x => Value(x["audit_epsilon_high"])):F2} | {releases.Min(x => (double)x["min_dcr"]!):F3} |"));
        }
        string grid = Path.Combine(folder, "synthetic-grid.pgm");
        WriteGrid(grid, grids, side);
        SampleCli.Wrote(grid, joint ? "generated images: one 10×10 block per ε" : "generated images: one block per ε, one row per class");

        // The checks .ci/run reads: utility improves with ε (the mean over the R releases of SW₂ down, of TSTR accuracy up, in
        // order of ε), the audit's whole ε̂ interval lies below every finite ε in every release, and no private row is
        // emitted. Each release draws secret noise, so each monotone check can fail on unlucky draws: its failure
        // probability is estimated from the releases' spread (normal approximation, below).
        var sorted = results.Zip(epsilons).OrderBy(r => r.Second).Select(r => r.First).ToArray();
        double?[] Means(string key) => [.. sorted.Select(r => r[key + "_mean"] as double?)];
        var sw2Means = Means("sw2");
        var classMeans = Means("sw2_class");
        var accuracies = Means("tstr_accuracy");
        bool swMonotone = sw2Means.Zip(sw2Means.Skip(1)).All(p => p.Second < p.First);
        bool swBestWithoutNoise = sw2Means.SkipLast(1).All(w => w > sw2Means[^1]);
        bool swClassMonotone = !joint && classMeans.Zip(classMeans.Skip(1)).All(p => p.Second < p.First);
        bool tstrMonotone = !joint && accuracies.Zip(accuracies.Skip(1)).All(p => p.Second >= p.First);
        bool tstrBestWithoutNoise = !joint && accuracies.SkipLast(1).All(a => a < accuracies[^1]);
        // The threshold is fixed on the selection half, so the interval counted on the evaluation half is a valid
        // Clopper–Pearson interval of a true value that an (ε, δ)-DP release keeps at most ε. Its lower end refutes the
        // guarantee if it passes ε (every release: audit_low_below_epsilon). Its upper end is the audit's power, not a
        // guarantee (a threshold that flags few rows of the evaluation half widens it; 1.34 at ε = 1 once): below ε in
        // the median release of each ε (audit_below_epsilon).
        bool auditBelow = perEpsilon.Zip(epsilons).All(r => !double.IsFinite(r.Second)
            || r.First.Select(x => Value(x["audit_epsilon_high"])).Order().ElementAt(r.First.Count / 2) <= r.Second);
        bool auditLowBelow = perEpsilon.Zip(epsilons).All(r => !double.IsFinite(r.Second) || r.First.All(x => Value(x["audit_epsilon_low"]) <= r.Second));
        var failure = new Dictionary<string, object?>
        {
            ["sw2_monotone"] = MonotoneFailure(sorted, "sw2", decreasing: true),
            ["sw2_class_monotone"] = joint ? null : MonotoneFailure(sorted, "sw2_class", decreasing: true),
            ["tstr_monotone"] = joint ? null : MonotoneFailure(sorted, "tstr_accuracy", decreasing: false),
        };
        Console.WriteLine(F($"monotone in ε (means over R = {repeats}): SW₂ {swMonotone}, class SW₂ {swClassMonotone}, TSTR {tstrMonotone}; estimated failure probability of a run (normal approximation from the measured sd): ")
            + string.Join(", ", failure.Select(kv => kv.Value is double p ? F($"{kv.Key} {p:G2}") : $"{kv.Key} —")));
        var metrics = new Dictionary<string, object?>
        {
            ["sample"] = "synthetic", ["data"] = name, ["private_rows"] = priv.Length, ["public_rows"] = pub.Length, ["test_rows"] = test.Length,
            ["autoencoder"] = publicAe ? "public" : "private", ["latent_dimension"] = args.GetValue(Latent), ["steps"] = args.GetValue(Steps),
            ["conditional"] = !joint, ["delta"] = Delta, ["repeats"] = repeats, ["real_accuracy"] = realAccuracy, ["sw2_floor"] = floor, ["results"] = results,
            ["sw2_monotone"] = swMonotone, ["sw2_best_without_noise"] = swBestWithoutNoise, ["sw2_class_monotone"] = swClassMonotone, ["tstr_monotone"] = tstrMonotone, ["tstr_best_without_noise"] = tstrBestWithoutNoise,
            ["monotone_statistic"] = "mean over the releases of each epsilon", ["failure_probability"] = failure,
            ["tstr_accuracy_infinity"] = sorted[^1]["tstr_accuracy"],
            ["audit_below_epsilon"] = auditBelow, ["audit_low_below_epsilon"] = auditLowBelow, ["audit_selection"] = "held-out half, threshold flags >= 10 % of rows; lower end every release, upper end the median release",
            ["min_dcr"] = perEpsilon.SelectMany(x => x).Min(r => (double)r["min_dcr"]!), ["seconds"] = sw.Elapsed.TotalSeconds,
        };
        MetricsFile.Write(args.GetValue(MetricsOut), metrics);
        return 0;
    }

    /// <summary>Sample standard deviation (n − 1); 0 for a single value.</summary>
    private static double StandardDeviation(double[] x)
    {
        if (x.Length < 2)
            return 0;
        double mean = x.Average();
        return Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / (x.Length - 1));
    }

    /// <summary>
    /// The probability that a run's monotone check on the means of <paramref name="key"/> fails, under a normal
    /// approximation with the measured means and sds taken as the truth: for each neighbouring pair the mean gap g in the
    /// expected direction and the sd s = √(s₁²/R₁ + s₂²/R₂) of the difference of the two means give Φ(−g/s); the pairs
    /// are treated as independent. Null when a value is missing.
    /// </summary>
    private static double? MonotoneFailure(Dictionary<string, object?>[] sorted, string key, bool decreasing)
    {
        double pass = 1;
        for (int i = 1; i < sorted.Length; i++)
        {
            if (sorted[i - 1][key + "_mean"] is not double a || sorted[i][key + "_mean"] is not double b)
                return null;
            double gap = decreasing ? a - b : b - a;
            double sa = (double)sorted[i - 1][key + "_sd"]!, sb = (double)sorted[i][key + "_sd"]!;
            double s = Math.Sqrt(sa * sa / (int)sorted[i - 1]["repeats"]! + sb * sb / (int)sorted[i]["repeats"]!);
            pass *= 1 - (s > 0 ? NormalTail(gap / s) : gap > 0 ? 0 : 1);
        }
        return 1 - pass;
    }

    /// <summary>Φ(−z) = erfc(z/√2)/2, with the Chebyshev-fitted erfc (fractional error below 1.2e-7 for every argument).</summary>
    private static double NormalTail(double z)
    {
        double x = Math.Abs(z) / Math.Sqrt(2), t = 1 / (1 + 0.5 * x);
        double erfc = t * Math.Exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
            + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return z >= 0 ? erfc / 2 : 1 - erfc / 2;
    }

    private static double[] ParseEpsilons(string value) =>
        [.. value.Split(',').Select(s => s.Trim().ToLowerInvariant() is "inf" or "infinity" or "∞" ? double.PositiveInfinity
            : double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double e) && e > 0 && double.IsFinite(e) ? e
            : throw new UsageException($"Invalid value '{value}' for option '--epsilons': expected positive numbers or inf separated by commas."))];

    private static string EpsilonText(double eps) => double.IsPositiveInfinity(eps) ? "∞" : eps.ToString("G", CultureInfo.InvariantCulture);

    /// <summary>JSON has no infinity: +∞ is written as the string "Infinity".</summary>
    private static object Json(double v) => double.IsFinite(v) ? v : v.ToString(CultureInfo.InvariantCulture);

    private static double Value(object? v) => v is double x ? x : double.PositiveInfinity;

    /// <summary>(train, test, name, image side): Fashion-MNIST (maxRows training images) or digits (70 % / 30 %), pixels in [0, 1].</summary>
    private static (LabelledImage[] Train, LabelledImage[] Test, string Name, int Side) LoadImages(string data, int maxRows)
    {
        if (data == "fashion-mnist" && FashionMnist.IsAvailable())
        {
            var classes = FashionMnist.ClassNames.ToList();
            LabelledImage[] Read(bool train, int rows) => [.. FashionMnist.Read(train, maxRows: rows)
                .Select(im => new LabelledImage([.. im.Features.Select(p => p / 255f)], classes.IndexOf(im.Label)))];
            return (Read(true, maxRows), Read(false, Math.Max(1000, maxRows / 4)), "fashion-mnist", 28);
        }
        if (data == "fashion-mnist")
            Console.WriteLine($"Fashion-MNIST not found in {FashionMnist.DebianDirectory} (apt-get install dataset-fashion-mnist); using digits.");
        var digits = File.ReadLines(SampleData.DigitsPath).Where(l => l.Length > 0).Select(l =>
        {
            var v = l.Split(',');
            return new LabelledImage([.. v.Take(64).Select(s => float.Parse(s, CultureInfo.InvariantCulture) / 16f)], int.Parse(v[64], CultureInfo.InvariantCulture));
        }).ToArray();
        var order = Enumerable.Range(0, digits.Length).ToArray();
        new Random(7).Shuffle(order);
        int cut = digits.Length * 7 / 10;
        return ([.. order[..cut].Select(i => digits[i])], [.. order[cut..].Select(i => digits[i])], "digits", 8);
    }

    /// <summary>Train-on-train, test-on-test accuracy of the Mlp trainer (128 hidden units, 30 epochs).</summary>
    private static double Accuracy(MLContext ml, IDataView train, IDataView test)
    {
        var model = ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [128], Epochs = 30, Seed = 1 }).Fit(train);
        return ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
    }

    /// <summary>The smallest Euclidean distance from a generated row to a private row (exact; a partial sum stops as
    /// soon as it passes the best so far).</summary>
    private static double MinDistance(float[][] generated, LabelledImage[] rows)
    {
        double best = double.PositiveInfinity;
        foreach (var g in generated)
        {
            foreach (var r in rows)
            {
                double s = 0;
                for (int t = 0; t < g.Length && s < best; t++)
                    s += (g[t] - r.Pixels[t]) * (double)(g[t] - r.Pixels[t]);
                best = Math.Min(best, s);
            }
        }
        return Math.Sqrt(best);
    }

    /// <summary>
    /// Sliced Wasserstein-2 distance between two point sets on <paramref name="projections"/> seeded random directions
    /// (1-D W₂ between the sorted projections, the smaller set's quantiles matched to the larger's).
    /// </summary>
    private static double SlicedWasserstein2(float[][] x, float[][] y, int projections, int seed)
    {
        var rng = new Random(seed);
        int d = x[0].Length;
        double total = 0;
        for (int l = 0; l < projections; l++)
        {
            var theta = new double[d];
            for (int t = 0; t < d; t++)
                theta[t] = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            double norm = Math.Sqrt(theta.Sum(v => v * v));
            double[] Project(float[][] set)
            {
                var p = new double[set.Length];
                for (int i = 0; i < set.Length; i++)
                {
                    for (int t = 0; t < d; t++)
                        p[i] += set[i][t] * theta[t];
                    p[i] /= norm;
                }
                Array.Sort(p);
                return p;
            }
            var (a, b) = (Project(x), Project(y));
            int n = Math.Max(a.Length, b.Length);
            double w2 = 0;
            for (int i = 0; i < n; i++)
            {
                double u = (i + 0.5) / n;
                double diff = a[(int)(u * a.Length)] - b[(int)(u * b.Length)];
                w2 += diff * diff;
            }
            total += w2 / n;
        }
        return Math.Sqrt(total / projections);
    }

    /// <summary>The class-conditional SW₂: the mean over classes of SW₂(generated rows of class c, test rows of class c),
    /// both labelled with the same key values.</summary>
    private static double ClassSlicedWasserstein2(float[][] generated, uint[] labels, float[][] test, uint[] testLabels)
    {
        double total = 0;
        int counted = 0;
        foreach (uint key in testLabels.Distinct().Order())
        {
            var g = generated.Where((_, i) => labels[i] == key).ToArray();
            var t = test.Where((_, i) => testLabels[i] == key).ToArray();
            if (g.Length == 0)
                continue;
            total += SlicedWasserstein2(g, t, 200, 1);
            counted++;
        }
        return total / counted;
    }

    /// <summary>A binary PGM: for each ε a block of 10 rows (classes) × 10 images, blocks side by side, 1-pixel gaps.</summary>
    private static void WriteGrid(string path, List<(double Epsilon, float[][] Rows)> grids, int side)
    {
        int cell = side + 1, blockWidth = 10 * cell + 2;
        int width = grids.Count * blockWidth, height = 10 * cell;
        var pixels = new byte[width * height];
        for (int g = 0; g < grids.Count; g++)
        {
            var rows = grids[g].Rows;
            for (int i = 0; i < rows.Length; i++)
            {
                int c = i / 10, j = i % 10;
                for (int p = 0; p < side * side; p++)
                {
                    int x = g * blockWidth + j * cell + p % side, y = c * cell + p / side;
                    pixels[y * width + x] = (byte)Math.Clamp(Math.Round(rows[i][p] * 255), 0, 255);
                }
            }
        }
        string tmp = path + ".tmp";
        using (var file = File.Create(tmp))
        {
            file.Write(System.Text.Encoding.ASCII.GetBytes($"P5\n{width} {height}\n255\n"));
            file.Write(pixels);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
