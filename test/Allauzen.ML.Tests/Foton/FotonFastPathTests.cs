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
        var (update, _) = FotonStep.ComputeLowMemory(net, x, t, _ => null, net.FTranspose(), 1.0);
        var (grad, _) = BackpropGradient.Compute(net, x, labels, null, 1.0);
        for (int i = 0; i < net.Names.Length; i++)
        {
            double rel = ((update[i] - grad[i]).norm() / grad[i].norm()).ToDouble();
            Assert.IsLessThanOrEqualTo(1e-5, rel, $"layer {net.Names[i]}: relative error of the update");
            Assert.AreEqual(1.0, FotonTrainStep.NormRatio(update[i], grad[i]), 1e-5, $"layer {net.Names[i]}: norm ratio");
        }
        // Negative control on the same path: the flipped modulation gives minus the gradient.
        var (flipped, _) = FotonStep.ComputeLowMemory(net, x, t, _ => null, net.FTranspose(), 1.0, sign: +1);
        Assert.AreEqual(-1.0, FotonTrainStep.Cosine(flipped[0], grad[0]), 1e-5);
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
                Algorithm = algorithm, Dropout = 0, BatchSize = 64, LearningRate = 0.1, Momentum = 0, OrthoRate = 1000,
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
}
