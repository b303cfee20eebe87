using Allauzen.ML.Foton;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Foton;

/// <summary>
/// The speed path of the training step: the low-memory sweep (first-layer modulation through Fᵀ·M_0ᵀ, kept
/// first-layer pre-activation) must give the update of the reference rule, and the warm-started projection
/// must reach the reference projection's result with few iterations and leave orthonormal layers untouched.
/// </summary>
[TestClass]
public sealed class FotonFastPathTests
{
    [TestMethod]
    public void LowMemorySweep_Linear_Depth50_EqualsBackprop_AndScaleIsOne()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var arch = new FotonArchitecture(96, [.. Enumerable.Repeat(64, 50)], 10, FotonActivation.Identity);
        using var g = new Generator(5, torch.CPU);
        using var net = OrthogonalMlp.Create(arch, FotonInit.Orthogonal, g, ScalarType.Float32, torch.CPU);
        var x = torch.randn([64, 96], generator: g);
        var labels = torch.randint(10, [64], generator: g);
        var t = nn.functional.one_hot(labels, 10).to(ScalarType.Float32);
        var (update, _) = TwoPassOracle.Run(net, x, t, _ => null, net.FTranspose(), 1.0);
        var (grad, _) = BackpropGradient.Compute(net, x, labels, null, 1.0);
        for (int i = 0; i < net.Names.Length; i++)
        {
            double rel = ((update[i] - grad[i]).norm() / grad[i].norm()).ToDouble();
            Assert.IsLessThanOrEqualTo(1e-5, rel, $"layer {net.Names[i]}: relative error of the update");
            Assert.AreEqual(1.0, FotonTrainStep.NormRatio(update[i], grad[i]), 1e-5, $"layer {net.Names[i]}: norm ratio");
        }
        // Negative control on the same path: the flipped modulation gives minus the gradient.
        var (flipped, _) = TwoPassOracle.Run(net, x, t, _ => null, net.FTranspose(), 1.0, ForwardOnlyRule.Foton with { Sign = +1 });
        Assert.AreEqual(-1.0, FotonTrainStep.Cosine(flipped[0], grad[0]), 1e-5);
    }

    [TestMethod]
    [DataRow(FotonActivation.Tanh)]
    [DataRow(FotonActivation.Relu)]
    public void InPlaceSgd_GivesTheOptimizersSgdStep_WithinFloat32Rounding_AndHandsOverEveryLayerInOrder(FotonActivation activation)
    {
        // The trainer's plain-SGD path adds −η/B·Dᵀ·pre into W_i in one product instead of forming G_i and calling the
        // optimizer: the same weights up to float32 rounding (a few ulps of the update), every layer handed over once,
        // input side first, and nothing through the G_i callback.
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var arch = new FotonArchitecture(48, [32, 32, 24], 10, activation);
        var x = torch.randn([40, 48], generator: new Generator(3, torch.CPU));
        var labels = torch.randint(10, [40], generator: new Generator(4, torch.CPU));
        var t = nn.functional.one_hot(labels, 10).to(ScalarType.Float32);
        const double lr = 0.5, divisor = 64;
        OrthogonalMlp Fresh()
        {
            using var g = new Generator(5, torch.CPU);
            torch.random.manual_seed(5);
            return OrthogonalMlp.Create(arch, FotonInit.Orthogonal, g, ScalarType.Float32, torch.CPU);
        }
        using var viaOptimizer = Fresh();
        using var inPlace = Fresh();
        using var optimizer = new WeightOptimizer(OptimizerKind.Sgd, 0, 0);
        optimizer.BeginStep();
        FotonStep.Run(viaOptimizer, x, t, _ => null, viaOptimizer.FTranspose(), 1.0, divisor,
            (i, gi) => optimizer.StepLayer(i, viaOptimizer.Weights.Length, viaOptimizer.Weights[i], gi, lr));
        var order = new List<int>();
        FotonStep.Run(inPlace, x, t, _ => null, inPlace.FTranspose(), 1.0, divisor,
            (i, _) => Assert.Fail($"layer {i} went through the G_i callback"), inPlace: new FotonStep.InPlaceSgd(lr, order.Add));
        CollectionAssert.AreEqual(Enumerable.Range(0, inPlace.Weights.Length).ToList(), order);
        using var fresh = Fresh();
        for (int i = 0; i < inPlace.Weights.Length; i++)
        {
            var change = (viaOptimizer.Weights[i] - fresh.Weights[i]).abs().max().ToDouble();
            var difference = (inPlace.Weights[i] - viaOptimizer.Weights[i]).abs().max().ToDouble();
            Assert.IsGreaterThan(1e-4, change, $"layer {i} moved");
            // Rounding: |W| ≤ 1 and the update's own product, both in float32: well below 1e-6.
            Assert.IsLessThanOrEqualTo(1e-6, difference, $"layer {i}");
        }
    }

    [TestMethod]
    [DataRow(FotonAlgorithm.Foton)]
    [DataRow(FotonAlgorithm.Pepita)]
    public void PartialBatch_StepIsScaledByRowsOverBatchSize_AsTheReference(FotonAlgorithm algorithm)
    {
        // SGD without momentum and no projection on this step: ΔW is linear in the update, so dividing a 24-row batch by
        // BatchSize = 64 (the reference's rule) instead of by 24 scales every layer's change by exactly 24/64.
        using var scope = torch.NewDisposeScope();
        var arch = new FotonArchitecture(32, [24, 16], 4, FotonActivation.Relu);
        var x = torch.randn([24, 32], generator: new Generator(9, torch.CPU));
        var labels = torch.randint(4, [24], generator: new Generator(10, torch.CPU));
        Tensor[] Change(bool reference)
        {
            using var g = new Generator(5, torch.CPU);
            torch.random.manual_seed(5); // the output layer's uniform init draws from the global generator (the trainer seeds it)
            var net = OrthogonalMlp.Create(arch, FotonInit.Orthogonal, g, ScalarType.Float64, torch.CPU);
            var before = net.Weights.Select(w => w.clone()).ToArray();
            var o = new FotonOptions
            {
                Algorithm = algorithm, Dropout = 0, BatchSize = 64, LearningRate = 0.1, Momentum = 0, ProjectionInterval = 1000,
                ScaleByConfiguredBatchSize = reference,
            };
            using var step = new FotonTrainStep(net, o, 1, torch.CPU);
            step.BeginEpoch(1);
            step.TrainBatch(x, labels);
            return net.Weights.Select((w, i) => w - before[i]).ToArray();
        }
        var full = Change(false);
        var scaled = Change(true);
        for (int i = 0; i < full.Length; i++)
        {
            Assert.IsGreaterThan(1e-6, full[i].norm().ToDouble(), $"layer {i} moves");
            double err = ((scaled[i] - full[i] * (24.0 / 64)).norm() / full[i].norm()).ToDouble();
            Assert.IsLessThanOrEqualTo(1e-10, err, $"layer {i}: ΔW with the configured divisor is 24/64 of ΔW with the actual one (rel. err {err})");
        }
    }

    [TestMethod]
    public void WarmProjection_AfterAnSgdSizedStep_MatchesReference_FewIterations()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var g = new Generator(7, torch.CPU);
        foreach (var (rows, cols) in new[] { (64, 196), (64, 64), (10, 64) })
        {
            var w = OrthogonalMlp.Orthogonal(rows, cols, g, ScalarType.Float32, torch.CPU);
            // An SGD-sized perturbation: relative size 5 % (the hidden layers' typical step at lr 0.5).
            w.add_(torch.randn([rows, cols], generator: g) * (0.05 / Math.Sqrt(cols)));
            using var reference = Bjorck.Reference(w.to(ScalarType.Float64), 20, generator: g);
            int iterations = Bjorck.ProjectWarm(w, 20, 4e-6, out double bound);
            Assert.IsLessThanOrEqualTo(3, iterations, $"{rows}×{cols}: iterations");
            Assert.IsLessThanOrEqualTo(1e-5, Bjorck.OrthogonalityError(w), $"{rows}×{cols}: measured orthogonality error");
            Assert.IsLessThanOrEqualTo(4e-6, bound, $"{rows}×{cols}: proven bound");
            Assert.IsLessThanOrEqualTo(1e-5, (w.to(ScalarType.Float64) - reference).abs().max().ToDouble(), $"{rows}×{cols}: same polar factor as the reference rule");
        }
    }

    [TestMethod]
    public void WarmProjection_LeavesAnOrthonormalLayerUntouched_AndScalesAFarOffOne()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var g = new Generator(8, torch.CPU);
        var w = OrthogonalMlp.Orthogonal(32, 80, g, ScalarType.Float32, torch.CPU);
        var before = w.clone();
        Assert.AreEqual(0, Bjorck.ProjectWarm(w, 20, 4e-6, out double err));
        Assert.IsLessThanOrEqualTo(4e-6, err);
        Assert.AreEqual(0.0, (w - before).abs().max().ToDouble(), "an orthonormal layer is not modified at all");
        // Far from orthonormal (σ up to ~3): the Gershgorin scale keeps the iteration convergent.
        var far = torch.randn([32, 80], generator: g) * 0.4;
        Bjorck.ProjectWarm(far, 40, 4e-6, out _);
        Assert.IsLessThanOrEqualTo(1e-5, Bjorck.OrthogonalityError(far));
    }

    [TestMethod]
    [DataRow(FotonActivation.Tanh)]
    [DataRow(FotonActivation.Relu)]
    [DataRow(FotonActivation.MaxMin)]
    [DataRow(FotonActivation.Identity)]
    public void FusedSweep_StoredAndRecomputed_EqualTheTwoPassRule_WithDropout(FotonActivation activation)
    {
        // float64 so that the comparison is not at float32's noise: the stored sweep (one tensor per layer, the tanh
        // difference from H alone), the recomputing sweep and the reference two-pass rule are the same update.
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var arch = new FotonArchitecture(48, [40, 40, 32, 32], 6, activation);
        using var g = new Generator(11, torch.CPU);
        torch.random.manual_seed(11);
        using var net = OrthogonalMlp.Create(arch, FotonInit.Orthogonal, g, ScalarType.Float64, torch.CPU);
        var x = torch.randn([20, 48], dtype: ScalarType.Float64, generator: g) * 2;
        var labels = torch.randint(6, [20], generator: g);
        var t = nn.functional.one_hot(labels, 6).to(ScalarType.Float64);
        var widths = arch.FlatWidths();
        var masks = Enumerable.Range(0, 4).Select(i => (Tensor?)(torch.rand([20, widths[i + 1]], dtype: ScalarType.Float64, generator: g).ge(0.2).to(ScalarType.Float64) / 0.8)).ToArray();
        var f = net.FTranspose();
        var reference = TwoPassOracle.Compute(net, x, t, masks, f, 1.0).G;
        foreach (bool store in new[] { true, false })
        {
            var (fused, _) = TwoPassOracle.Run(net, x, t, i => masks[i], f, 1.0, storeActivations: store);
            for (int i = 0; i < reference.Length; i++)
            {
                double rel = ((fused[i] - reference[i]).norm() / reference[i].norm()).ToDouble();
                Assert.IsLessThanOrEqualTo(1e-12, rel, $"{activation}, store {store}, layer {net.Names[i]}: relative difference {rel}");
            }
        }
    }

    [TestMethod]
    [DataRow(FotonActivation.Tanh)]
    [DataRow(FotonActivation.Relu)]
    public void FusedSweep_Pepita_EqualsTheTwoPassRule_WithDropout(FotonActivation activation)
    {
        // PEPITA runs through the same sweep (modulated pre-synaptic activity, X̃ = X + E·Fᵀ with a fixed random F).
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var arch = new FotonArchitecture(48, [40, 32], 6, activation);
        using var g = new Generator(21, torch.CPU);
        using var net = OrthogonalMlp.Create(arch, FotonInit.HeUniform, g, ScalarType.Float64, torch.CPU);
        var x = torch.randn([20, 48], dtype: ScalarType.Float64, generator: g);
        var t = nn.functional.one_hot(torch.randint(6, [20], generator: g), 6).to(ScalarType.Float64);
        var widths = arch.FlatWidths();
        var masks = Enumerable.Range(0, 2).Select(i => (Tensor?)(torch.rand([20, widths[i + 1]], dtype: ScalarType.Float64, generator: g).ge(0.2).to(ScalarType.Float64) / 0.8)).ToArray();
        var f = PepitaFeedback.Create(6, 48, 0.05, g, ScalarType.Float64, torch.CPU);
        var reference = TwoPassOracle.Compute(net, x, t, masks, f, 1.0, ForwardOnlyRule.Pepita, divisor: 32).G;
        foreach (bool store in new[] { true, false })
        {
            var (fused, _) = TwoPassOracle.Run(net, x, t, i => masks[i], f, 1.0, ForwardOnlyRule.Pepita, store, divisor: 32);
            for (int i = 0; i < reference.Length; i++)
            {
                double rel = ((fused[i] - reference[i]).norm() / reference[i].norm()).ToDouble();
                Assert.IsLessThanOrEqualTo(1e-12, rel, $"{activation}, store {store}, layer {net.Names[i]}: relative difference {rel}");
            }
        }
        // The clean pre-synaptic factor (FOTON's) gives a different update: the test can fail.
        var foton = TwoPassOracle.Compute(net, x, t, masks, f, 1.0, ForwardOnlyRule.Pepita with { ModulatedPresynaptic = false }, divisor: 32).G;
        Assert.IsGreaterThan(1e-6, ((foton[0] - reference[0]).norm() / reference[0].norm()).ToDouble());
    }

    [TestMethod]
    public void TanhDifference_FromTheOutputAlone_IsAccurate_AndTheSweepFallsBackForLargeSteps()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var g = new Generator(12, torch.CPU);
        // Pre-activations up to saturation (|a| = 12: tanh(a) rounds to ±1 in float32) and steps |δ| ≤ 1.
        var a = (torch.rand([4000], dtype: ScalarType.Float64, generator: g) * 24 - 12);
        var da = (torch.rand([4000], dtype: ScalarType.Float64, generator: g) * 2 - 1) * torch.pow(10.0, -6 * torch.rand([4000], dtype: ScalarType.Float64, generator: g));
        var exact = a.tanh() - (a - da).tanh();
        var fast = OrthogonalMlp.TanhDifference(a.tanh().to(ScalarType.Float32), da.to(ScalarType.Float32)).to(ScalarType.Float64);
        double maxAbs = (fast - exact).abs().max().ToDouble();
        Assert.IsLessThanOrEqualTo(1e-6, maxAbs, $"max |error| {maxAbs} in float32");
        var relSmall = ((fast - exact).abs() / exact.abs().clamp_min(1e-30)).masked_select(a.abs().lt(2)).max().ToDouble();
        Assert.IsLessThanOrEqualTo(1e-5, relSmall, "relative precision kept for tiny steps away from saturation");
        // With |δ| > 1 on a saturated unit the identity loses precision (here tanh(9.5) − tanh(4.5) = 2.5e-4 comes out as 0)...
        var lost = OrthogonalMlp.TanhDifference(torch.tensor(new[] { (float)Math.Tanh(9.5) }), torch.tensor(new[] { 5f })).ToSingle();
        Assert.IsGreaterThan(1e-4, Math.Abs(Math.Tanh(9.5) - Math.Tanh(4.5) - lost), "the identity is not usable for large steps");
        // ...so the stored sweep must take the exact branch there:
        // a one-layer tanh network whose modulation is huge gives the same update stored or recomputed.
        var arch = new FotonArchitecture(8, [8], 3, FotonActivation.Tanh);
        torch.random.manual_seed(3);
        using var net = OrthogonalMlp.Create(arch, FotonInit.Orthogonal, g, ScalarType.Float32, torch.CPU);
        var x = torch.randn([5, 8], generator: g) * 30; // saturates the hidden layer
        var t = nn.functional.one_hot(torch.tensor(new long[] { 0, 1, 2, 0, 1 }), 3).to(ScalarType.Float32);
        var f = net.FTranspose() * 40; // |δ| ≫ 1
        var stored = TwoPassOracle.Run(net, x, t, _ => null, f, 1.0, storeActivations: true).G;
        var recomputed = TwoPassOracle.Run(net, x, t, _ => null, f, 1.0, storeActivations: false).G;
        for (int i = 0; i < stored.Length; i++)
        {
            double diff = (stored[i] - recomputed[i]).abs().max().ToDouble(), scale = recomputed[i].abs().max().ToDouble();
            Assert.AreEqual(0.0, diff, 1e-6 * scale, $"layer {i}: {diff:G3} of {scale:G3}");
        }        // And a deeper float32 tanh network with dropout (the kernel forms M ⊙ δÂ in its own pass for layers ≥ 1): the
        // stored sweep gives the recomputing sweep's updates (exact general path) within float32 rounding.
        var deep = new FotonArchitecture(24, [20, 20, 16], 4, FotonActivation.Tanh);
        torch.random.manual_seed(4);
        using var deepNet = OrthogonalMlp.Create(deep, FotonInit.Orthogonal, g, ScalarType.Float32, torch.CPU);
        var xs = torch.randn([32, 24], generator: g);
        var ts = nn.functional.one_hot(torch.randint(4, [32], generator: g), 4).to(ScalarType.Float32);
        var masks = deep.HiddenSizes.Select(w => torch.bernoulli(torch.full([32, w], 0.8f), generator: g) / 0.8f).ToArray();
        var fd = deepNet.FTranspose();
        var withMask = TwoPassOracle.Run(deepNet, xs, ts, i => masks[i], fd, 1.0, storeActivations: true).G;
        var general = TwoPassOracle.Run(deepNet, xs, ts, i => masks[i], fd, 1.0, storeActivations: false).G;
        for (int i = 0; i < withMask.Length; i++)
        {
            double diff = (withMask[i] - general[i]).abs().max().ToDouble(), scale = general[i].abs().max().ToDouble();
            Assert.IsGreaterThan(0.0, scale, $"deep layer {i} has an update");
            Assert.AreEqual(0.0, diff, 1e-5 * scale, $"deep layer {i}: {diff:G3} of {scale:G3}");
        }
    }

    [TestMethod]
    public void WarmProjection_ProvenBound_HoldsInFloat64_AndTheFirstOrderStepIsTakenForSmallSteps()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var g = new Generator(13, torch.CPU);
        foreach (double size in new[] { 1e-4, 1e-3, 1e-2, 5e-2 })
        {
            foreach (var (rows, cols) in new[] { (64, 64), (32, 96), (96, 32) })
            {
                var w = OrthogonalMlp.Orthogonal(rows, cols, g, ScalarType.Float64, torch.CPU);
                Bjorck.ProjectWarm(w, 40, 1e-14, out _);
                w.add_(torch.randn([rows, cols], dtype: ScalarType.Float64, generator: g) * (size / Math.Sqrt(Math.Max(rows, cols))));
                var single = w.clone();
                Bjorck.ProjectWarm(single, 1, 1e-300, out double bound); // one step, whatever its order
                double actual = Bjorck.OrthogonalityError(single);
                Assert.IsLessThanOrEqualTo(bound * (1 + 1e-9) + 1e-14, actual, $"size {size}, {rows}×{cols}: the bound {bound} must hold ({actual})");
                var order1 = w.clone();
                Bjorck.ProjectWarm(order1, 1, 1e-300, out double bound1, order: 1);
                Assert.IsLessThanOrEqualTo(bound1 * (1 + 1e-9) + 1e-14, Bjorck.OrthogonalityError(order1), $"size {size}, {rows}×{cols}: first-order bound");
            }
        }
        // A tiny step: one first-order step is enough, and the result equals the first-order formula V(I + ½R).
        var q = OrthogonalMlp.Orthogonal(64, 64, g, ScalarType.Float64, torch.CPU);
        Bjorck.ProjectWarm(q, 40, 1e-14, out _);
        q.add_(torch.randn([64, 64], dtype: ScalarType.Float64, generator: g) * 1e-6);
        var r = torch.eye(64, dtype: ScalarType.Float64) - q.t().mm(q);
        var expected = q + q.mm(r) * 0.5;
        Assert.AreEqual(1, Bjorck.ProjectWarm(q, 20, 1e-9, out double b));
        Assert.IsLessThanOrEqualTo(1e-9, b);
        Assert.AreEqual(0.0, (q - expected).abs().max().ToDouble(), 1e-15, "first-order step");
    }
}
