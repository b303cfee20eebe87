using Allauzen.ML.Evaluation;
using Allauzen.ML.Synthetic;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Synthetic;

[TestClass]
public sealed class PrivateSyntheticDataTests
{
    private const int D = SlicedWassersteinFlowTests.D;

    private sealed class Row
    {
        [VectorType(D)]
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";
    }

    internal static IDataView Toy(MLContext ml, int n, int seed, out float[] raw)
    {
        raw = SlicedWassersteinFlowTests.TwoModes(n, seed);
        var rows = new List<Row>();
        for (int i = 0; i < n; i++)
            rows.Add(new Row { Features = raw.AsSpan(i * D, D).ToArray(), Label = i % 2 == 0 ? "plus" : "minus" });
        var data = ml.Data.LoadFromEnumerable(rows);
        return ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
    }

    private static float[] Features(IDataView view, int d, out uint[] labels)
    {
        var set = VectorSet.Read(view, "Features", "feature", d, null, 0);
        labels = view.Schema.GetColumnOrNull("Label") is { } l
            ? view.GetColumn<uint>(l).ToArray()
            : [];
        return set.Data;
    }

    private static PrivateSyntheticDataOptions Options(double epsilon = 5, string? label = null) => new()
    {
        Epsilon = epsilon,
        ClipNorm = 12,
        Steps = 60,
        Percentiles = 50,
        ClassConditional = label,
        Seed = 3,
    };

    [TestMethod]
    public void GeneratesTheFittedSchemaDeterministicallyAndNeverATrainingRow()
    {
        var ml = new MLContext(1);
        var data = Toy(ml, 400, 1, out var raw);
        var generator = ml.Transforms.PrivateSyntheticData(Options()).Fit(data);
        var a = generator.Generate(150, 7);
        Assert.AreEqual(1, a.Schema.Count);
        Assert.AreEqual(data.Schema["Features"].Type, a.Schema["Features"].Type);
        var x = Features(a, D, out _);
        CollectionAssert.AreEqual(x, Features(generator.Generate(150, 7), D, out _));
        CollectionAssert.AreNotEqual(x, Features(generator.Generate(150, 8), D, out _));
        Assert.AreEqual(150 * D, x.Length);
        var gen = new VectorSet(x, 150, D);
        var train = new VectorSet(raw, 400, D);
        for (int i = 0; i < gen.Rows; i++)
        {
            for (int j = 0; j < train.Rows; j++)
                Assert.IsTrue(gen.ExactSquaredDistance(i, train, j) > 0, $"generated row {i} equals training row {j}");
        }
        var report = generator.PrivacyReport;
        Assert.AreEqual(5, report.Epsilon);
        Assert.AreEqual(1e-5, report.Delta);
        Assert.AreEqual(70, report.Projections);
        Assert.AreEqual(DpSlicedWasserstein.AnalyticNoiseScale(70, D, 5, 1e-5), report.Sigma, 1e-12);
        StringAssert.Contains(report.Mechanism, "Gaussian mechanism");
    }

    [TestMethod]
    public void RowsAreClippedIntoTheUnitBallBeforeTheRelease()
    {
        var ml = new MLContext(1);
        var data = Toy(ml, 200, 2, out _);
        // ClipNorm 1 on rows of norm ≈ 7.5: every row is clipped, so without noise every released quantile is in [-1, 1].
        var generator = ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { Epsilon = double.PositiveInfinity, Steps = 1 }).Fit(data);
        Assert.AreEqual(0, generator.PrivacyReport.Sigma);
        StringAssert.Contains(generator.PrivacyReport.Mechanism, "NOT differentially private");
        foreach (float q in generator.ReleasedQuantiles)
            Assert.IsTrue(Math.Abs(q) <= 1f, $"released quantile {q} outside the unit ball's projection range");
    }

    [TestMethod]
    public void ClassConditionalSplitsTheBudgetAndEmitsTheLabel()
    {
        var ml = new MLContext(1);
        var data = Toy(ml, 400, 3, out _);
        var generator = ml.Transforms.PrivateSyntheticData(Options(epsilon: double.PositiveInfinity, label: "Label")).Fit(data);
        var view = generator.Generate(101, 1);
        Assert.AreEqual(data.Schema["Label"].Type, view.Schema["Label"].Type);
        var x = Features(view, D, out var labels);
        Assert.AreEqual(51, labels.Count(l => l == 1));
        Assert.AreEqual(50, labels.Count(l => l == 2));
        // Without noise each class's particles move to its own mode: class means have opposite signs.
        double m1 = 0, m2 = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            double s = 0;
            for (int t = 0; t < D; t++)
                s += x[i * D + t];
            if (labels[i] == 1) m1 += s; else m2 += s;
        }
        Assert.IsTrue(m1 * m2 < 0, $"class sums {m1} and {m2} should have opposite signs");

        var priv = ml.Transforms.PrivateSyntheticData(Options(epsilon: 4, label: "Label")).Fit(data).PrivacyReport;
        Assert.AreEqual(2, priv.Classes);
        Assert.AreEqual(4, priv.Epsilon);
        // The two class releases read disjoint rows: each spends the whole (ε, δ) (parallel composition).
        Assert.AreEqual(4, priv.EpsilonPerRelease);
        Assert.AreEqual(1e-5, priv.DeltaPerRelease);
        Assert.AreEqual(DpSlicedWasserstein.AnalyticNoiseScale(70, D, 4, 1e-5), priv.Sigma, 1e-12);
        StringAssert.Contains(priv.Mechanism, "parallel composition");
    }

    [TestMethod]
    public void SavesAndLoadsWithItsPrivacyReport()
    {
        var ml = new MLContext(1);
        var data = Toy(ml, 300, 4, out _);
        var generator = ml.Transforms.PrivateSyntheticData(Options(label: "Label")).Fit(data);
        string path = Path.Combine(Path.GetTempPath(), $"dpsw-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(generator, data.Schema, path);
            var loaded = (PrivateSyntheticDataTransformer)new MLContext(2).Model.Load(path, out _);
            Assert.AreEqual(generator.PrivacyReport, loaded.PrivacyReport);
            CollectionAssert.AreEqual(Features(generator.Generate(40, 5), D, out var l1), Features(loaded.Generate(40, 5), D, out var l2));
            CollectionAssert.AreEqual(l1, l2);

            // A report that claims more privacy than its noise gives is refused on load.
            var s = generator.Settings;
            var forged = new PrivateSyntheticDataTransformer(new MLContext(3), s with { Epsilon = s.Epsilon * 10 },
                PersistedColumnOf(data, "Features"), PersistedColumnOf(data, "Label"),
                SlicedWassersteinFlow.UnitDirections(s.Projections, D, 1), generator.ReleasedQuantiles.ToArray());
            ml.Model.Save(forged, data.Schema, path);
            var ex = Assert.Throws<Exception>(() => new MLContext(4).Model.Load(path, out _));
            string messages = "";
            for (Exception? e = ex; e is not null; e = e.InnerException)
                messages += e.Message + "\n";
            StringAssert.Contains(messages, "Sigma");
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static Allauzen.ML.Persistence.PersistedColumn PersistedColumnOf(IDataView data, string name) =>
        Allauzen.ML.Persistence.PersistedColumn.From(data.Schema[name]);

    [TestMethod]
    public void ReportsProgressPerStepAndHonoursCancellation()
    {
        var ml = new MLContext(1);
        var data = Toy(ml, 100, 6, out _);
        var reports = new List<SyntheticDataProgress>();
        var options = Options(label: "Label");
        options.Steps = 5;
        options.Progress = new SynchronousProgress(reports.Add);
        var generator = ml.Transforms.PrivateSyntheticData(options).Fit(data);
        generator.Generate(10, 1);
        Assert.AreEqual(10, reports.Count);
        Assert.AreEqual(new SyntheticDataProgress(1, 2, 5, 5), reports[^1]);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        generator.CancellationToken = cts.Token;
        Assert.Throws<OperationCanceledException>(() => generator.Generate(10, 1));
    }

    private sealed class SynchronousProgress(Action<SyntheticDataProgress> report) : IProgress<SyntheticDataProgress>
    {
        public void Report(SyntheticDataProgress value) => report(value);
    }

    [TestMethod]
    public void RejectsInvalidOptionsAndColumns()
    {
        var ml = new MLContext(1);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { Epsilon = 0 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { ClipNorm = -1 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { Percentiles = 1 }));
        var data = Toy(ml, 20, 5, out _);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { FeatureColumnName = "Nope" }).Fit(data));
        StringAssert.Contains(ex.Message, "Nope");
    }
}
