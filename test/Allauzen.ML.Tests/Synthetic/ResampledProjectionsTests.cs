using Allauzen.ML.Evaluation;
using Allauzen.ML.Synthetic;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Synthetic;

[TestClass]
public sealed class ResampledProjectionsTests
{
    private const int D = SlicedWassersteinFlowTests.D;
    private const double Delta = 1e-5;

    private static IDataView Toy(MLContext ml, int n, int seed, out float[] raw) => PrivateSyntheticDataTests.Toy(ml, n, seed, out raw);

    private static PrivateSyntheticDataOptions Options(double epsilon = 5, int steps = 40, double q = 0.25, string? label = null) => new()
    {
        Mechanism = PrivateSyntheticMechanism.ResampledProjections,
        Epsilon = epsilon,
        SamplingRate = q,
        NumberOfProjections = 40,
        Percentiles = 30,
        Steps = steps,
        ClipNorm = 12,
        ClassConditional = label,
        Seed = 2,
    };

    private static float[] Features(IDataView view) => VectorSet.Read(view, "Features", "feature", D, null, 0).Data;

    [TestMethod]
    public void ReportsTheAccountedEpsilonOfTheCalibratedNoise()
    {
        var ml = new MLContext(1);
        var data = Toy(ml, 300, 1, out _);
        foreach (var (label, classes) in new[] { ((string?)null, 1), ("Label", 2) })
        {
            var report = ml.Transforms.PrivateSyntheticData(Options(label: label)).Fit(data).PrivacyReport;
            // Per class (parallel composition: δ_c = δ): Δ at δ/T (failure δ/(2T) per step), T per-row sampled
            // releases, conversion at δ/2.
            double deltaC = Delta;
            double sensitivity = DpSlicedWasserstein.Sensitivity(40, D, deltaC / 40);
            double z = report.Sigma / sensitivity;
            double accounted = new RdpAccountant().AddSampledRowRelease(z, 0.25, 40).Epsilon(deltaC / 2);
            Assert.AreEqual(accounted, report.Epsilon, 1e-9 * report.Epsilon);
            Assert.IsTrue(report.Epsilon <= 5, $"reported ε {report.Epsilon} above the budget 5");
            Assert.IsTrue(report.Epsilon >= 5 * (1 - 1e-4), $"calibration should spend the budget, got ε = {report.Epsilon}");
            Assert.AreEqual(sensitivity, report.Sensitivity, 1e-12 * sensitivity);
            Assert.AreEqual(Delta, report.Delta);
            Assert.AreEqual(40, report.Steps);
            Assert.AreEqual(0.25, report.SamplingRate);
            Assert.AreEqual(classes, report.Classes);
            StringAssert.Contains(report.Mechanism, "DPSWflow-r");
        }

        // A given noise multiplier is accounted, not calibrated: ε = the accountant's value for z = 2.
        var fixedZ = Options();
        fixedZ.NoiseMultiplier = 2;
        var r2 = ml.Transforms.PrivateSyntheticData(fixedZ).Fit(data).PrivacyReport;
        Assert.AreEqual(new RdpAccountant().AddSampledRowRelease(2, 0.25, 40).Epsilon(Delta / 2), r2.Epsilon, 1e-12);
        Assert.AreEqual(2 * DpSlicedWasserstein.Sensitivity(40, D, Delta / 40), r2.Sigma, 1e-12);

        // The fixed mechanism reports its single release: ε as asked, σ = c·Δ/ε, one step, q = 1.
        var fixedReport = ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { Epsilon = 5, ClipNorm = 12, Steps = 1 }).Fit(data).PrivacyReport;
        Assert.AreEqual(5, fixedReport.Epsilon);
        Assert.AreEqual(DpSlicedWasserstein.AnalyticNoiseScale(70, D, 5, Delta), fixedReport.Sigma, 1e-12);
        Assert.AreEqual(1, fixedReport.Steps);
        Assert.AreEqual(1, fixedReport.SamplingRate);
    }

    [TestMethod]
    public void GeneratesDeterministicallyNeverATrainingRowAndSurvivesSaveLoad()
    {
        var ml = new MLContext(1);
        var data = Toy(ml, 300, 2, out var raw);
        var generator = ml.Transforms.PrivateSyntheticData(Options(label: "Label")).Fit(data);
        var x = Features(generator.Generate(120, 7));
        CollectionAssert.AreEqual(x, Features(generator.Generate(120, 7)));
        CollectionAssert.AreNotEqual(x, Features(generator.Generate(120, 8)));
        var gen = new VectorSet(x, 120, D);
        var train = new VectorSet(raw, 300, D);
        for (int i = 0; i < gen.Rows; i++)
        {
            for (int j = 0; j < train.Rows; j++)
                Assert.IsTrue(gen.ExactSquaredDistance(i, train, j) > 0, $"generated row {i} equals training row {j}");
        }

        string path = Path.Combine(Path.GetTempPath(), $"dpswr-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(generator, data.Schema, path);
            var loaded = (PrivateSyntheticDataTransformer)new MLContext(2).Model.Load(path, out _);
            Assert.AreEqual(generator.PrivacyReport, loaded.PrivacyReport);
            CollectionAssert.AreEqual(x, Features(loaded.Generate(120, 7)));

            // A file that claims a smaller ε than its noise gives is refused.
            var s = generator.Settings;
            var forged = new PrivateSyntheticDataTransformer(new MLContext(3), s with { Epsilon = s.Epsilon / 10 },
                Allauzen.ML.Persistence.PersistedColumn.From(data.Schema["Features"]), Allauzen.ML.Persistence.PersistedColumn.From(data.Schema["Label"]),
                ResampledProjections.Directions(40, 40, D, 2), generator.ReleasedQuantiles.ToArray(),
                new ResampledRelease(40, 0.25, s.Sigma / DpSlicedWasserstein.Sensitivity(40, D, Delta / 40), DpSlicedWasserstein.Sensitivity(40, D, Delta / 40), s.Epsilon / 10));
            ml.Model.Save(forged, data.Schema, path);
            var ex = Assert.Throws<Exception>(() => new MLContext(4).Model.Load(path, out _));
            string messages = "";
            for (Exception? e = ex; e is not null; e = e.InnerException)
                messages += e.Message + "\n";
            StringAssert.Contains(messages, "accounted ε");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void WithoutNoiseTheResampledFlowApproachesTheData()
    {
        var ml = new MLContext(1);
        const int n = 600;
        var data = Toy(ml, n, 3, out var raw);
        var options = Options(epsilon: double.PositiveInfinity, steps: 200, q: 0.5);
        options.NumberOfProjections = 70;
        options.Percentiles = 100;
        var generator = ml.Transforms.PrivateSyntheticData(options).Fit(data);
        Assert.AreEqual(0, generator.PrivacyReport.Sigma);
        StringAssert.Contains(generator.PrivacyReport.Mechanism, "NOT differentially private");
        var target = new VectorSet(raw, n, D);
        double after = VectorSetMetrics.SlicedWasserstein(new VectorSet(Features(generator.Generate(n, 1)), n, D), target, 200, 3);
        Console.WriteLine($"SW2 after 200 resampled steps: {after:F3}");
        Assert.IsTrue(after <= 0.5, $"SW₂ {after} > 0.5 (the start is ≈ 2.3; measured 0.17)");
    }

    [TestMethod]
    public void TheReleaseNoiseIsSecretNotDerivedFromTheSeed()
    {
        var ml = new MLContext(1);
        var data = Toy(ml, 100, 4, out _);
        foreach (var options in new[] { new PrivateSyntheticDataOptions { Epsilon = 5, ClipNorm = 12, Steps = 1, Seed = 5 }, Options(steps: 3) })
        {
            var a = ml.Transforms.PrivateSyntheticData(options).Fit(data).ReleasedQuantiles.ToArray();
            var b = ml.Transforms.PrivateSyntheticData(options).Fit(data).ReleasedQuantiles.ToArray();
            CollectionAssert.AreNotEqual(a, b, "two fits with the same Seed must draw different noise");
        }
    }

    [TestMethod]
    public void RejectsInconsistentMechanismOptions()
    {
        var ml = new MLContext(1);
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { SamplingRate = 0.5 }));
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { NoiseMultiplier = 1 }));
        var bad = Options();
        bad.SamplingRate = 0;
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.PrivateSyntheticData(bad));
        bad = Options();
        bad.Steps = 0;
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.PrivateSyntheticData(bad));
        StringAssert.Contains(ex.Message, "Steps");
        bad = Options();
        bad.NoiseMultiplier = -1;
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.PrivateSyntheticData(bad));
    }
}
