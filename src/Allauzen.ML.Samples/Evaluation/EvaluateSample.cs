using Allauzen.ML.Datasets;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Plots;

namespace Allauzen.ML.Samples.Evaluation;

/// <summary>
/// The `evaluate` sample: precision/recall/density/coverage of Fashion-MNIST training images against the test images, of
/// the classes 0–4 only (recall ≈ 0.5) and of noisy images (precision falls); discrete precision–recall curves of label
/// distributions; a membership-inference audit on digits of a memorising generator against a Gaussian fit.
/// </summary>
public static class EvaluateSample
{
    private static readonly SampleCommand Cli = new("evaluate", data: "fashion-mnist");
    private static readonly Option<int> MaxSamples = SampleCli.Int("--max-samples", 5000, "rows of each set for PRDC (seeded subsample)");
    private static readonly Option<int> K = SampleCli.Int("--k", 5, "neighbour rank of the PRDC balls");
    private static readonly Option<double> Noise = SampleCli.Real("--noise", 0.2, "pixel noise standard deviation, as a fraction of the pixel range");
    private static readonly Option<double> MemoriserNoise = SampleCli.Real("--memoriser-noise", 0.01, "noise of the memorising generator, as a fraction of the pixel range");

    /// <summary>`evaluate`: PRDC, discrete PR curves and a membership audit, with plots.</summary>
    public static Command Command { get; } = Cli.Create(
        "Generative and privacy evaluation: PRDC on Fashion-MNIST (test vs train, half the classes, noise), PR curves of label distributions, membership audit on digits.",
        Run, MaxSamples, K, Noise, MemoriserNoise);

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static int Run(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        string folder = Cli.OutputFolder(args);
        int maxSamples = args.GetValue(MaxSamples);
        var metrics = new Dictionary<string, object?> { ["sample"] = "evaluate" };
        var sw = Stopwatch.StartNew();

        // 1. PRDC. Reference: the test images; "generated": training images (the same law), the training images of classes
        //    0–4 only (half the modes), and training images with Gaussian pixel noise (off the data manifold).
        var (train, test, name, range) = LoadImages(Cli.Data(args), maxSamples);
        metrics["data"] = name;
        var rng = new Random(1);
        double sd = args.GetValue(Noise) * range;
        var noisy = train.Select(im => new LabelledImage([.. im.Pixels.Select(p => (float)(p + sd * Gaussian(rng)))], im.Class)).ToArray();
        var half = train.Where(im => im.Class < 5).ToArray();
        var options = new GenerativeEvaluatorOptions { K = args.GetValue(K), MaxSamples = maxSamples, Seed = 1 };
        var reference = LabelledImage.View(ml, test);
        var results = new Dictionary<string, GenerativeMetrics>
        {
            ["train"] = ml.Data.EvaluateGenerative(reference, LabelledImage.View(ml, train), options),
            ["train, classes 0–4"] = ml.Data.EvaluateGenerative(reference, LabelledImage.View(ml, half), options),
            [F($"train + noise σ = {args.GetValue(Noise):0.##}")] = ml.Data.EvaluateGenerative(reference, LabelledImage.View(ml, noisy), options),
        };
        Console.WriteLine(F($"{name}: test ({test.Length} rows) as reference, k = {options.K}, PCA to 90 % of the variance, {sw.Elapsed.TotalSeconds:F1} s"));
        string[] keys = ["train", "classes_0_4", "noise"];
        foreach (var ((label, m), key) in results.Zip(keys))
        {
            Console.WriteLine(F($"  vs {label,-24} {m}"));
            metrics[$"prdc_{key}"] = new Dictionary<string, object>
            {
                ["precision"] = m.Precision, ["recall"] = m.Recall, ["density"] = m.Density, ["coverage"] = m.Coverage,
                ["k"] = m.K, ["dimensions"] = m.Dimensions, ["reference_rows"] = m.ReferenceRows, ["generated_rows"] = m.GeneratedRows,
            };
        }
        metrics["pixel_noise_sd"] = sd;
        string prdcPng = Path.Combine(folder, "evaluate-prdc.png");
        results.SavePlot(prdcPng, $"PRDC against {name} test images");
        SampleCli.Wrote(prdcPng, "plot");

        // 2. Discrete PR curves of label distributions against the test labels: the labels of the half-class set, and
        //    the predictions of a nearest-class-mean classifier (fitted on the training images, applied to the test ones).
        double[] lambdas = [.. Enumerable.Range(-30, 61).Select(i => Math.Pow(10, i / 15.0))];
        var centroids = Centroids(train);
        var predicted = test.Select(im => new LabelledImage(im.Pixels, Nearest(centroids, im.Pixels))).ToArray();
        double accuracy = predicted.Zip(test).Average(z => z.First.Class == z.Second.Class ? 1.0 : 0.0);
        var testLabels = LabelledImage.View(ml, test);
        var curves = new Dictionary<string, IReadOnlyList<(double Lambda, double Precision, double Recall)>>
        {
            ["nearest-mean predictions"] = DiscretePrCurve.FromColumns(testLabels, LabelledImage.View(ml, predicted), "Label", lambdas),
            ["classes 0–4 only"] = DiscretePrCurve.FromColumns(testLabels, LabelledImage.View(ml, half), "Label", lambdas),
        };
        foreach (var ((label, curve), key) in curves.Zip(["predictions", "classes_0_4"]))
        {
            var one = curve.First(p => Math.Abs(p.Lambda - 1) < 1e-12);
            Console.WriteLine(F($"  label PR, {label,-24} α₁ = β₁ = 1 − TV = {one.Precision:0.0000}; max recall {curve.Max(p => p.Recall):0.0000}, max precision {curve.Max(p => p.Precision):0.0000}"));
            metrics[$"label_pr_{key}"] = curve.Select(p => new[] { p.Lambda, p.Precision, p.Recall }).ToArray();
            metrics[$"label_pr_{key}_tv_complement"] = one.Precision;
        }
        Console.WriteLine(F($"  nearest-class-mean accuracy on the test images: {accuracy:P1}"));
        metrics["nearest_mean_accuracy"] = accuracy;
        string prPng = Path.Combine(folder, "evaluate-label-pr.png");
        curves.SavePrCurvePlot(prPng, $"Label distributions against {name} test labels");
        SampleCli.Wrote(prPng, "plot");

        // 3. Membership audit on digits: half the rows train a "generator", the other half are held out. A memoriser
        //    releases its training rows plus 1 % noise; a Gaussian fit releases independent draws from N(mean, diag var).
        var digits = ReadDigits();
        var order = Enumerable.Range(0, digits.Length).OrderBy(_ => rng.Next()).ToArray();
        var members = order.Take(digits.Length / 2).Select(i => digits[i]).ToArray();
        var nonMembers = order.Skip(digits.Length / 2).Select(i => digits[i]).ToArray();
        double memoSd = args.GetValue(MemoriserNoise) * 16;
        var memoriser = members.Select(im => new LabelledImage([.. im.Pixels.Select(p => (float)(p + memoSd * Gaussian(rng)))], im.Class)).ToArray();
        var gaussian = GaussianFit(members, members.Length, rng);
        var audits = new Dictionary<string, MembershipAuditResult>();
        foreach (var (label, synthetic, key) in new[] { ("memoriser (members + 1 % noise)", memoriser, "memoriser"), ("Gaussian fit", gaussian, "gaussian") })
        {
            var audit = ml.Data.AuditMembership(LabelledImage.View(ml, members), LabelledImage.View(ml, nonMembers), new MembershipAuditOptions
            {
                Attack = MembershipAttack.DistanceToClosestRecord, SyntheticData = LabelledImage.View(ml, synthetic),
            });
            audits[label] = audit;
            Console.WriteLine(F($"  audit (digits, {members.Length} members, {nonMembers.Length} non-members), {label,-32} {audit}"));
            metrics[$"audit_{key}"] = new Dictionary<string, object>
            {
                ["auc"] = audit.Auc, ["balanced_accuracy"] = audit.BalancedAccuracy, ["tpr_at_fpr_1pct"] = audit.TprAtFpr1Percent,
                ["tpr_at_fpr_0.1pct"] = audit.TprAtFpr01Percent, ["epsilon"] = Json(audit.EpsilonLowerBound),
                ["epsilon_low"] = Json(audit.EpsilonInterval.Low), ["epsilon_high"] = Json(audit.EpsilonInterval.High),
            };
        }
        string rocPng = Path.Combine(folder, "evaluate-roc.png");
        audits.SaveRocPlot(rocPng, "Distance-to-closest-record attack, digits");
        SampleCli.Wrote(rocPng, "plot");
        metrics["seconds"] = sw.Elapsed.TotalSeconds;

        Cli.WriteMetrics(args, metrics);
        return 0;
    }

    /// <summary>JSON has no infinity: +∞ is written as the string "Infinity".</summary>
    private static object Json(double v) => double.IsFinite(v) ? v : v.ToString(CultureInfo.InvariantCulture);

    /// <summary>(train, test, name, pixel range): Fashion-MNIST (first 2·max training images), or digits when absent or asked for.</summary>
    private static (LabelledImage[] Train, LabelledImage[] Test, string Name, double Range) LoadImages(string data, int maxSamples)
    {
        if (data == "fashion-mnist" && FashionMnist.IsAvailable())
        {
            var classes = FashionMnist.ClassNames.ToList();
            LabelledImage[] Read(bool train, int rows) => [.. FashionMnist.Read(train, maxRows: rows)
                .Select(im => new LabelledImage(im.Features, classes.IndexOf(im.Label)))];
            return (Read(true, 2 * maxSamples), Read(false, 2 * maxSamples), "fashion-mnist", 255);
        }
        if (data == "fashion-mnist")
            Console.WriteLine($"Fashion-MNIST not found in {FashionMnist.DebianDirectory} (apt-get install dataset-fashion-mnist); using digits.");
        var digits = ReadDigits();
        int cut = digits.Length * 4 / 5;
        return (digits[..cut], digits[cut..], "digits", 16);
    }

    private static LabelledImage[] ReadDigits() =>
        [.. File.ReadLines(SampleData.DigitsPath).Where(l => l.Length > 0).Select(l =>
        {
            var v = l.Split(',');
            return new LabelledImage([.. v.Take(64).Select(s => float.Parse(s, CultureInfo.InvariantCulture))], int.Parse(v[64], CultureInfo.InvariantCulture));
        })];

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>Independent draws from N(mean, diag(variance)) fitted per pixel on <paramref name="rows"/>.</summary>
    private static LabelledImage[] GaussianFit(LabelledImage[] rows, int count, Random rng)
    {
        int d = rows[0].Pixels.Length;
        var mean = Enumerable.Range(0, d).Select(j => rows.Average(r => (double)r.Pixels[j])).ToArray();
        var sd = Enumerable.Range(0, d).Select(j => Math.Sqrt(rows.Average(r => (r.Pixels[j] - mean[j]) * (r.Pixels[j] - mean[j])))).ToArray();
        return [.. Enumerable.Range(0, count).Select(_ => new LabelledImage([.. Enumerable.Range(0, d).Select(j => (float)(mean[j] + sd[j] * Gaussian(rng)))], -1))];
    }

    private static double[][] Centroids(LabelledImage[] rows) =>
        [.. Enumerable.Range(0, 10).Select(c => rows.Where(r => r.Class == c).ToArray()).Select(g =>
            Enumerable.Range(0, rows[0].Pixels.Length).Select(j => g.Length == 0 ? double.NaN : g.Average(r => (double)r.Pixels[j])).ToArray())];

    private static int Nearest(double[][] centroids, float[] x)
    {
        int best = 0;
        double bestDistance = double.PositiveInfinity;
        for (int c = 0; c < centroids.Length; c++)
        {
            double s = 0;
            for (int j = 0; j < x.Length; j++)
                s += (x[j] - centroids[c][j]) * (x[j] - centroids[c][j]);
            if (s < bestDistance)
            {
                bestDistance = s;
                best = c;
            }
        }
        return best;
    }
}
