using Allauzen.ML.Foton;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Foton;

/// <summary>
/// The paper's core claim and its negative controls: in a linear network with orthonormal, non-expanding
/// layers, FOTON's update equals the backprop gradient of mean cross-entropy; it must stop being equal when
/// any condition is removed.
/// </summary>
[TestClass]
public sealed class FotonEquivalenceTests
{
    private sealed record Alignment(double[] Cosine, double[] RelativeError, double[] NormRatio);

    /// <summary>FOTON update vs autograd gradient, per layer (matched by layer name).</summary>
    private static Alignment Compare(int[] dims, FotonActivation act, FotonInit init, bool orthonormalise, double sign = -1, int batch = 128, int seed = 0)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var arch = new FotonArchitecture(dims[0], dims[1..^1], dims[^1], act);
        using var g = new Generator((ulong)seed, torch.CPU);
        using var net = OrthogonalMlp.Create(arch, init, g, ScalarType.Float32, torch.CPU);
        if (orthonormalise)
        {
            // Every layer but the output one has orthonormal rows (the output layer needs no constraint).
            for (int i = 0; i < net.OutputIndex; i++)
                Bjorck.ProjectWarm(net.Weights[i], 20, 1e-7, out _);
        }
        var x = torch.randn([batch, dims[0]], generator: g);
        var labels = torch.randint(dims[^1], [batch], generator: g);
        var u = TwoPassOracle.Compute(net, x, nn.functional.one_hot(labels, dims[^1]).to(ScalarType.Float32), null, net.FTranspose(), 1.0, new ForwardOnlyRule(sign, false));
        var (grad, _) = BackpropGradient.Compute(net, x, labels, null, 1.0);
        var byName = net.Names.Select((n, i) => (n, i)).ToDictionary(t => t.n, t => t.i);
        int n = net.Names.Length;
        var cos = new double[n];
        var rel = new double[n];
        var ratio = new double[n];
        foreach (var name in net.Names)
        {
            int i = byName[name];
            cos[i] = FotonTrainStep.Cosine(u.G[i], grad[i]);
            rel[i] = ((u.G[i] - grad[i]).norm() / grad[i].norm()).ToDouble();
            ratio[i] = (u.G[i].norm() / grad[i].norm()).ToDouble();
        }
        return new Alignment(cos, rel, ratio);
    }

    [TestMethod]
    public void Linear_Orthogonal_Depth3_EqualsBackprop()
    {
        var a = Compare([64, 48, 32, 32, 10], FotonActivation.Identity, FotonInit.Orthogonal, orthonormalise: true);
        for (int i = 0; i < a.Cosine.Length; i++)
        {
            Assert.IsLessThanOrEqualTo(1e-5, a.RelativeError[i], $"layer {i}: relative error");
            Assert.IsGreaterThan(1 - 1e-6, a.Cosine[i], $"layer {i}: cosine");
        }
    }

    [TestMethod]
    public void Linear_Orthogonal_Depth50_EqualsBackprop()
    {
        int[] dims = [784, .. Enumerable.Repeat(256, 50), 10];
        var a = Compare(dims, FotonActivation.Identity, FotonInit.Orthogonal, orthonormalise: true, batch: 64);
        Assert.AreEqual(51, a.Cosine.Length);
        for (int i = 0; i < a.Cosine.Length; i++)
        {
            Assert.IsLessThanOrEqualTo(1e-5, a.RelativeError[i], $"layer {i}: relative error");
            Assert.IsGreaterThan(1 - 1e-6, a.Cosine[i], $"layer {i}: cosine");
        }
    }

    [TestMethod]
    [DataRow(FotonActivation.Identity)]
    [DataRow(FotonActivation.Tanh)]
    public void PatchOrthogonalConvolutions_LinearEqualsBackprop_OutputExactAlways(FotonActivation act)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        // 1×8×8 → conv0 (k 2: 4 channels, 4×4) → conv1 (16 channels, 2×2) → fc0 (32) → out (10).
        var arch = new FotonArchitecture(64, [32], 10, act, [1, 8, 8], [4, 16], 2);
        using var g = new Generator(4, torch.CPU);
        using var net = OrthogonalMlp.Create(arch, FotonInit.Orthogonal, g, ScalarType.Float32, torch.CPU);
        CollectionAssert.AreEqual(new[] { "conv0", "conv1", "fc0", "out" }, net.Names);
        CollectionAssert.AreEqual(new[] { 64, 64, 64, 32, 10 }, arch.FlatWidths());
        var x = torch.randn([32, 64], generator: g);
        var labels = torch.randint(10, [32], generator: g);
        // The flat map of a convolution layer has orthonormal rows when its [C_out, C_in·k·k] kernel does.
        var m0 = net.Linear(0, torch.eye(64, 64), net.Weights[0]).t();
        Assert.IsLessThanOrEqualTo(1e-5, Bjorck.OrthogonalityError(m0), "conv0 as a 64×64 map");
        Assert.IsLessThanOrEqualTo(1e-5, FotonFixture.MaxAbsDiff(net.LinearTranspose(0, torch.eye(64, 64), net.Weights[0]), m0), "transposed map");
        var u = TwoPassOracle.Compute(net, x, nn.functional.one_hot(labels, 10).to(ScalarType.Float32), null, net.FTranspose(), 1.0);
        var (grad, _) = BackpropGradient.Compute(net, x, labels, null, 1.0);
        for (int i = 0; i < grad.Length; i++)
        {
            double rel = ((u.G[i] - grad[i]).norm() / grad[i].norm()).ToDouble();
            if (act == FotonActivation.Identity || i == grad.Length - 1)
                Assert.IsLessThanOrEqualTo(1e-5, rel, $"{net.Names[i]}: relative error");
            else
                Assert.IsGreaterThan(0.5, FotonTrainStep.Cosine(u.G[i], grad[i]), $"{net.Names[i]}: tanh alignment");
        }
    }

    [TestMethod]
    public void NegativeControl_ExpandingWidths_BreakTheEquivalence()
    {
        var a = Compare([32, 64, 64, 10], FotonActivation.Identity, FotonInit.Orthogonal, orthonormalise: true);
        // fc0 (32 → 64) gets orthonormal columns, not rows: the telescoping fails below the expansion (note: cos ≈ 0.72).
        Assert.IsLessThan(0.95, a.Cosine[0], $"fc0 cosine {a.Cosine[0]}");
        Assert.IsGreaterThan(0.05, a.RelativeError[0]);
        Assert.IsLessThanOrEqualTo(1e-5, a.RelativeError[^1], "the output layer stays exact");
    }

    [TestMethod]
    public void NegativeControl_NonOrthogonalWeights_BreakTheEquivalence()
    {
        var a = Compare([64, 48, 32, 32, 10], FotonActivation.Identity, FotonInit.HeUniform, orthonormalise: false);
        for (int i = 0; i < a.Cosine.Length - 1; i++)
        {
            Assert.IsLessThan(0.95, a.Cosine[i], $"layer {i}: cosine {a.Cosine[i]}");
            Assert.IsGreaterThan(1.5, a.NormRatio[i], $"layer {i}: norm ratio {a.NormRatio[i]} (note: 2.8–23)");
        }
        Assert.IsLessThanOrEqualTo(1e-5, a.RelativeError[^1], "the output layer stays exact");
    }

    [TestMethod]
    public void NegativeControl_FlippedSign_GivesMinusTheGradient()
    {
        var a = Compare([64, 48, 32, 32, 10], FotonActivation.Identity, FotonInit.Orthogonal, orthonormalise: true, sign: +1);
        for (int i = 0; i < a.Cosine.Length - 1; i++)
            Assert.IsLessThan(-1 + 1e-6, a.Cosine[i], $"layer {i}: cosine {a.Cosine[i]}");
        Assert.IsGreaterThan(1 - 1e-6, a.Cosine[^1], "the output layer does not use the modulation");
    }

    [TestMethod]
    [DataRow(FotonActivation.Relu)]
    [DataRow(FotonActivation.Tanh)]
    [DataRow(FotonActivation.MaxMin)]
    public void NonlinearHiddenLayers_Approximate_OutputLayerExact(FotonActivation act)
    {
        var a = Compare([784, 256, 256, 10], act, FotonInit.Orthogonal, orthonormalise: true);
        Assert.IsLessThanOrEqualTo(1e-6, a.RelativeError[^1], "output layer");
        for (int i = 0; i < a.Cosine.Length - 1; i++)
        {
            // Approximate: positively aligned (ReLU ≈ 0.70/0.68 at init on Gaussian inputs in the note), not exact.
            Assert.IsTrue(a.Cosine[i] is > 0.4 and < 0.999, $"{act} layer {i}: cosine {a.Cosine[i]}");
        }
    }
}
