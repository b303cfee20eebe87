using Allauzen.ML.Evaluation;
using TorchSharp;

namespace Allauzen.ML.Tests.Evaluation;

[TestClass]
public sealed class VectorSetMetricsTests
{
    /// <summary>Points on a coarse grid: many exact duplicates and tied distances, so the exact re-check decides often.</summary>
    private static VectorSet Grid(int n, int d, int seed)
    {
        var rng = new Random(seed);
        return new VectorSet(Enumerable.Range(0, n * d).Select(_ => rng.Next(4) * 0.25f).ToArray(), n, d);
    }

    private static double[] NaiveKth(VectorSet x, VectorSet y, int k, bool self) =>
        Enumerable.Range(0, x.Rows).Select(i => VectorSetMetrics.ExactKth(x, i, y, k, self)).ToArray();

    [TestMethod]
    public void Float32BlockDistancesStayWithinTheStatedErrorBandOfExactFloat64()
    {
        var x = EvaluationData.Mixture(60, 16, 3, seed: 1);
        var y = EvaluationData.Mixture(50, 16, 3, seed: 2);
        using var blocks = new PairwiseBlocks(x, y, 64);
        using var scope = torch.NewDisposeScope();
        var d2 = blocks.SquaredDistances(0, 60, 0, 50).data<float>().ToArray();
        for (int i = 0; i < 60; i++)
        {
            for (int j = 0; j < 50; j++)
            {
                double exact = x.ExactSquaredDistance(i, y, j);
                Assert.IsLessThanOrEqualTo(blocks.Tolerance * (blocks.XNorms[i] + blocks.YNorms[j]), Math.Abs(d2[i * 50 + j] - exact));
            }
        }
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(5)]
    public void KthNearestRadiiAreExactWhateverTheBlockSize(int k)
    {
        foreach (var x in new[] { EvaluationData.Mixture(97, 5, 4, seed: 3), Grid(97, 3, 4) })
        {
            var naive = NaiveKth(x, x, k, self: true);
            CollectionAssert.AreEqual(naive, VectorSetMetrics.KthNearestSquared(x, x, k, excludeSelf: true, blockSize: 7));
            CollectionAssert.AreEqual(naive, VectorSetMetrics.KthNearestSquared(x, x, k, excludeSelf: true, blockSize: 10_000));
            var y = EvaluationData.Mixture(41, x.Dimensions, 4, seed: 5);
            CollectionAssert.AreEqual(NaiveKth(x, y, k, self: false), VectorSetMetrics.KthNearestSquared(x, y, k, excludeSelf: false, blockSize: 6));
        }
    }

    [TestMethod]
    public void IndicatorCountsOfSmallBlocksEqualTheUnblockedAndTheNaiveComputation()
    {
        foreach (var (p, q) in new[] { (EvaluationData.Mixture(83, 4, 5, 6), EvaluationData.Mixture(71, 4, 5, 7, scale: 1.5)), (Grid(83, 3, 8), Grid(71, 3, 9)) })
        {
            const int k = 3;
            var r2P = VectorSetMetrics.KthNearestSquared(p, p, k, true, 5);
            var r2Q = VectorSetMetrics.KthNearestSquared(q, q, k, true, 5);
            var naive = PrdcDefinition.Counts(q, p, r2Q, r2P);
            CollectionAssert.AreEqual(PrdcDefinition.SquaredRadii(p, k), r2P);
            Assert.AreEqual(naive, VectorSetMetrics.CrossIndicators(q, p, r2Q, r2P, blockSize: 4));
            Assert.AreEqual(naive, VectorSetMetrics.CrossIndicators(q, p, r2Q, r2P, blockSize: 10_000));
        }
    }

    [TestMethod]
    public void PcaKeepsTheComponentsOfALowRankUnionAndPreservesDistancesAtFullVariance()
    {
        // Points in a 2-D plane of R^6 (plus a constant offset).
        var rng = new Random(10);
        float[] Plane(int n) => Enumerable.Range(0, n).SelectMany(_ =>
        {
            double a = rng.NextDouble() * 3, b = rng.NextDouble();
            return new[] { (float)(a + 1), (float)b, (float)(a - b), 2f, (float)(0.5 * a), (float)(-b) };
        }).ToArray();
        var x = new VectorSet(Plane(40), 40, 6);
        var y = new VectorSet(Plane(30), 30, 6);
        var (px, py, dims) = VectorSetMetrics.Pca(x, y, 0.999999, blockSize: 7);
        Assert.AreEqual(2, dims);
        Assert.AreEqual(2, px.Dimensions);
        for (int i = 0; i < 40; i += 7)
        {
            for (int j = 0; j < 30; j += 5)
                Assert.AreEqual(Math.Sqrt(x.ExactSquaredDistance(i, y, j)), Math.Sqrt(px.ExactSquaredDistance(i, py, j)), 1e-5);
        }
        Assert.AreEqual(1, VectorSetMetrics.Pca(x, y, 0.5).Components);
    }

    [TestMethod]
    public void L2NormalizeGivesUnitRowsAndKeepsZeroRows()
    {
        var s = VectorSetMetrics.L2Normalize(new VectorSet([3, 4, 0, 0, 1, 1], 3, 2));
        CollectionAssert.AreEqual(new[] { 0.6f, 0.8f, 0f, 0f, (float)Math.Sqrt(0.5), (float)Math.Sqrt(0.5) }, s.Data);
    }

    [TestMethod]
    public void EnergyDistanceMatchesTheDirectSumsAndIsZeroForOneSet()
    {
        var x = EvaluationData.Mixture(37, 3, 2, 11);
        var y = EvaluationData.Mixture(29, 3, 2, 12, scale: 2);
        double Mean(VectorSet a, VectorSet b)
        {
            double s = 0;
            for (int i = 0; i < a.Rows; i++)
            {
                for (int j = 0; j < b.Rows; j++)
                    s += Math.Sqrt(a.ExactSquaredDistance(i, b, j));
            }
            return s / (a.Rows * b.Rows);
        }
        double expected = 2 * Mean(x, y) - Mean(x, x) - Mean(y, y);
        Assert.AreEqual(expected, VectorSetMetrics.EnergyDistance(x, y, blockSize: 8), 1e-5);
        var copy = new VectorSet((float[])x.Data.Clone(), x.Rows, x.Dimensions);
        Assert.AreEqual(0, VectorSetMetrics.EnergyDistance(x, copy), 1e-5);
    }

    [TestMethod]
    public void SlicedWassersteinOfAShiftIsTheRmsProjectedShiftAndOneDimensionalW2IsExact()
    {
        Assert.AreEqual(0.5, VectorSetMetrics.Wasserstein2Squared1D([1, 0], [2, 0, 1]), 1e-15);
        var x = EvaluationData.Mixture(50, 4, 2, 13);
        var shifted = new VectorSet(x.Data.Select((v, i) => v + (i % 4 == 0 ? 1f : 0f)).ToArray(), 50, 4);
        double sw = VectorSetMetrics.SlicedWasserstein(x, shifted, 2000, seed: 1);
        // W2 on direction θ is |θ·v| = |θ_0|; E θ_0² = 1/d.
        Assert.AreEqual(0.5, sw, 0.02);
        Assert.AreEqual(0, VectorSetMetrics.SlicedWasserstein(x, x, 10, seed: 1), 1e-12);
    }
}
