using Allauzen.ML.Evaluation;
using Allauzen.ML.Plots;
using Allauzen.ML.Smoothing;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Smoothing;

[TestClass]
public sealed class SmoothingPropertyTests
{
    [TestMethod]
    public void LowerBoundIncreasesWithCountsAndDecreasesAsAlphaShrinks()
    {
        foreach (long n in new long[] { 10, 100, 1000, 100_000 })
        {
            double previous = -1;
            for (long k = 0; k <= n; k += Math.Max(1, n / 37))
            {
                double lo = ConfidenceBounds.ClopperPearsonLower(k, n, 0.01);
                Assert.IsGreaterThan(previous, lo, $"CP_lo increases in k ({k}/{n})");
                Assert.IsLessThanOrEqualTo(ConfidenceBounds.ClopperPearsonLower(k, n, 0.05), ConfidenceBounds.ClopperPearsonLower(k, n, 0.001), "smaller α, smaller bound");
                Assert.IsLessThanOrEqualTo((double)k / n, lo);
                Assert.IsGreaterThanOrEqualTo((double)k / n, ConfidenceBounds.ClopperPearsonUpper(k, n, 0.01));
                previous = lo;
            }
        }
    }

    [TestMethod]
    public void RadiiNeverExceedTheSaturationCap()
    {
        var rng = new Random(3);
        for (int i = 0; i < 300; i++)
        {
            int k = rng.Next(2, 6);
            long n = rng.Next(20, 5000);
            var est = new long[k];
            var sel = new long[k];
            for (long j = 0; j < n; j++)
                est[rng.NextDouble() < 0.9 ? 0 : rng.Next(k)]++;
            for (int j = 0; j < 50; j++)
                sel[rng.NextDouble() < 0.9 ? 0 : rng.Next(k)]++;
            double alpha = new[] { 0.001, 0.01, 0.05 }[i % 3], sigma = 0.5;
            double cap = SmoothingCertifier.SaturationRadius(sigma, n, alpha);
            var cohen = SmoothingCertifier.Cohen(sel, est, alpha, sigma);
            Assert.IsLessThanOrEqualTo(cap + 1e-12, cohen.Radius, "Cohen ≤ cap");
            var cpmMono = SmoothingCertifier.Cpm(sel, est, alpha, sigma, CpmRadius.Mono);
            Assert.IsLessThanOrEqualTo(cap + 1e-12, cpmMono.Radius, "CPM R_mono ≤ cap");
            // Bonferroni-corrected R_multi never beats the uncorrected one
            Assert.IsLessThanOrEqualTo(SmoothingCertifier.Bonferroni(sel, est, alpha * k, sigma).Radius + 1e-12, SmoothingCertifier.Bonferroni(sel, est, alpha, sigma).Radius);
            // R_lip ≤ R_multi for any pair of bounds
            double pA = cohen.LowerBoundTopClass, pB = Math.Min(1 - pA, rng.NextDouble() * 0.3);
            if (pA > pB && pA < 1)
                Assert.IsLessThanOrEqualTo(0.5 * sigma * (Normal.InverseCdf(pA) - Normal.InverseCdf(pB)) + 1e-12, sigma * Math.Sqrt(Math.PI / 2) * (pA - pB));
        }
    }

    [TestMethod]
    public void LipschitzRadiusTendsToCohenAsLGrows()
    {
        foreach (double sigma in new[] { 0.25, 0.5, 1.0 })
        {
            foreach (double p in new[] { 0.6, 0.9, 0.99 })
            {
                double cohen = sigma * Normal.InverseCdf(p);
                double previous = double.PositiveInfinity;
                foreach (double l in new[] { 0.5, 2, 10, 100, 1000 })
                {
                    double r = LipschitzRadius.Mono(p, l, sigma);
                    Assert.IsGreaterThanOrEqualTo(cohen - 1e-9, r, "the Lipschitz radius is never below Cohen's");
                    Assert.IsLessThanOrEqualTo(previous + 1e-9, r, "decreasing in L");
                    previous = r;
                }
                Assert.AreEqual(cohen, previous, 2e-3 * cohen, $"L = 1000 ≈ Cohen at σ={sigma}, p={p}");
            }
        }
    }

    [TestMethod]
    public void LocalLipschitzIsBelowOneOverSigmaAndIncreasingInP()
    {
        foreach (double l in new[] { 0.3, 1, 5, 100 })
        {
            foreach (double sigma in new[] { 0.12, 0.5, 1 })
            {
                double previous = 0;
                foreach (double p in new[] { 0.55, 0.7, 0.9, 0.99, 0.999 })
                {
                    double kappa = LipschitzRadius.LocalLipschitz(p, l, sigma);
                    Assert.IsLessThanOrEqualTo(1 / sigma + 1e-9, kappa);
                    Assert.IsGreaterThanOrEqualTo(previous - 1e-12, kappa);
                    Assert.AreEqual(kappa, LipschitzRadius.LocalLipschitz(1 - p, l, sigma), 1e-7, "κ(p) = κ(1 − p)");
                    previous = kappa;
                }
            }
        }
    }

    [TestMethod]
    public void PredictNeedsElevenVotesAtOneInAThousand()
    {
        Assert.AreEqual(-1, SmoothingCertifier.CohenPredict([10, 0], 0.001));
        Assert.AreEqual(0, SmoothingCertifier.CohenPredict([11, 0], 0.001));
        Assert.AreEqual(10, RandomizedSmoothingOptions.MinimumUsefulSamples(0.001));
    }

    [TestMethod]
    public void EvaluatorCountsAbstentionsAsWrong()
    {
        // A smoothing certificate (Double radius, key 0 = abstain), keys given 1-based here.
        var ml = new MLContext(seed: 1);
        uint[] predicted = [1, 2, 0, 3, 1];
        uint[] truth = [1, 2, 2, 2, 1];
        double[] radius = [0.5, 0.1, 0, 0.9, 0.3];
        var rows = predicted.Select((p, i) => new CertifiedRow { PredictedLabel = p - 1, Label = truth[i] - 1, CertifiedRadius = radius[i] }).ToList();
        var def = SchemaDefinition.Create(typeof(CertifiedRow));
        def[nameof(CertifiedRow.Label)].ColumnType = new KeyDataViewType(typeof(uint), 3);
        def[nameof(CertifiedRow.PredictedLabel)].ColumnType = new KeyDataViewType(typeof(uint), 3);
        var curve = ml.MulticlassClassification.EvaluateCertified(ml.Data.LoadFromEnumerable(rows, def), radii: [0, 0.25, 0.5, 1.0], saturationRadius: 0.95);
        Assert.AreEqual(3 / 5.0, curve.Accuracy);
        Assert.AreEqual(3 / 5.0, curve.At(0));
        Assert.AreEqual(2 / 5.0, curve.At(0.25));
        Assert.AreEqual(1 / 5.0, curve.At(0.5), "radius 0.5 is certified at 0.5 (radius ≥ ε)");
        Assert.AreEqual(0.0, curve.At(1.0));
        Assert.AreEqual(0.2, curve.AbstainRate);
        Assert.AreEqual(0.95, curve.SaturationRadius);
        StringAssert.Contains(curve.ToTable("Cohen"), "| 63.8 | 0.25 | 40.00% |");
        string png = Path.Combine(Path.GetTempPath(), $"rs-curve-{Guid.NewGuid():N}.png");
        try
        {
            new Dictionary<string, CertifiedAccuracyMetrics> { ["Cohen"] = curve }.SavePlot(png);
            var head = File.ReadAllBytes(png).Take(4).ToArray();
            CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, head);
        }
        finally
        {
            File.Delete(png);
        }
    }

    public sealed class CertifiedRow
    {
        public uint Label { get; set; }

        public uint PredictedLabel { get; set; }

        public double CertifiedRadius { get; set; }
    }
}
