using Allauzen.ML.Synthetic;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Synthetic;

/// <summary>
/// The flow's step kernel (radix sort + merge) against the tensor composition it replaces, Quantiles and two
/// Interpolate calls (sort, gather, searchsorted), computed in the same process: the float operations are the same,
/// so the results must be bit-identical, not merely close.
/// </summary>
[TestClass]
public sealed class SlicedWassersteinStepTests
{
    private static Tensor Composition(Tensor xProj, Tensor qTarget, Tensor pct)
    {
        long s = xProj.shape[0], m = pct.shape[0];
        var cdf = SlicedWassersteinFlow.Interpolate(SlicedWassersteinFlow.Quantiles(xProj, pct), pct.expand(s, m), xProj);
        return xProj - SlicedWassersteinFlow.Interpolate(pct.expand(s, m), qTarget, cdf);
    }

    [TestMethod]
    [DataRow(1000, 100, 0.0, DisplayName = "n 1000, M 100")]
    [DataRow(1000, 30_000, 0.0, DisplayName = "M > n (the reference's 30 000 percentiles)")]
    [DataRow(500, 2, 0.0, DisplayName = "M 2 (extrapolation everywhere)")]
    [DataRow(2000, 100, 0.25, DisplayName = "ties: values on a 0.25 grid")]
    [DataRow(1, 10, 0.0, DisplayName = "one particle")]
    public void ResidualsAreBitIdenticalToTheTensorComposition(int n, int m, double grid)
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new torch.Generator(7, torch.CPU);
        const int s = 25;
        var xProj = 3 * torch.randn([s, n], generator: gen);
        if (grid > 0)
            xProj = (xProj / grid).round() * grid;
        var qTarget = torch.randn([s, m], generator: gen).sort(1).Values;
        if (grid > 0)
            qTarget = (qTarget / grid).round() * grid;
        var pct = SlicedWassersteinFlow.Percentiles(m);
        CollectionAssert.AreEqual(Composition(xProj, qTarget, pct).data<float>().ToArray(),
            SlicedWassersteinFlow.TransportResiduals(xProj, qTarget, pct).data<float>().ToArray());
    }

    [TestMethod]
    public void UnsortedPercentilesTakeTheBinarySearchOfSearchsortedBitForBit()
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new torch.Generator(8, torch.CPU);
        const int s = 5, n = 300, m = 17;
        var xProj = torch.randn([s, n], generator: gen);
        var qTarget = torch.randn([s, m], generator: gen);
        var pct = torch.rand([m], generator: gen);
        CollectionAssert.AreEqual(Composition(xProj, qTarget, pct).data<float>().ToArray(),
            SlicedWassersteinFlow.TransportResiduals(xProj, qTarget, pct).data<float>().ToArray());
    }

    [TestMethod]
    public void AStepOfTheFlowIsBitIdenticalToTheTensorComposition()
    {
        using var scope = torch.NewDisposeScope();
        const int s = 25, n = 800, d = 8, m = 100;
        using var data = new torch.Generator(3, torch.CPU);
        var x = torch.randn([n, d], generator: data);
        var theta = torch.nn.functional.normalize(torch.randn([s, d], generator: data), 2, 1);
        var qTarget = (2 * torch.randn([s, m], generator: data)).sort(1).Values;
        var pct = SlicedWassersteinFlow.Percentiles(m);
        var settings = new FlowSettings(s, 1, 3, 0.01, 0.7);
        using var gen = new torch.Generator(11, torch.CPU);
        var step = SlicedWassersteinFlow.Step(x, theta, qTarget, pct, settings, gen);
        using var same = new torch.Generator(11, torch.CPU);
        var xProj = torch.mm(theta, x.t()) + settings.Sigma * torch.randn([s, n], generator: same);
        var expected = x - settings.StepSize * (torch.mm(Composition(xProj, qTarget, pct).t(), theta) / s)
            + Math.Sqrt(2 * settings.StepSize * settings.Lambda) * torch.randn([n, d], generator: same);
        CollectionAssert.AreEqual(expected.data<float>().ToArray(), step.data<float>().ToArray());
    }
}
