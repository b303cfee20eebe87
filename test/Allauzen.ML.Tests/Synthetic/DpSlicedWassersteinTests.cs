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
    public void AnalyticCalibrationSpendsExactlyTheMechanismsShareOfDelta()
    {
        // σ/Δ = s solves Φ(1/(2s) − εs) − e^ε·Φ(−1/(2s) − εs) = δ/2; reference values from a float64 bisection with
        // math.erfc (Python, independent of this code): s = 3.88414, 0.919144, 0.512612 at ε = 1, 5, 10, δ/2 = 5e-6.
        double sensitivity = DpSlicedWasserstein.Sensitivity(70, 8, Delta);
        double[] epsilons = [1, 5, 10];
        double[] expected = [3.8841408, 0.9191444, 0.5126122];
        for (int i = 0; i < epsilons.Length; i++)
        {
            double sigma = DpSlicedWasserstein.AnalyticNoiseScale(70, 8, epsilons[i], Delta);
            Assert.AreEqual(expected[i] * sensitivity, sigma, 1e-6 * sigma, $"ε = {epsilons[i]}");
            // The smallest such σ: the profile is at most δ/2 at σ and above it 0.1 % lower.
            Assert.IsLessThanOrEqualTo(Delta / 2, DpSlicedWasserstein.GaussianProfile(sigma / sensitivity, epsilons[i]));
            Assert.IsGreaterThan(Delta / 2, DpSlicedWasserstein.GaussianProfile(0.999 * sigma / sensitivity, epsilons[i]));
        }
        // Below ε = 1 the classical constant is valid but looser; at ε = 10 it is not enough: its profile is 1.07e-5 > δ/2.
        Assert.IsLessThan(DpSlicedWasserstein.NoiseScale(70, 8, 1, Delta), DpSlicedWasserstein.AnalyticNoiseScale(70, 8, 1, Delta));
        double classical10 = DpSlicedWasserstein.NoiseScale(70, 8, 10, Delta) / sensitivity;
        Assert.AreEqual(1.0728e-5, DpSlicedWasserstein.GaussianProfile(classical10, 10), 1e-8);
        Assert.AreEqual(0, DpSlicedWasserstein.AnalyticNoiseScale(70, 8, double.PositiveInfinity, Delta));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => DpSlicedWasserstein.AnalyticNoiseScale(70, 8, 0, Delta));
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
