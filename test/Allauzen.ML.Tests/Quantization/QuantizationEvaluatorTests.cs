using Allauzen.ML.Quantization;

namespace Allauzen.ML.Tests.Quantization;

[TestClass]
public sealed class QuantizationEvaluatorTests
{
    [TestMethod]
    public void Wasserstein2_ExactOnSmallCases()
    {
        Assert.AreEqual(0.0, QuantizationEvaluator.Wasserstein2Squared([1f, -1f], [0.5f, 0.5f], [-1f, 1f, 1f, -1f]), 1e-12);
        Assert.AreEqual(1.0, QuantizationEvaluator.Wasserstein2Squared([0f], [1f], [-1f, 1f]), 1e-12);
        // (0.25 at 0, 0.75 at 2) vs uniform {0, 1}: quantile coupling moves 0.25 from 2 to 0... mass 0.5 of 0 ↔ [0.25 at 0, 0.25 at 2], 0.5 of 1 ↔ 2.
        Assert.AreEqual(0.25 * 4 + 0.5 * 1, QuantizationEvaluator.Wasserstein2Squared([2f, 0f], [0.75f, 0.25f], [1f, 0f]), 1e-12);
    }

    [TestMethod]
    public void EnergyDistance_ZeroForTheSameLaw_PositiveOtherwise_AndMatchesBruteForce()
    {
        Assert.AreEqual(0.0, QuantizationEvaluator.EnergyDistance([-1f, 1f], [0.5f, 0.5f], [1f, -1f]), 1e-12);
        var rng = new Random(3);
        float[] a = [.. Enumerable.Range(0, 4).Select(_ => (float)rng.NextDouble())];
        float[] p = [0.1f, 0.2f, 0.3f, 0.4f];
        float[] b = [.. Enumerable.Range(0, 7).Select(_ => (float)rng.NextDouble())];
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < 4; i++)
        {
            for (int j = 0; j < 7; j++)
                ab += p[i] * Math.Abs(a[i] - b[j]) / 7;
            for (int k = 0; k < 4; k++)
                aa += p[i] * p[k] * Math.Abs(a[i] - a[k]);
        }
        for (int j = 0; j < 7; j++)
        {
            for (int k = 0; k < 7; k++)
                bb += Math.Abs(b[j] - b[k]) / 49.0;
        }
        Assert.AreEqual(2 * ab - aa - bb, QuantizationEvaluator.EnergyDistance(a, p, b), 1e-6);
        Assert.IsGreaterThan(0.0, QuantizationEvaluator.EnergyDistance(a, p, b));
    }

    [TestMethod]
    public void Interval_UsesWeightedQuantilesOfTheSortedPoints()
    {
        Assert.AreEqual((-0.5, 0.5), QuantizationEvaluator.Interval([0.5f, -0.5f], [0.5f, 0.5f], 0.9));
        // Weights 0.02 / 0.96 / 0.02: the 90 % interval drops both tails.
        Assert.AreEqual((0.0, 0.0), QuantizationEvaluator.Interval([-1f, 0f, 1f], [0.02f, 0.96f, 0.02f], 0.9));
        Assert.AreEqual(0.0, QuantizationEvaluator.Distortion([0.5f], [-0.5f, 0.5f], 1));
        Assert.AreEqual(2.0, QuantizationEvaluator.Distortion([1f, 1f], [0f, 0f, 2f, 0f], 2));
    }
}
