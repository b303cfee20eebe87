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
