using Allauzen.ML.Core;
using Allauzen.ML.Mlp;
using Allauzen.ML.Smoothing;
using Allauzen.ML.Torch;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Allauzen.ML.Tests.Smoothing;

/// <summary>The exact first-layer noise shortcut of the sampler, and BridgingCpm's Lipschitz-based radius through the transform.</summary>
[TestClass]
public sealed class SmoothingShortcutAndLipschitzTests
{
    public sealed class Row6
    {
        [VectorType(6)]
        public float[] Features { get; set; } = [];
    }

    public sealed class Row2
    {
        [VectorType(2)]
        public float[] Features { get; set; } = [];
    }

    /// <summary>A 6-3-3 ReLU MLP with fixed weights: its first layer (h = 3) is narrower than the input (d = 6).</summary>
    internal static MlpTransformer TinyModel(MLContext ml)
    {
        TorchRuntime.EnsureInitialized();
        var net = new MlpNetwork(new MlpArchitecture(6, [3], 3, MlpActivation.Relu, 0));
        using (torch.no_grad())
        {
            var layers = net.LinearLayers().Select(l => l.Layer).ToArray();
            layers[0].weight!.copy_(torch.tensor(new float[]
            {
                0.9f, -0.4f, 0.3f, 0.0f, 0.5f, -0.2f,
                -0.3f, 0.8f, 0.1f, 0.6f, -0.5f, 0.2f,
                0.2f, 0.1f, -0.7f, 0.4f, 0.3f, 0.9f,
            }, [3, 6]));
            layers[0].bias!.copy_(torch.tensor(new float[] { 0.1f, -0.1f, 0.05f }));
            layers[1].weight!.copy_(torch.tensor(new float[] { 1.2f, -0.6f, 0.3f, -0.4f, 1.0f, -0.5f, 0.2f, 0.3f, 0.9f }, [3, 3]));
            layers[1].bias!.copy_(torch.tensor(new float[] { 0.0f, 0.1f, -0.1f }));
        }
        return new MlpTransformer(ml, net, "Features", LabelNames.Default(3), "Score", "PredictedLabel");
    }

    internal static IDataView TinyPoints(MLContext ml, float shift = 0) => ml.Data.LoadFromEnumerable(Enumerable.Range(0, 5).Select(i => new Row6
    {
        Features = [0.1f * i - 0.2f + shift, 0.05f * i, -0.1f, 0.2f - 0.05f * i, 0.0f, 0.1f],
    }));

    [TestMethod]
    public void FirstLayerShortcutHasTheFirstLayersNoiseCovariance()
    {
        var ml = new MLContext(seed: 1);
        var model = TinyModel(ml);
        using var shortcut = FirstLayerNoise.TryCreate(model);
        Assert.IsNotNull(shortcut, "a 6-3-3 MLP starts with a linear layer narrower than its input");
        Assert.AreEqual(3, shortcut.Width);
        // Cov(W·ε) = W·Wᵀ must equal Cov(L·z) = L·Lᵀ = (Lᵀ)ᵀ·Lᵀ.
        var w = shortcut.Weight.to(torch.float64);
        var lt = shortcut.MixTransposed.to(torch.float64);
        var expected = torch.mm(w, w.t());
        var actual = torch.mm(lt.t(), lt);
        double err = (expected - actual).abs().max().item<double>();
        Assert.IsLessThanOrEqualTo(1e-5, err, "L·Lᵀ = W·Wᵀ");
        // Empirical check: the mixed noise of 200,000 draws has covariance W·Wᵀ (4 standard errors).
        using var gen = new torch.Generator(42);
        var z = torch.empty(200_000, 3, torch.float32).normal_(0, 1, gen);
        var y = shortcut.Mix(z).to(torch.float64);
        var cov = torch.mm(y.t(), y) / 200_000.0;
        var diag = torch.diag(expected);
        var se = torch.sqrt((torch.outer(diag, diag) + expected * expected) / 200_000.0);
        double worst = ((cov - expected).abs() / se).max().item<double>();
        Assert.IsLessThanOrEqualTo(4.0, worst, "empirical covariance of the mixed noise vs W·Wᵀ, in standard errors");
    }

    [TestMethod]
    public void ShortcutDoesNotApplyWhenTheFirstLayerIsNotNarrower()
    {
        var ml = new MLContext(seed: 1);
        Assert.IsNull(FirstLayerNoise.TryCreate(RandomizedSmoothingTests.LinearModel(ml)), "2 → 2: h = d, the direct path is kept");
    }

    private static double[][] EstimationCounts(MLContext ml, MlpTransformer model, IDataView data, bool shortcut, int seed)
    {
        var t = ml.Transforms.SampleRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = model, Sigma = 0.5, SelectionSamples = 1, EstimationSamples = 20_000, Seed = seed, BatchSize = 4096,
        }).Fit(data);
        t.Sampler.UseFirstLayerShortcut = shortcut;
        return [.. t.Transform(data).GetColumn<VBuffer<double>>(SmoothingColumnNames.EstimationCounts).Select(v => v.DenseValues().ToArray())];
    }

    /// <summary>Pearson's chi-square homogeneity statistic of paired count vectors, summed over rows, with its degrees of freedom.</summary>
    internal static (double Statistic, int Df) ChiSquare(double[][] a, double[][] b)
    {
        double stat = 0;
        int df = 0;
        for (int r = 0; r < a.Length; r++)
        {
            double na = a[r].Sum(), nb = b[r].Sum();
            int used = 0;
            for (int c = 0; c < a[r].Length; c++)
            {
                double col = a[r][c] + b[r][c];
                if (col == 0)
                    continue;
                used++;
                double ea = na * col / (na + nb), eb = nb * col / (na + nb);
                stat += (a[r][c] - ea) * (a[r][c] - ea) / ea + (b[r][c] - eb) * (b[r][c] - eb) / eb;
            }
            df += used - 1;
        }
        return (stat, df);
    }

    /// <summary>The 0.999 quantile of χ²(df) (Wilson–Hilferty).</summary>
    internal static double ChiSquareQuantile999(int df)
    {
        double v = 2.0 / (9 * df);
        return df * Math.Pow(1 - v + 3.0902 * Math.Sqrt(v), 3);
    }

    [TestMethod]
    public void ShortcutVoteCountsHaveTheSameDistributionAsDirectNoise()
    {
        var ml = new MLContext(seed: 1);
        var model = TinyModel(ml);
        var data = TinyPoints(ml);
        var viaShortcut = EstimationCounts(ml, model, data, shortcut: true, seed: 1);
        var direct = EstimationCounts(ml, model, data, shortcut: false, seed: 2);
        foreach (var row in viaShortcut)
            Assert.IsGreaterThanOrEqualTo(2, row.Count(c => c >= 500), "the test points split their votes (otherwise the comparison is void)");
        Assert.IsFalse(viaShortcut.Zip(EstimationCounts(ml, model, data, shortcut: false, seed: 1)).All(p => p.First.SequenceEqual(p.Second)),
            "the shortcut draws other noise than the direct path");
        var (stat, df) = ChiSquare(viaShortcut, direct);
        Assert.IsLessThanOrEqualTo(ChiSquareQuantile999(df), stat, $"χ² = {stat:F2} on {df} df: shortcut vs direct counts");
        // The comparison has power: shifting the points by 0.1 in one coordinate is detected.
        var shifted = EstimationCounts(ml, model, TinyPoints(ml, 0.1f), shortcut: false, seed: 2);
        var (shiftStat, shiftDf) = ChiSquare(viaShortcut, shifted);
        Assert.IsGreaterThan(ChiSquareQuantile999(shiftDf), shiftStat, $"χ² = {shiftStat:F2} on {shiftDf} df for shifted points");
    }

    private static IDataView LinePoints(MLContext ml, int rows, Func<int, float> x0) =>
        ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(i => new Row2 { Features = [x0(i), 0.1f] }));

    private static (double[] Radius, double[] Lower, double[] Upper, bool[] Abstained, uint[] Pred) Certify(MLContext ml, RandomizedSmoothingOptions o, IDataView data)
    {
        var v = ml.Transforms.CertifyRandomizedSmoothing(o).Fit(data).Transform(data);
        return (v.GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray(), v.GetColumn<double>(SmoothingColumnNames.LowerBoundTopClass).ToArray(),
            v.GetColumn<double>(SmoothingColumnNames.UpperBoundRunnerUp).ToArray(), v.GetColumn<bool>(SmoothingColumnNames.Abstained).ToArray(),
            v.GetColumn<uint>(SmoothingColumnNames.PredictedLabel).ToArray());
    }

    private static RandomizedSmoothingOptions CpmOptions(MLContext ml, double? lipschitz) => new()
    {
        BaseModel = RandomizedSmoothingTests.LinearModel(ml), Method = SmoothingMethod.BridgingCpm, Sigma = 0.5, SelectionSamples = 50,
        EstimationSamples = 2000, Alpha = 0.01, Seed = 3, LipschitzConstant = lipschitz,
    };

    [TestMethod]
    public void LipschitzRadiusIsUsedWhenGiven()
    {
        var ml = new MLContext(seed: 1);
        var data = LinePoints(ml, 8, i => 0.15f * i - 0.5f);
        const double l = 1.5, sigma = 0.5;
        var estimator = ml.Transforms.CertifyRandomizedSmoothing(CpmOptions(ml, l));
        Assert.AreEqual(l, estimator.Fit(data).LipschitzConstant);
        var r = Certify(ml, CpmOptions(ml, l), data);
        double softL = SmoothingCertifier.SoftmaxBucketLipschitz(l, 1.0);
        Assert.AreEqual(Math.Sqrt(2) / 4 * l, softL, 1e-15);
        int certified = 0;
        for (int i = 0; i < r.Radius.Length; i++)
        {
            if (r.Abstained[i])
                continue;
            certified++;
            Assert.AreEqual(LipschitzRadius.Multi(r.Lower[i], r.Upper[i], softL, sigma), r.Radius[i], 1e-12, $"row {i}");
            double cohen = 0.5 * sigma * (Normal.InverseCdf(r.Lower[i]) - Normal.InverseCdf(r.Upper[i]));
            Assert.IsGreaterThan(cohen, r.Radius[i], $"row {i}: a finite L gives more than Cohen's radius on the same bounds");
        }
        Assert.IsGreaterThanOrEqualTo(4, certified);
        // The bounds are of the soft output (empirical Bernstein on softmax means), not of the votes.
        var votes = Certify(ml, CpmOptions(ml, null), data);
        Assert.IsFalse(votes.Lower.SequenceEqual(r.Lower));
    }

    [TestMethod]
    public void LipschitzRadiusTendsToCohenThroughTheTransformAsLGrows()
    {
        var ml = new MLContext(seed: 1);
        var data = LinePoints(ml, 6, i => 0.2f + 0.15f * i);
        const double sigma = 0.5;
        var cohen = Certify(ml, CpmOptions(ml, double.PositiveInfinity), data);
        double[] previous = [.. cohen.Radius.Select(_ => double.PositiveInfinity)];
        foreach (double l in new[] { 0.5, 1, 2, 8, 64, 1e3, 1e5, 1e7 })
        {
            var r = Certify(ml, CpmOptions(ml, l), data);
            for (int i = 0; i < r.Radius.Length; i++)
            {
                Assert.AreEqual(cohen.Lower[i], r.Lower[i], "same seed, same soft bounds whatever L");
                Assert.IsFalse(r.Abstained[i]);
                Assert.IsLessThanOrEqualTo(previous[i] * (1 + 1e-9), r.Radius[i], $"row {i}: the radius does not grow with L (L = {l})");
                Assert.IsGreaterThanOrEqualTo(cohen.Radius[i] * (1 - 1e-9), r.Radius[i], $"row {i}: never below Cohen's radius (L = {l})");
                previous[i] = r.Radius[i];
            }
        }
        for (int i = 0; i < cohen.Radius.Length; i++)
        {
            Assert.AreEqual(0.5 * sigma * (Normal.InverseCdf(cohen.Lower[i]) - Normal.InverseCdf(cohen.Upper[i])), cohen.Radius[i], 1e-12);
            Assert.AreEqual(cohen.Radius[i], previous[i], 1e-5 * cohen.Radius[i], $"row {i}: L = 1e7 gives Cohen's radius");
        }
    }

    [TestMethod]
    public void LipschitzConstantIsTakenFromTheModelWhenAsked()
    {
        var ml = new MLContext(seed: 1);
        var data = LinePoints(ml, 5, i => 0.1f * i - 0.2f);
        var fromModel = CpmOptions(ml, null);
        fromModel.UseModelLipschitzConstant = true;
        var t = ml.Transforms.CertifyRandomizedSmoothing(fromModel).Fit(data);
        double bound = ((MlpTransformer)fromModel.BaseModel!).LipschitzBound();
        Assert.AreEqual(bound, t.LipschitzConstant!.Value, 1e-12);
        Assert.AreEqual(Math.Sqrt(2), bound, 1e-6, "the linear toy's logits (x0, −x0) are √2-Lipschitz");
        CollectionAssert.AreEqual(Certify(ml, CpmOptions(ml, bound), data).Radius, Certify(ml, fromModel, data).Radius);
        // persisted: a reloaded transformer keeps the constant and the certificates
        var ms = new MemoryStream();
        ml.Model.Save(t, data.Schema, ms);
        ms.Position = 0;
        var ml2 = new MLContext(seed: 2);
        ml2.UseAllauzen();
        var reloaded = ml2.Model.Load(ms, out _);
        CollectionAssert.AreEqual(t.Transform(data).GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray(),
            reloaded.Transform(data).GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray());
    }

    [TestMethod]
    public void LipschitzCpmFromSampledStatisticsEqualsTheTransform()
    {
        var ml = new MLContext(seed: 1);
        var data = LinePoints(ml, 6, i => 0.12f * i - 0.3f);
        var options = CpmOptions(ml, 2.0);
        options.LipschitzSoftmaxScale = 3;
        var direct = Certify(ml, options, data);
        var sampled = ml.Data.Cache(ml.Transforms.SampleRandomizedSmoothing(options).Fit(data).Transform(data));
        var certifier = ml.Transforms.CertifySmoothingStatistics(new SmoothingCertifierOptions
        {
            Method = SmoothingMethod.BridgingCpm, Alpha = options.Alpha, Sigma = options.Sigma, LipschitzConstant = 2.0, LipschitzSoftmaxScale = 3,
        }).Fit(sampled);
        var radii = certifier.Transform(sampled).GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray();
        for (int i = 0; i < radii.Length; i++)
            Assert.AreEqual(direct.Radius[i], radii[i], 1e-12, $"row {i}");
        // persisted with its constant
        var ms = new MemoryStream();
        ml.Model.Save(certifier, sampled.Schema, ms);
        ms.Position = 0;
        var ml2 = new MLContext(seed: 2);
        ml2.UseAllauzen();
        CollectionAssert.AreEqual(radii, ml2.Model.Load(ms, out _).Transform(sampled).GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray());
        // without the map columns the Lipschitz certifier names the missing column
        var votesOnly = ml.Data.Cache(ml.Transforms.SampleRandomizedSmoothing(CpmOptions(ml, null)).Fit(data).Transform(data));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.CertifySmoothingStatistics(new SmoothingCertifierOptions
        {
            Method = SmoothingMethod.BridgingCpm, Sigma = 0.5, LipschitzConstant = 2.0,
        }).Fit(votesOnly));
        StringAssert.Contains(e.Message, SmoothingColumnNames.MapSums);
    }

    [TestMethod]
    public void SoftmaxBucketOutputsAreWithinTheirLipschitzBound()
    {
        // ‖∇_z Σ_{k∈B} softmax(z)_k‖ ≤ √2/4 for every logit vector and class set (finite differences), and the bound is nearly attained.
        var rng = new Random(5);
        double worst = 0;
        for (int trial = 0; trial < 2000; trial++)
        {
            int k = 2 + rng.Next(6);
            var z = Enumerable.Range(0, k).Select(_ => (rng.NextDouble() - 0.5) * 8).ToArray();
            var bucket = Enumerable.Range(0, k).Where(_ => rng.NextDouble() < 0.5).ToArray();
            double Output(double[] v)
            {
                double m = v.Max(), sum = v.Sum(x => Math.Exp(x - m));
                return bucket.Sum(c => Math.Exp(v[c] - m)) / sum;
            }
            double norm2 = 0;
            for (int j = 0; j < k; j++)
            {
                var up = (double[])z.Clone();
                var down = (double[])z.Clone();
                up[j] += 1e-6;
                down[j] -= 1e-6;
                double g = (Output(up) - Output(down)) / 2e-6;
                norm2 += g * g;
            }
            worst = Math.Max(worst, Math.Sqrt(norm2));
        }
        double bound = SmoothingCertifier.SoftmaxBucketLipschitz(1, 1);
        Assert.IsLessThanOrEqualTo(bound + 1e-6, worst);
        Assert.IsGreaterThan(0.8 * bound, worst, "the bound is not grossly loose");
        Assert.AreEqual(3 * bound, SmoothingCertifier.SoftmaxBucketLipschitz(2, 1.5), 1e-15, "scales with t·L");
    }

    [TestMethod]
    public void LipschitzOptionsAreValidated()
    {
        var ml = new MLContext(seed: 1);
        void Expect(string name, Action<RandomizedSmoothingOptions> change)
        {
            var o = CpmOptions(ml, 1.0);
            change(o);
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.CertifyRandomizedSmoothing(o));
            Assert.AreEqual(name, e.ParamName);
        }
        Expect(nameof(RandomizedSmoothingOptions.LipschitzConstant), o => o.LipschitzConstant = 0);
        Expect(nameof(RandomizedSmoothingOptions.LipschitzConstant), o => o.LipschitzConstant = double.NaN);
        Expect(nameof(RandomizedSmoothingOptions.LipschitzConstant), o => o.Method = SmoothingMethod.Cohen);
        Expect(nameof(RandomizedSmoothingOptions.UseModelLipschitzConstant), o => o.UseModelLipschitzConstant = true);
        Expect(nameof(RandomizedSmoothingOptions.LipschitzSoftmaxScale), o => o.LipschitzSoftmaxScale = 0);
        Expect(nameof(RandomizedSmoothingOptions.UseModelLipschitzConstant), o =>
        {
            o.LipschitzConstant = null;
            o.UseModelLipschitzConstant = true;
            o.BaseModel = null;
            o.BaseModelOnnxPath = typeof(SmoothingShortcutAndLipschitzTests).Assembly.Location;
        });
    }

    [TestMethod]
    public void LipschitzCpmIsSoundOnTheBinaryLinearModelOver400Seeds()
    {
        // The smoothed soft output E[softmax(z(x + ε))] of the toy (logits (x0, −x0)) favours class 1 iff x0 > 0,
        // so the exact radius of the smoothed soft classifier is |x0| as for the votes.
        var ml = new MLContext(seed: 1);
        const double alpha = 0.05, x0 = 0.3;
        var data = LinePoints(ml, 400, _ => (float)x0);
        var o = CpmOptions(ml, Math.Sqrt(2));
        o.Sigma = 0.25;
        o.EstimationSamples = 500;
        o.Alpha = alpha;
        o.LipschitzSoftmaxScale = 4;
        var r = Certify(ml, o, data);
        int failures = Enumerable.Range(0, 400).Count(i => !r.Abstained[i] && (r.Pred[i] != 1 || r.Radius[i] > x0));
        Assert.IsLessThanOrEqualTo(alpha + 3 * Math.Sqrt(alpha * (1 - alpha) / 400), failures / 400.0, $"{failures} of 400 certificates exceed the exact radius");
        Assert.IsGreaterThan(200, r.Abstained.Count(a => !a), "most rows certify");
    }
}
