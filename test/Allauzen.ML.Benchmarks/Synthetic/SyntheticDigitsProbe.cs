using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Mlp;
using Allauzen.ML.Synthetic;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Benchmarks.Synthetic;

/// <summary>
/// The utility/privacy measurement of docs/results/synthetic-data.md (pixel space, digits): <c>dotnet run -c Release
/// --project test/Allauzen.ML.Benchmarks -- --synthetic-digits [reference-only]</c> (reference-only: the start and
/// K = 1000 rows, not the ε table).
/// </summary>
internal static class SyntheticDigitsProbe
{
    private const int D = 64;

    private sealed class Row
    {
        [VectorType(D)]
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";
    }

    public static void Run(string[] args)
    {
        bool referenceOnly = args.Length > 1 && args[1] == "reference-only";
        var ml = new MLContext(1);
        // Public rescaling: pixels are 0..16, so (x − 8)/16 ∈ [−0.5, 0.5]^64 and every row has norm ≤ 4 = ClipNorm.
        var rows = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Data", "digits.csv")).Where(l => l.Length > 0).Select(l =>
        {
            var v = l.Split(',').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            return new Row { Features = v.Take(D).Select(p => (p - 8f) / 16f).ToArray(), Label = ((int)v[D]).ToString(CultureInfo.InvariantCulture) };
        }).ToArray();
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows));
        var train = keyed.Transform(ml.Data.LoadFromEnumerable(rows.Where((_, i) => i % 2 == 0).ToArray()));
        var holdout = keyed.Transform(ml.Data.LoadFromEnumerable(rows.Where((_, i) => i % 2 == 1).ToArray()));
        int nTrain = (int)train.GetRowCount()!;
        var trainSet = VectorSet.Read(train, "Features", "feature", D, null, 0);
        var holdSet = VectorSet.Read(holdout, "Features", "feature", D, null, 0);
        Console.WriteLine($"digits: train {nTrain}, holdout {holdSet.Rows}; SW2(train, holdout) = {VectorSetMetrics.SlicedWasserstein(trainSet, holdSet, 500, 1):F4}");
        Console.WriteLine($"real-data Mlp accuracy (train→holdout): {Accuracy(ml, train, holdout):F3}");
        Console.WriteLine("| mode | ε | σ | SW₂ to holdout | precision | recall | density | coverage | TSTR acc. | DCR-MIA AUC | ε̂ interval | generate s |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        // Reference points of the joint flow: its start (0 steps) and the noise-free flow with many more directions.
        foreach (var (label, steps, k) in new[] { ("start (0 steps), ε = ∞", 0, 70), ("ε = ∞, K = 1000, S = 250", 1500, 1000) })
        {
            var g = ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions
            {
                Epsilon = double.PositiveInfinity, ClipNorm = 4, Seed = 1, Steps = steps, NumberOfProjections = k, SubProjections = k / 4,
            }).Fit(train);
            var syn = g.Generate(nTrain, 2);
            var set = VectorSet.Read(syn, "Features", "feature", D, null, 0);
            var m = ml.Data.EvaluateGenerative(holdout, syn, new GenerativeEvaluatorOptions { K = 5 });
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"reference {label}: SW2 {VectorSetMetrics.SlicedWasserstein(set, holdSet, 500, 1):F4}, precision {m.Precision:F3}, recall {m.Recall:F3}, density {m.Density:F3}, coverage {m.Coverage:F3}"));
        }
        foreach (bool conditional in referenceOnly ? Array.Empty<bool>() : new[] { false, true })
        {
            foreach (double eps in new[] { 1.0, 5.0, 10.0, double.PositiveInfinity })
            {
                var options = new PrivateSyntheticDataOptions
                {
                    Epsilon = eps, ClipNorm = 4, Seed = 1, ClassConditional = conditional ? "Label" : null,
                };
                var generator = ml.Transforms.PrivateSyntheticData(options).Fit(train);
                var sw = Stopwatch.StartNew();
                var synthetic = generator.Generate(nTrain, 2);
                double seconds = sw.Elapsed.TotalSeconds;
                var synSet = VectorSet.Read(synthetic, "Features", "feature", D, null, 0);
                double sw2 = VectorSetMetrics.SlicedWasserstein(synSet, holdSet, 500, 1);
                var prdc = ml.Data.EvaluateGenerative(holdout, synthetic, new GenerativeEvaluatorOptions { K = 5 });
                var audit = ml.Data.AuditMembership(train, holdout, new MembershipAuditOptions { SyntheticData = synthetic, Delta = 1e-5 });
                string tstr = conditional ? Accuracy(ml, synthetic, holdout).ToString("F3", CultureInfo.InvariantCulture) : "—";
                var r = generator.PrivacyReport;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {(conditional ? "class-cond." : "joint")} | {eps} | {r.Sigma:F3} | {sw2:F4} | {prdc.Precision:F3} | {prdc.Recall:F3} | {prdc.Density:F3} | {prdc.Coverage:F3} | {tstr} | {audit.Auc:F3} | [{audit.EpsilonInterval.Low:F2}, {audit.EpsilonInterval.High:F2}] | {seconds:F1} |"));
            }
        }
    }

    private static double Accuracy(MLContext ml, IDataView train, IDataView test)
    {
        var model = ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [128], Epochs = 30, Seed = 1 }).Fit(train);
        return ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
    }
}
