using System.Globalization;
using System.Text.Json;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Smoothing;

namespace Allauzen.ML.Tests.Smoothing;

/// <summary>Every golden case of fixtures/randomized-smoothing at the README's tolerances.</summary>
[TestClass]
public sealed class SmoothingGoldenTests
{
    private static JsonElement Load(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "RandomizedSmoothing", name + ".json"))).RootElement;

    private static double Parse(JsonElement e) => e.ValueKind == JsonValueKind.String
        ? double.Parse(e.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture)
        : e.GetDouble();

    private static long[] Longs(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetInt64())];

    private static void AssertRel(double expected, double actual, double tol, string what)
    {
        double err = expected == 0 ? Math.Abs(actual) : Math.Abs(actual - expected) / Math.Abs(expected);
        Assert.IsLessThanOrEqualTo(tol, err, $"{what}: expected {expected:R}, got {actual:R} (relative error {err:E2})");
    }

    /// <summary>Parses C99 hex floats such as 0x1.56e1fc2f8f359p-997.</summary>
    private static double Hex(string h)
    {
        var parts = h[2..].Split('p');
        var mant = parts[0].Split('.');
        long bits = Convert.ToInt64(mant[0] + mant[1].PadRight(13, '0'), 16);
        return Math.ScaleB(bits, int.Parse(parts[1], CultureInfo.InvariantCulture) - 52);
    }

    [TestMethod]
    public void InverseCdfMatchesFiftyDigits()
    {
        foreach (var c in Load("normal").GetProperty("ppf").EnumerateArray())
        {
            double p = Hex(c.GetProperty("p_double_hex").GetString()!);
            AssertRel(Parse(c.GetProperty("z_mp50")), Normal.InverseCdf(p), 1e-14, $"Φ⁻¹({p:R})");
        }
        Assert.AreEqual(double.NegativeInfinity, Normal.InverseCdf(0));
        Assert.AreEqual(double.PositiveInfinity, Normal.InverseCdf(1));
        Assert.IsTrue(double.IsNaN(Normal.InverseCdf(-0.1)));
        Assert.IsTrue(double.IsNaN(Normal.InverseCdf(1.5)));
    }

    [TestMethod]
    public void CdfMatchesFiftyDigits()
    {
        foreach (var c in Load("normal").GetProperty("cdf").EnumerateArray())
        {
            double x = c.GetProperty("x").GetDouble();
            double expected = Parse(c.GetProperty("Phi_mp50"));
            if (x < -10)
                Assert.IsLessThanOrEqualTo(1e-315, Math.Abs(Normal.Cdf(x) - expected), $"Φ({x})");
            else
                AssertRel(expected, Normal.Cdf(x), 1e-14, $"Φ({x})");
            AssertRel(c.GetProperty("phi_scipy").GetDouble(), Normal.Pdf(x), 1e-13, $"φ({x})");
        }
    }

    [TestMethod]
    public void ClopperPearsonMatchesGoldens()
    {
        foreach (var c in Load("clopper_pearson").GetProperty("cases").EnumerateArray())
        {
            long k = c.GetProperty("nA").GetInt64(), n = c.GetProperty("n").GetInt64();
            double a = c.GetProperty("alpha").GetDouble();
            double lo = ConfidenceBounds.ClopperPearsonLower(k, n, a), up = ConfidenceBounds.ClopperPearsonUpper(k, n, a);
            AssertRel(Parse(c.GetProperty("pA_lower_mp50")), lo, 1e-12, $"CP_lo({k}, {n}, {a})");
            AssertRel(c.GetProperty("upper").GetDouble(), up, 1e-12, $"CP_up({k}, {n}, {a})");
            if (k == n)
                Assert.AreEqual(Math.Pow(a, 1.0 / n), lo, 1e-16, "closed form k = n");
            if (k == 0)
                Assert.AreEqual(0.0, lo);
            // symmetry CP_up(k) = 1 − CP_lo(n − k)
            Assert.AreEqual(1 - ConfidenceBounds.ClopperPearsonLower(n - k, n, a), up, 1e-15, "symmetry");
            bool abstain = c.GetProperty("abstain").GetBoolean();
            Assert.AreEqual(abstain, lo < 0.5, $"abstain flag {k}/{n}");
            if (!abstain)
            {
                foreach (var r in c.GetProperty("radius").EnumerateObject())
                {
                    double sigma = double.Parse(r.Name, CultureInfo.InvariantCulture);
                    var cert = SmoothingCertifier.Cohen([0, k], [n - k, k], a, sigma);
                    AssertRel(r.Value.GetDouble(), cert.Radius, 1e-9, $"Cohen radius {k}/{n} σ={sigma}");
                }
            }
        }
    }

    [TestMethod]
    public void BinomialTestMatchesGoldens()
    {
        foreach (var c in Load("binomial_test").GetProperty("cases").EnumerateArray())
        {
            long a = c.GetProperty("count1").GetInt64(), b = c.GetProperty("count2").GetInt64();
            double p = ConfidenceBounds.BinomialTestPValue(a, b);
            AssertRel(c.GetProperty("pvalue").GetDouble(), p, 1e-12, $"p-value ({a}, {b})");
            foreach (var f in c.GetProperty("abstain_at").EnumerateObject())
            {
                double alpha = double.Parse(f.Name, CultureInfo.InvariantCulture);
                int predicted = SmoothingCertifier.CohenPredict([a, b], alpha);
                Assert.AreEqual(f.Value.GetBoolean(), predicted < 0, $"PREDICT ({a}, {b}) at α = {alpha}");
            }
        }
    }

    [TestMethod]
    public void CohenCertifyFromCountsMatchesGoldens()
    {
        foreach (var c in Load("cohen_certify_from_counts").GetProperty("cases").EnumerateArray())
        {
            var cert = SmoothingCertifier.Cohen(Longs(c.GetProperty("counts_selection")), Longs(c.GetProperty("counts_estimation")),
                c.GetProperty("alpha").GetDouble(), c.GetProperty("sigma").GetDouble());
            Assert.AreEqual(c.GetProperty("prediction").GetInt32(), cert.Class);
            AssertRel(c.GetProperty("pA_lower").GetDouble(), cert.LowerBoundTopClass, 1e-12, "pA");
            AssertRel(c.GetProperty("radius").GetDouble(), cert.Radius, 1e-9, "radius");
        }
    }

    [TestMethod]
    public void CpmAndBonferroniMatchGoldens()
    {
        foreach (var c in Load("cpm_buckets").GetProperty("cases").EnumerateArray())
        {
            var sel = Longs(c.GetProperty("counts_selection"));
            var est = Longs(c.GetProperty("counts_estimation"));
            double alpha = c.GetProperty("alpha").GetDouble(), sigma = c.GetProperty("sigma").GetDouble();
            var mode = c.GetProperty("mode").GetString() == "Rmono" ? CpmRadius.Mono : CpmRadius.Multi;
            var g = c.GetProperty("cpm");
            var buckets = SmoothingCertifier.CpmBuckets(sel);
            var expectedBuckets = g.GetProperty("buckets").EnumerateArray().Select(b => b.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
            Assert.AreEqual(expectedBuckets.Length, buckets.Count, "bucket count");
            for (int i = 0; i < buckets.Count; i++)
                CollectionAssert.AreEqual(expectedBuckets[i], buckets[i], $"bucket {i}");
            var cert = SmoothingCertifier.Cpm(sel, est, alpha, sigma, mode);
            Assert.AreEqual(g.GetProperty("prediction").GetInt32(), cert.Class, "CPM prediction");
            AssertRel(g.GetProperty("pA_lower").GetDouble(), cert.LowerBoundTopClass, 1e-12, "CPM pA");
            if (mode == CpmRadius.Multi)
                AssertRel(g.GetProperty("pB_upper").GetDouble(), cert.UpperBoundRunnerUp, 1e-12, "CPM pB");
            AssertRel(g.GetProperty("radius").GetDouble(), cert.Radius, 1e-9, "CPM radius");

            var b = c.GetProperty("bonferroni_fixed");
            var bon = SmoothingCertifier.Bonferroni(sel, est, alpha, sigma, mode);
            Assert.AreEqual(b.GetProperty("prediction").GetInt32(), bon.Class, "Bonferroni prediction");
            AssertRel(b.GetProperty("pA_lower").GetDouble(), bon.LowerBoundTopClass, 1e-12, "Bonferroni pA");
            AssertRel(b.GetProperty("radius").GetDouble(), bon.Radius, 1e-9, "Bonferroni radius");

            var co = c.GetProperty("cohen");
            var cohen = SmoothingCertifier.Cohen(sel, est, alpha, sigma);
            Assert.AreEqual(co.GetProperty("prediction").GetInt32(), cohen.Class);
            AssertRel(co.GetProperty("radius").GetDouble(), cohen.Radius, 1e-9, "Cohen radius");
        }
    }

    [TestMethod]
    public void SimplexMapsMatchGoldens()
    {
        var u = Load("empirical_bernstein").GetProperty("maps_unit");
        var zs = u.GetProperty("z").EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetDouble()).ToArray()).ToArray();
        foreach (var (name, map) in new[]
        {
            ("softmax", new SimplexMap(SimplexMapKind.Softmax, 1)), ("sparsemax", new SimplexMap(SimplexMapKind.Sparsemax, 1)),
            ("softmax_T10", new SimplexMap(SimplexMapKind.Softmax, 10)), ("sparsemax_T10", new SimplexMap(SimplexMapKind.Sparsemax, 10)),
        })
        {
            var expected = u.GetProperty(name).EnumerateArray().ToArray();
            for (int i = 0; i < zs.Length; i++)
            {
                var h = new double[zs[i].Length];
                map.Apply(zs[i], h);
                var e = expected[i].EnumerateArray().Select(x => x.GetDouble()).ToArray();
                for (int c = 0; c < h.Length; c++)
                    Assert.AreEqual(e[c], h[c], 1e-15, $"{name} z#{i} class {c}");
            }
        }
        Assert.AreEqual(204, SimplexMap.PublishedGrid.Count);
    }

    [TestMethod]
    public void EmpiricalBernsteinMatchesGoldens()
    {
        foreach (var s in Load("empirical_bernstein").GetProperty("sets").EnumerateArray())
        {
            string name = s.GetProperty("name").GetString()!;
            long n = s.GetProperty("n").GetInt64();
            int k = s.GetProperty("K").GetInt32();
            SimplexMapStatistics stats;
            if (s.GetProperty("samples").ValueKind == JsonValueKind.Array)
            {
                var flat = s.GetProperty("samples").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(x => x.GetDouble())).ToArray();
                stats = SimplexMapStatistics.FromSamples(new SimplexMap(SimplexMapKind.Softmax, 1), flat, k);
            }
            else
            {
                var sums = s.GetProperty("sum").EnumerateArray().Select(x => x.GetDouble()).ToArray();
                var vars = s.GetProperty("var_unbiased").EnumerateArray().Select(x => x.GetDouble()).ToArray();
                stats = new SimplexMapStatistics(new SimplexMap(SimplexMapKind.Softmax, 1), n, sums, [.. vars.Select(v => v * (n - 1))]);
            }
            var mean = s.GetProperty("mean").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            var variance = s.GetProperty("var_unbiased").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            var bounds = s.GetProperty("bounds");
            double delta = bounds.GetProperty("delta_per_bound").GetDouble();
            var shift = bounds.GetProperty("shift").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            var lower = bounds.GetProperty("lower").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            var upper = bounds.GetProperty("upper").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            for (int c = 0; c < k; c++)
            {
                double m = stats.Sums[c] / n;
                Assert.AreEqual(mean[c], m, 1e-12, $"{name} mean {c}");
                Assert.AreEqual(variance[c], stats.Variance(c), 1e-12, $"{name} V {c}");
                double sh = ConfidenceBounds.EmpiricalBernsteinShift(stats.Variance(c), n, delta);
                Assert.AreEqual(shift[c], sh, 1e-12, $"{name} shift {c}");
                Assert.AreEqual(lower[c], m - sh, 1e-12, $"{name} lower {c}");
                Assert.AreEqual(upper[c], m + sh, 1e-12, $"{name} upper {c}");
            }
            // The certificate from the single map at δ = α/K (the reference's convention, no vote candidate winning here).
            double alpha = bounds.GetProperty("alpha").GetDouble();
            Assert.AreEqual(alpha / k, delta, 1e-18);
            double pA = bounds.GetProperty("pA_lower").GetDouble(), pB = bounds.GetProperty("pB_upper").GetDouble();
            int cA = bounds.GetProperty("cA").GetInt32(), cB = bounds.GetProperty("cB").GetInt32();
            int a = Enumerable.Range(0, k).MaxBy(c => stats.Sums[c] / n - ConfidenceBounds.EmpiricalBernsteinShift(stats.Variance(c), n, delta));
            Assert.AreEqual(cA, a, $"{name} cA");
            int b = Enumerable.Range(0, k).Where(c => c != a).MaxBy(c => stats.Sums[c] / n + ConfidenceBounds.EmpiricalBernsteinShift(stats.Variance(c), n, delta));
            Assert.AreEqual(cB, b, $"{name} cB");
            foreach (var r in bounds.GetProperty("radius").EnumerateObject())
            {
                double sigma = double.Parse(r.Name, CultureInfo.InvariantCulture);
                double multi = 0.5 * sigma * (Normal.InverseCdf(pA) - Normal.InverseCdf(pB));
                Assert.AreEqual(r.Value.GetProperty("R_multi_cohen").GetDouble(), multi, 1e-12, $"{name} R_multi σ={sigma}");
                double lip = sigma * Math.Sqrt(Math.PI / 2) * (pA - pB);
                Assert.AreEqual(r.Value.GetProperty("R_lipschitz_margin").GetDouble(), lip, 1e-12, $"{name} R_lip σ={sigma}");
                Assert.IsLessThanOrEqualTo(multi + 1e-15, lip, "R_lip ≤ R_multi");
            }
        }
    }

    [TestMethod]
    public void LipschitzRadiusMatchesGoldens()
    {
        foreach (var row in Load("lipschitz_radius").GetProperty("rows").EnumerateArray())
        {
            double l = row.GetProperty("L").GetDouble(), sigma = row.GetProperty("sigma").GetDouble(), range = row.GetProperty("r").GetDouble();
            Assert.AreEqual(row.GetProperty("lip_smoothed_ref_formula").GetDouble(), LipschitzRadius.SmoothedLipschitzLvm(l, sigma, range), 1e-12);
            foreach (var c in row.GetProperty("cases").EnumerateArray())
            {
                double p1 = c.GetProperty("p1").GetDouble();
                Assert.AreEqual(c.GetProperty("s0").GetDouble(), LipschitzRadius.RampStart(p1, l, sigma), 1e-9, $"s0 L={l} σ={sigma} p1={p1}");
                double kappa = LipschitzRadius.LocalLipschitz(p1, l, sigma);
                Assert.AreEqual(c.GetProperty("lip_quantile_local").GetDouble(), kappa, 1e-9, $"κ L={l} σ={sigma} p1={p1}");
                Assert.IsLessThanOrEqualTo(1 / sigma + 1e-12, kappa, "κ ≤ 1/σ");
                Assert.AreEqual(c.GetProperty("R_mono_lipschitz").GetDouble(), LipschitzRadius.Mono(p1, l, sigma), 1e-9, $"R_mono L={l} σ={sigma} p1={p1}");
            }
            foreach (var m in row.GetProperty("multi").EnumerateArray())
            {
                double p1 = m.GetProperty("p1").GetDouble(), p2 = m.GetProperty("p2").GetDouble();
                Assert.AreEqual(m.GetProperty("R_multi_lipschitz").GetDouble(), LipschitzRadius.Multi(p1, p2, l, sigma), 1e-9, $"R_multi L={l}");
                Assert.AreEqual(m.GetProperty("R_multi_cohen").GetDouble(), LipschitzRadius.Multi(p1, p2, double.PositiveInfinity, sigma), 1e-12);
            }
        }
    }

    [TestMethod]
    public void HighProbabilityAccuracyMatchesGoldens()
    {
        foreach (var c in Load("certified_accuracy_formula").GetProperty("high_prob_cases").EnumerateArray())
        {
            double v = CertifiedAccuracyMetrics.HighProbabilityAccuracy(c.GetProperty("mean").GetDouble(), c.GetProperty("alpha").GetDouble(),
                c.GetProperty("rho").GetDouble(), c.GetProperty("N").GetInt64());
            Assert.AreEqual(c.GetProperty("value").GetDouble(), v, 1e-12);
        }
    }

    [TestMethod]
    public void E2eReferenceCohenRadiiRespectTheExactRadius()
    {
        // The reference runs: every Cohen radius on the binary linear toy is ≤ the exact radius |x0|, and all
        // sit below the saturation cap for their n; the analytic pA gives the exact radius σΦ⁻¹(pA) = |x0|.
        foreach (var c in Load("e2e_reference_runs").GetProperty("cohen_certify").EnumerateArray())
        {
            if (c.GetProperty("model").GetString() != "binary")
                continue;
            double sigma = c.GetProperty("sigma").GetDouble();
            var an = c.GetProperty("analytic");
            double exact = an.GetProperty("radius_exact_smoothed").GetDouble();
            Assert.AreEqual(exact, sigma * Normal.InverseCdf(an.GetProperty("pA").GetDouble()), 1e-12);
            double cap = SmoothingCertifier.SaturationRadius(sigma, c.GetProperty("n").GetInt64(), c.GetProperty("alpha").GetDouble());
            foreach (var r in c.GetProperty("radius").EnumerateArray())
                Assert.IsLessThanOrEqualTo(Math.Min(exact, cap) + 1e-12, r.GetDouble());
        }
    }
}
