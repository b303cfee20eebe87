using Allauzen.ML.Synthetic;

namespace Allauzen.ML.Tests.Synthetic;

[TestClass]
public sealed class DpSlicedWassersteinTests
{
    private const double Delta = 1e-5;

    [TestMethod]
    public void NoiseScaleMatchesTheNotesUnitValues()
    {
        AssertRelative(7.5408, DpSlicedWasserstein.Sensitivity(70, 8, Delta));
        AssertRelative(7.5194, DpSlicedWasserstein.NoiseScale(70, 8, 5, Delta));
        AssertRelative(37.597, DpSlicedWasserstein.NoiseScale(70, 8, 1, Delta));
        AssertRelative(3.985, DpSlicedWasserstein.NoiseScale(70, 30, 5, Delta));
    }

    [TestMethod]
    public void SmallKUsesTheBernsteinBranch()
    {
        // K ≤ 30: Δ = 2·√(K/d + (2/3)·ln(1/δ) + (2/d)·√(K(d−1)/(d+2)·ln(1/δ))), evaluated by hand for K = 20, d = 8.
        double log = Math.Log(1 / Delta);
        double expected = 2 * Math.Sqrt(20.0 / 8 + 2.0 / 3 * log + 2.0 / 8 * Math.Sqrt(20 * 7.0 / 10 * log));
        AssertRelative(expected, DpSlicedWasserstein.Sensitivity(20, 8, Delta));
        Assert.IsTrue(DpSlicedWasserstein.Sensitivity(30, 8, Delta) > DpSlicedWasserstein.Sensitivity(31, 8, Delta),
            "the K ≤ 30 tail bound is the looser one at the switch");
        Assert.AreEqual(0, DpSlicedWasserstein.NoiseScale(70, 8, double.PositiveInfinity, Delta));
    }

    [TestMethod]
    public void RejectsInvalidArguments()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DpSlicedWasserstein.NoiseScale(0, 8, 1, Delta));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DpSlicedWasserstein.NoiseScale(70, 0, 1, Delta));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DpSlicedWasserstein.NoiseScale(70, 8, 0, Delta));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DpSlicedWasserstein.NoiseScale(70, 8, double.NaN, Delta));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DpSlicedWasserstein.NoiseScale(70, 8, 1, 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DpSlicedWasserstein.NoiseScale(70, 8, 1, 1));
    }

    private static void AssertRelative(double expected, double actual) =>
        Assert.AreEqual(expected, actual, 1e-3 * Math.Abs(expected), $"expected {expected}, got {actual}");
}
