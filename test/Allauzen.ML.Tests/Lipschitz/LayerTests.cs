using Allauzen.ML.Lipschitz;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Lipschitz;

[TestClass]
public sealed class LayerTests
{
    private const double Float32Tolerance = 1 + 1e-5;

    private static void Set(Tensor p, double[] values)
    {
        using var _ = torch.no_grad();
        using var t = torch.tensor(values, p.shape).to(p.dtype);
        p.copy_(t);
    }

    private static double[] Values(Tensor t) => t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();

    /// <summary>
    /// Largest ‖f(x) − f(y)‖/‖x − y‖ over random pairs (independent and nearby), then a gradient attack (Adam on x and the
    /// direction of y − x at fixed distance) on the ratio, started from the worst pairs.
    /// </summary>
    internal static double MaxRatio(Func<Tensor, Tensor> f, long[] shape, int pairs = 2000, int attackSteps = 300, int seed = 0, double scale = 1.0)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new torch.Generator((ulong)seed);
        long[] batch = [pairs, .. shape];
        var x = torch.randn(batch, generator: gen) * scale;
        var y = torch.randn(batch, generator: gen) * scale;
        // Half the pairs are nearby: y = x + a small perturbation (the ratio then approaches the Jacobian norm).
        var near = x + 0.05 * scale * torch.randn(batch, generator: gen);
        y = torch.cat([y.narrow(0, 0, pairs / 2), near.narrow(0, pairs / 2, pairs - pairs / 2)]);
        Tensor Ratio(Tensor a, Tensor b) => (f(a) - f(b)).flatten(1).norm(1, p: 2) / (a - b).flatten(1).norm(1, p: 2);
        double best;
        Tensor r;
        using (torch.no_grad())
        {
            r = Ratio(x, y);
            best = r.max().item<float>();
        }
        if (attackSteps == 0)
            return best;
        var top = r.topk(Math.Min(32, pairs)).indexes;
        var xa = new TorchSharp.Modules.Parameter(x.index_select(0, top).clone());
        var d0 = (y - x).index_select(0, top);
        var dist = d0.flatten(1).norm(1, p: 2).clamp_min(1e-3).detach();
        var dir = new TorchSharp.Modules.Parameter(d0.clone());
        var opt = torch.optim.Adam([xa, dir], 1e-2);
        for (int i = 0; i < attackSteps; i++)
        {
            using var step = torch.NewDisposeScope();
            opt.zero_grad();
            var unit = dir / dir.flatten(1).norm(1, p: 2).clamp_min(1e-12).view([-1, .. Enumerable.Repeat(1L, shape.Length)]);
            var ya = xa + unit * dist.view([-1, .. Enumerable.Repeat(1L, shape.Length)]);
            var ratio = Ratio(xa, ya);
            best = Math.Max(best, ratio.max().item<float>());
            (-ratio.sum()).backward();
            opt.step();
        }
        return best;
    }

    public static IEnumerable<object[]> OneLipschitzLayers() =>
    [
        ["SllDense", (Func<LipschitzModule>)(() => new SllDense(16, 32)), new long[] { 16 }],
        ["SllConv", (Func<LipschitzModule>)(() => new SllConv(4, 8, 3, 8, 8)), new long[] { 4, 8, 8 }],
        ["CplDense", (Func<LipschitzModule>)(() => new CplDense(16, 32)), new long[] { 16 }],
        ["CplConv", (Func<LipschitzModule>)(() => new CplConv(4, 8, 3, 8, 8)), new long[] { 4, 8, 8 }],
        ["AolDense", (Func<LipschitzModule>)(() => new AolDense(16, 24, relu: true)), new long[] { 16 }],
        ["AolConv", (Func<LipschitzModule>)(() => new AolConv(4, 8, 3, 8, 8, relu: false)), new long[] { 4, 8, 8 }],
        ["SrDense1", (Func<LipschitzModule>)(() => new SrDense(16, 24, 1, relu: false)), new long[] { 16 }],
        ["SrDense3", (Func<LipschitzModule>)(() => new SrDense(16, 24, 3, relu: true)), new long[] { 16 }],
        ["SrConv2", (Func<LipschitzModule>)(() => new SrConv(4, 8, 3, 8, 8, 2, relu: false)), new long[] { 4, 8, 8 }],
        ["SrResidualDense2", (Func<LipschitzModule>)(() => new SllDense(16, 32, iterations: 2)), new long[] { 16 }],
        ["SrResidualConv2", (Func<LipschitzModule>)(() => new SllConv(4, 8, 3, 8, 8, iterations: 2)), new long[] { 4, 8, 8 }],
        ["SumPool", (Func<LipschitzModule>)(() => new SumPool(4)), new long[] { 4, 8, 8 }],
        ["PadChannels", (Func<LipschitzModule>)(() => new PadChannels(4, 8)), new long[] { 4, 8, 8 }],
    ];

    [TestMethod]
    [DynamicData(nameof(OneLipschitzLayers))]
    public void Layer_EmpiricalRatioAndAttackAtMostOne_AndFoldedFormIsTheSameFunction(string name, object make, long[] shape)
    {
        torch.manual_seed(11);
        using var layer = ((Func<LipschitzModule>)make)();
        // Random weights with active and inactive units: perturb the parameters away from their tight initialisation.
        using (torch.no_grad())
        {
            foreach (var p in layer.parameters())
                p.add_(torch.randn_like(p) * 0.3);
        }
        layer.eval();
        double ratio = MaxRatio(x => layer.forward(x), shape, pairs: 2000, attackSteps: 150);
        Assert.IsLessThanOrEqualTo(Float32Tolerance, ratio, $"{name}: empirical Lipschitz ratio");
        Assert.IsGreaterThan(0.05, ratio, $"{name}: the layer is not degenerate");

        // The deployed (folded) layer computes the same function and its certified bound is ≤ 1 (+ rounding).
        using var plain = new PlainNetwork([layer.Fold()]);
        Assert.IsLessThanOrEqualTo(1 + 1e-5, plain.LipschitzConstant, $"{name}: certified bound of the folded layer");
        using var scope = torch.NewDisposeScope();
        var x = torch.randn([64, .. shape]);
        using var _ = torch.no_grad();
        var a = layer.forward(x);
        var b = plain.Forward(x);
        Assert.IsLessThanOrEqualTo(1e-4, (a - b).abs().max().item<float>(), $"{name}: folded vs trained forward");
    }

    [TestMethod]
    public void NegativeControl_CplWithOneStepPowerIteration_FailsTheLipschitzTest()
    {
        var g = Golden.Layer("cpl_dense");
        using var bad = new CplDense(16, 32, sigma: CplSigma.PowerIteration1);
        using var good = new CplDense(16, 32);
        foreach (var layer in new[] { bad, good })
        {
            Set(layer.W, Golden.Flat(g.GetProperty("W")));
            Set(layer.b, Golden.Flat(g.GetProperty("b")));
            layer.eval();
        }
        double exact = g.GetProperty("variants").GetProperty("exact").GetProperty("sigma_used").GetDouble();
        Assert.IsLessThan(exact, bad.Sigma(), "one power step under-estimates σ");
        double badRatio = MaxRatio(x => bad.forward(x), [16], pairs: 2000, attackSteps: 300, scale: 5);
        double goodRatio = MaxRatio(x => good.forward(x), [16], pairs: 2000, attackSteps: 300, scale: 5);
        Assert.IsGreaterThan(Float32Tolerance, badRatio, $"the negative control must fail the test (ratio {badRatio})");
        Assert.IsGreaterThan(1.5, badRatio);
        Assert.IsLessThanOrEqualTo(Float32Tolerance, goodRatio, "the same weights with the Gram σ pass");

        var gc = Golden.Layer("sll_conv");
        using var badConv = new CplConv(4, 8, 3, 8, 8, sigma: CplSigma.PowerIteration1);
        Set(badConv.W, Golden.Flat(gc.GetProperty("K")));
        Set(badConv.b, Golden.Flat(gc.GetProperty("b")));
        badConv.eval();
        Assert.IsGreaterThan(Float32Tolerance, MaxRatio(x => badConv.forward(x), [4, 8, 8], pairs: 500, attackSteps: 300, scale: 3), "conv negative control");
    }

    [TestMethod]
    public void Cpl_TrainingModeFloat32SigmaIsOneLipschitzAndMatchesEvalMode()
    {
        torch.manual_seed(3);
        using var dense = new CplDense(16, 32);
        using var conv = new CplConv(4, 8, 3, 8, 8);
        foreach (var (layer, shape) in new (LipschitzModule, long[])[] { (dense, [16]), (conv, [4, 8, 8]) })
        {
            using (torch.no_grad())
            {
                foreach (var p in layer.parameters())
                    p.add_(torch.randn_like(p) * 0.3);
            }
            layer.train();
            double ratio = MaxRatio(x => layer.forward(x), shape, pairs: 2000, attackSteps: 100, scale: 3);
            Assert.IsLessThanOrEqualTo(Float32Tolerance, ratio, "training-mode CPL (float32 on-device Gram σ)");
            using var scope = torch.NewDisposeScope();
            using var _ = torch.no_grad();
            var x = torch.randn([32, .. shape]) * 3;
            var trained = layer.forward(x);
            layer.eval();
            var deployed = layer.forward(x);
            // The residual terms differ only by h_train/h_eval = (σ_eval/σ_train)² ≤ 1: the training bound (6 Gram steps, float32)
            // is a slightly looser bound than the eval one (8 steps, float64).
            double rel = ((trained - deployed).norm() / (x - deployed).norm()).item<float>();
            Assert.IsLessThanOrEqualTo(2e-2, rel, "training σ ≈ float64 eval σ");
        }
    }

    [TestMethod]
    public void Cpl_GramSigmaMatchesGoldenAndBoundsExact()
    {
        var g = Golden.Layer("cpl_dense");
        using var layer = new CplDense(16, 32, ScalarType.Float64);
        Set(layer.W, Golden.Flat(g.GetProperty("W")));
        layer.eval();
        var v = g.GetProperty("variants");
        Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(layer.Sigma(6), v.GetProperty("gram6").GetProperty("sigma_used").GetDouble()));
        Assert.IsGreaterThanOrEqualTo(v.GetProperty("exact").GetProperty("sigma_used").GetDouble() * (1 - 1e-12), layer.Sigma(6));

        var gc = Golden.Layer("sll_conv");
        using var conv = new CplConv(4, 8, 3, 8, 8, ScalarType.Float64);
        Set(conv.W, Golden.Flat(gc.GetProperty("K")));
        conv.eval();
        double zeroExact = Golden.Layer("cpl_conv_same_K_as_sll_conv").GetProperty("exact").GetProperty("sigma").GetDouble();
        Assert.IsGreaterThanOrEqualTo(zeroExact * (1 - 1e-12), conv.Sigma(), "CPL conv σ bounds the zero-padding norm");
        Assert.IsLessThanOrEqualTo(zeroExact * 1.05, conv.Sigma(), "and is tight");
    }

    [TestMethod]
    public void SllDense_GoldenTAndProbe()
    {
        var g = Golden.Layer("sll_dense");
        using var layer = new SllDense(16, 32, ScalarType.Float64);
        Set(layer.W, Golden.Flat(g.GetProperty("W")));
        Set(layer.b, Golden.Flat(g.GetProperty("b")));
        Set(layer.q, Golden.Flat(g.GetProperty("q")));
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var t = Values(layer.T());
        var tg = Golden.Flat(g.GetProperty("t"));
        for (int i = 0; i < t.Length; i++)
            Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(t[i], tg[i]), $"t[{i}]");
        var x = torch.tensor(Golden.Flat(g.GetProperty("x_probe")), [1, 16]);
        var y = Values(layer.forward(x));
        var yg = Golden.Flat(g.GetProperty("y_probe"));
        for (int i = 0; i < y.Length; i++)
            Assert.AreEqual(yg[i], y[i], 1e-10, $"y[{i}]");
        // Gershgorin: ‖T^½ W‖ ≤ 1.
        var v = layer.W * layer.T().sqrt().unsqueeze(1);
        double n = torch.linalg.svdvals(v)[0].item<double>();
        Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(n, g.GetProperty("linear_part_check_||diag(sqrt t) W||").GetDouble()));
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    public void SpectralRescalingResidual_GoldenTWithQAndNormAtMostOne(int iterations)
    {
        // The q-weighted residual spectral rescaling on the SLL dense weights: 1 iteration is SLL; more give a larger T (tighter).
        var g = Golden.Layer("sll_dense");
        var gr = Golden.Layer("sr_residual_dense_same_W_b_q_as_sll").GetProperty(iterations.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var layer = new SllDense(16, 32, ScalarType.Float64, iterations);
        Set(layer.W, Golden.Flat(g.GetProperty("W")));
        Set(layer.b, Golden.Flat(g.GetProperty("b")));
        Set(layer.q, Golden.Flat(g.GetProperty("q")));
        using var scope = torch.NewDisposeScope();
        var noGrad = torch.no_grad();
        var t = Values(layer.T());
        var tg = Golden.Flat(gr.GetProperty("T_diag"));
        for (int i = 0; i < t.Length; i++)
            Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(t[i], tg[i]), $"T[{i}] at n = {iterations}");
        var v = layer.W * layer.T().sqrt().unsqueeze(1);
        double n = torch.linalg.svdvals(v)[0].item<double>();
        Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(n, gr.GetProperty("||T^1/2 W||").GetDouble()), "‖T^½W‖ vs golden");
        Assert.IsLessThanOrEqualTo(1.0, n, "‖T^½W‖ ≤ 1");
        noGrad.Dispose();
        double ratio = MaxRatio(x => layer.forward(x.to(ScalarType.Float64)).to(ScalarType.Float32), [16], pairs: 2000, attackSteps: 100);
        Assert.IsLessThanOrEqualTo(Float32Tolerance, ratio, "empirical ratio and attack");

        // Conv: the same rule on the Toeplitz operator; ‖T^½K‖ (zero padding, exact) ≤ 1 and grows with n.
        var gc = Golden.Layer("sll_conv");
        using var conv = new SllConv(4, 8, 3, 8, 8, ScalarType.Float64, iterations);
        Set(conv.W, Golden.Flat(gc.GetProperty("K")));
        Set(conv.q, Golden.Flat(gc.GetProperty("q")));
        using var noGrad2 = torch.no_grad();
        var kk = (conv.W * conv.T().sqrt().view(-1, 1, 1, 1)).to(ScalarType.Float32).contiguous().data<float>().ToArray();
        double zero = SpectralNorm.ConvZeroPaddingExact(kk, 8, 4, 3, 3, 8, 8).Value;
        Assert.IsLessThanOrEqualTo(1 + 1e-6, zero, $"conv ‖T^½K‖ at n = {iterations}");
    }

    [TestMethod]
    public void SllConv_GoldenTAndProbe()
    {
        var g = Golden.Layer("sll_conv");
        using var layer = new SllConv(4, 8, 3, 8, 8, ScalarType.Float64);
        Set(layer.W, Golden.Flat(g.GetProperty("K")));
        Set(layer.b, Golden.Flat(g.GetProperty("b")));
        Set(layer.q, Golden.Flat(g.GetProperty("q")));
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var t = Values(layer.T());
        var tg = Golden.Flat(g.GetProperty("t_paper_formula"));
        for (int i = 0; i < t.Length; i++)
            Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(t[i], tg[i]), $"t[{i}]");
        var x = torch.tensor(Enumerable.Range(0, 256).Select(i => -1 + 2.0 * i / 255).ToArray(), [1, 4, 8, 8]);
        var y = layer.forward(x);
        Assert.AreEqual(g.GetProperty("probe_y_paper_q_sum").GetDouble(), y.sum().item<double>(), 1e-10);
        Assert.AreEqual(g.GetProperty("probe_y_paper_q_norm").GetDouble(), y.norm().item<double>(), 1e-10);
    }

    [TestMethod]
    public void Aol_GoldenScalesAndNorms()
    {
        var g = Golden.Layer("aol_dense");
        using var dense = new AolDense(16, 24, relu: false, ScalarType.Float64);
        Set(dense.P, Golden.Flat(g.GetProperty("P")));
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var d = Values(dense.D());
        var dg = Golden.Flat(g.GetProperty("d"));
        for (int i = 0; i < d.Length; i++)
            Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(d[i], dg[i]), $"d[{i}]");
        double norm = torch.linalg.svdvals(dense.Weight())[0].item<double>();
        Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(norm, g.GetProperty("norm_PD").GetDouble()));
        Assert.IsLessThanOrEqualTo(1.0, norm);

        var gc = Golden.Layer("aol_conv");
        using var conv = new AolConv(4, 8, 3, 8, 8, relu: false, ScalarType.Float64);
        Set(conv.P, Golden.Flat(gc.GetProperty("P")));
        var dc = Values(conv.D());
        var dcg = Golden.Flat(gc.GetProperty("d"));
        for (int i = 0; i < dc.Length; i++)
            Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(dc[i], dcg[i]), $"conv d[{i}]");
        var k = Values(conv.Weight()).Select(v => (float)v).ToArray();
        // Rounding the folded kernel to float32 moves the norm by ~1e-8 relative.
        Assert.IsLessThanOrEqualTo(1e-6, Golden.Rel(SpectralNorm.ConvZeroPaddingExact(k, 8, 4, 3, 3, 8, 8).Value, gc.GetProperty("norm_zero_pad_n8").GetDouble()));
        Assert.IsLessThanOrEqualTo(1e-6, Golden.Rel(SpectralNorm.ConvCircularExact(k, 8, 4, 3, 3, 8, 8).Value, gc.GetProperty("norm_circular_n8").GetDouble()));
    }

    [TestMethod]
    public void SpectralRescaling_GoldenNormsAtMostOne()
    {
        var c = Golden.Case("dense_64x32");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        foreach (var (n, golden) in Golden.ByIter(c.GetProperty("spectral_rescaling_dense_norm_after_rescale")))
        {
            using var sr = new SrDense(32, 64, n, relu: false, ScalarType.Float64);
            Set(sr.P, Golden.Flat(c.GetProperty("W")));
            double norm = torch.linalg.svdvals(sr.Weight())[0].item<double>();
            Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(norm, golden), $"SR dense n={n}");
            Assert.IsLessThanOrEqualTo(1 + 1e-12, norm);
        }
        var cc = Golden.Case("conv_16x16x3x3_n16");
        var srg = cc.GetProperty("spectral_rescaling_conv_norm_after_rescale");
        foreach (int n in new[] { 1, 2, 3 })
        {
            using var sr = new SrConv(16, 16, 3, 16, 16, n, relu: false, ScalarType.Float64);
            Set(sr.P, Golden.Flat(cc.GetProperty("K")));
            var k = sr.Weight();
            double circ = torch.linalg.svdvals(GramIteration.Symbol(k, 16, 16)).max().item<double>();
            Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(circ, srg.GetProperty(n.ToString(System.Globalization.CultureInfo.InvariantCulture)).GetProperty("circ_norm").GetDouble()), $"SR conv n={n}");
            double zeroBound = GramIteration.Circular(k, 18, 18, 10).item<double>();
            Assert.IsLessThanOrEqualTo(1 + 1e-12, zeroBound, $"SR conv n={n}: zero-padding bound ≤ 1");
        }
    }

    [TestMethod]
    public void ResidualBound_CountsTheFoldingError()
    {
        Assert.AreEqual(1.0, PlainNetwork.ResidualBound(2.0, 1.0, 0), 1e-15);
        Assert.AreEqual(3.0, PlainNetwork.ResidualBound(2.0, Math.Sqrt(2), 0), 1e-12);
        Assert.AreEqual(1.5, PlainNetwork.ResidualBound(1.0, 0.5, 1.0), 1e-15);
    }
}
