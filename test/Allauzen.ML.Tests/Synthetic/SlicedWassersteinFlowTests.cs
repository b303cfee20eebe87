using Allauzen.ML.Evaluation;
using Allauzen.ML.Synthetic;

namespace Allauzen.ML.Tests.Synthetic;

[TestClass]
public sealed class SlicedWassersteinFlowTests
{
    internal const int D = 8;

    /// <summary>The notes' 8-D two-mode toy: ½N(+μ, I) + ½N(−μ, I), μ = 2.65·(1, …, 1) (‖μ‖ ≈ 7.5), raw scale.</summary>
    internal static float[] TwoModes(int n, int seed)
    {
        var rng = new Random(seed);
        var y = new float[n * D];
        for (int i = 0; i < n; i++)
        {
            double sign = i % 2 == 0 ? 1 : -1;
            for (int t = 0; t < D; t++)
                y[i * D + t] = (float)(sign * 2.65 + Gaussian(rng));
        }
        return y;
    }

    internal static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    private static float[] Flow(float[] y, int n, int steps, int seed, double sigma = 0)
    {
        const int k = 70, m = 100;
        var theta = SlicedWassersteinFlow.UnitDirections(k, D, 11);
        var q = SlicedWassersteinFlow.ReleaseQuantiles(y, n, D, theta, k, m, sigma, 12);
        return SlicedWassersteinFlow.Run(theta, k, D, q, m, new FlowSettings(25, steps, 3, 0, sigma), n, seed);
    }

    [TestMethod]
    public void WithoutNoiseTheFlowDrivesSlicedWassersteinOnTheTwoModeToyBelowOne()
    {
        const int n = 1000;
        var y = TwoModes(n, 1);
        var target = new VectorSet(y, n, D);
        var start = new VectorSet(Flow(y, n, 0, 5), n, D);
        var end = new VectorSet(Flow(y, n, 300, 5), n, D);
        double before = VectorSetMetrics.SlicedWasserstein(start, target, 200, 3);
        double after = VectorSetMetrics.SlicedWasserstein(end, target, 200, 3);
        Console.WriteLine($"SW2: start {before:F3}, after 300 steps {after:F3}");
        Assert.IsTrue(before is > 2.0 and < 2.6, $"the toy starts at SW₂ ≈ 2.30 (got {before})");
        Assert.IsTrue(after <= 1.0, $"SW₂ after the flow {after} > 1.0");
    }

    [TestMethod]
    public void IsDeterministicPerSeedAndNeverEmitsATrainingRow()
    {
        const int n = 300;
        var y = TwoModes(n, 2);
        var a = Flow(y, n, 40, 9, sigma: 0.5);
        var b = Flow(y, n, 40, 9, sigma: 0.5);
        var c = Flow(y, n, 40, 10, sigma: 0.5);
        CollectionAssert.AreEqual(a, b);
        CollectionAssert.AreNotEqual(a, c);
        var gen = new VectorSet(a, n, D);
        var train = new VectorSet(y, n, D);
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
                Assert.IsTrue(gen.ExactSquaredDistance(i, train, j) > 0, $"generated row {i} equals training row {j}");
        }
    }

    [TestMethod]
    public void QuantilesAndInterpolationAgreeWithHandValues()
    {
        using var a = TorchSharp.torch.tensor(new float[] { 3, 1, 2, 0 }, [1, 4]);
        using var p = TorchSharp.torch.tensor(new float[] { 0, 0.5f, 1 });
        using var q = SlicedWassersteinFlow.Quantiles(a, p);
        CollectionAssert.AreEqual(new float[] { 0, 1.5f, 3 }, q.data<float>().ToArray());
        using var xs = TorchSharp.torch.tensor(new float[] { 0, 1, 3 }, [1, 3]);
        using var ys = TorchSharp.torch.tensor(new float[] { 0, 10, 20 }, [1, 3]);
        using var xn = TorchSharp.torch.tensor(new float[] { -1, 0.5f, 2, 4 }, [1, 4]);
        using var r = SlicedWassersteinFlow.Interpolate(xs, ys, xn);
        var v = r.data<float>().ToArray();
        float[] expected = [-10, 5, 15, 25];
        for (int i = 0; i < 4; i++)
            Assert.AreEqual(expected[i], v[i], 1e-4f);
    }
}
