using Allauzen.ML.Synthetic;

namespace Allauzen.ML.Tests.Synthetic;

[TestClass]
public sealed class RdpAccountantTests
{
    private const double Delta = 1e-5;

    [TestMethod]
    public void GaussianCompositionMatchesTheClosedForm()
    {
        const int steps = 1500;
        const double z = 40;
        var a = new RdpAccountant().AddGaussian(z, steps);
        double log = Math.Log(1 / Delta);
        double byHand = double.PositiveInfinity;
        for (int i = 0; i < a.Orders.Count; i++)
        {
            double alpha = a.Orders[i];
            // ε(α) = T·α/(2z²), exact for the Gaussian mechanism; the relative tolerance covers summation order only.
            Assert.AreEqual(steps * alpha / (2 * z * z), a.RenyiEpsilon(i), 1e-12 * a.RenyiEpsilon(i));
            byHand = Math.Min(byHand, steps * alpha / (2 * z * z) + log / (alpha - 1));
        }
        Assert.AreEqual(byHand, a.Epsilon(Delta), 1e-12 * byHand);
        // Over continuous α the minimum is T/(2z²) + √(2T·ln(1/δ))/z; the grid can only be above it, and is close.
        double continuous = steps / (2 * z * z) + Math.Sqrt(2 * steps * log) / z;
        Assert.IsTrue(a.Epsilon(Delta) >= continuous && a.Epsilon(Delta) <= 1.01 * continuous,
            $"grid ε {a.Epsilon(Delta)} vs continuous optimum {continuous}");
        // One release, z = 1: ε(α) = α/2.
        var one = new RdpAccountant([2, 3]).AddGaussian(1);
        Assert.AreEqual(1.0, one.RenyiEpsilon(0));
        Assert.AreEqual(Math.Min(1 + log, 1.5 + log / 2), one.Epsilon(Delta), 1e-12);
    }

    [TestMethod]
    public void SampledGaussianMatchesHandValuesAndTheMomentsAccountantExpansion()
    {
        // q = 1 is the Gaussian mechanism, at every integer order.
        for (int alpha = 2; alpha <= 40; alpha++)
            Assert.AreEqual(alpha / 2.0 / (1.3 * 1.3), RdpAccountant.SampledGaussianRdp(alpha, 1.3, 1), 1e-12);
        // α = 2: A₂ = 1 + q²(e^{1/z²} − 1).
        foreach (var (q, z) in new[] { (0.01, 1.0), (0.1, 2.0), (0.5, 0.7) })
            Assert.AreEqual(Math.Log(1 + q * q * (Math.Exp(1 / (z * z)) - 1)), RdpAccountant.SampledGaussianRdp(2, z, q), 1e-13);
        // The moments accountant (Abadi et al. 2016) writes the same A_{λ+1} as
        // (1−q)·Σᵢ C(λ,i)qⁱ Σⱼ C(i,j)(−1)^{i−j} e^{(j²−j)/(2z²)} + q·Σᵢ C(λ,i)qⁱ Σⱼ C(i,j)(−1)^{i−j} e^{(j²+j)/(2z²)};
        // its alternating sums lose digits, hence the small orders and the 1e-8 relative tolerance.
        foreach (var (q, z) in new[] { (0.004, 2.0), (0.05, 3.0), (0.2, 4.0) })
        {
            for (int lambda = 1; lambda <= 8; lambda++)
            {
                double expected = Math.Log(MomentsAccountantA(q, z, lambda)) / lambda;
                double actual = RdpAccountant.SampledGaussianRdp(lambda + 1, z, q);
                Assert.AreEqual(expected, actual, 1e-8 * Math.Abs(expected) + 1e-15, $"q {q}, z {z}, λ {lambda}");
            }
        }
        Assert.AreEqual(double.PositiveInfinity, RdpAccountant.SampledGaussianRdp(2.5, 1, 0.1));
    }

    private static double MomentsAccountantA(double q, double z, int lambda)
    {
        double first = 0, second = 0;
        for (int i = 0; i <= lambda; i++)
        {
            double s1 = 0, s2 = 0;
            for (int j = 0; j <= i; j++)
            {
                double c = Binomial(i, j) * ((i - j) % 2 == 0 ? 1 : -1);
                s1 += c * Math.Exp((j * j - j) / (2 * z * z));
                s2 += c * Math.Exp((j * j + j) / (2 * z * z));
            }
            first += Binomial(lambda, i) * Math.Pow(q, i) * s1;
            second += Binomial(lambda, i) * Math.Pow(q, i) * s2;
        }
        return (1 - q) * first + q * second;
    }

    private static double Binomial(int n, int k)
    {
        double r = 1;
        for (int i = 1; i <= k; i++)
            r = r * (n - k + i) / i;
        return r;
    }

    [TestMethod]
    public void RowReleaseIsExactAndBetweenTheSumQueryAndTheUnsampledGaussian()
    {
        foreach (double alpha in new[] { 1.5, 2, 8, 64 })
        {
            foreach (double q in new[] { 0.001, 0.01, 0.3 })
            {
                const double z = 3;
                double byHand = Math.Log(1 - q + q * Math.Exp((alpha - 1) * alpha / (2 * z * z))) / (alpha - 1);
                double row = RdpAccountant.SampledRowReleaseRdp(alpha, z, q);
                Assert.AreEqual(byHand, row, 1e-9 * byHand); // the hand form loses digits in 1 − q + q·eˣ at small x
                Assert.IsTrue(row <= RdpAccountant.GaussianRdp(alpha, z), "subsampling never costs more than the full release");
                if (alpha == Math.Floor(alpha))
                    Assert.IsTrue(row >= RdpAccountant.SampledGaussianRdp(alpha, z, q), "a per-row release leaks at least a sum");
            }
        }
        Assert.AreEqual(RdpAccountant.GaussianRdp(5, 2), RdpAccountant.SampledRowReleaseRdp(5, 2, 1));
        // No overflow where e^{(α−1)α/(2z²)} is out of range: ln q + (α−1)α/(2z²) dominates.
        double big = RdpAccountant.SampledRowReleaseRdp(512, 0.5, 0.01);
        Assert.AreEqual((Math.Log(0.01) + 511 * 512 / 0.5) / 511, big, 1e-9 * big);
    }

    [TestMethod]
    public void EpsilonIsMonotoneInStepsNoiseAndSamplingRate()
    {
        foreach (var add in new Action<RdpAccountant, double, double, int>[]
                 {
                     (a, z, q, t) => a.AddSampledGaussian(z, q, t),
                     (a, z, q, t) => a.AddSampledRowRelease(z, q, t),
                 })
        {
            double Eps(double z, double q, int t)
            {
                var a = new RdpAccountant();
                add(a, z, q, t);
                return a.Epsilon(Delta);
            }
            double previous = 0;
            foreach (int t in new[] { 1, 10, 100, 1000, 10000 })
            {
                double e = Eps(2, 0.01, t);
                Assert.IsTrue(e > previous, $"ε must grow with T: {e} after {previous}");
                previous = e;
            }
            previous = double.PositiveInfinity;
            foreach (double z in new[] { 0.6, 1, 2, 5, 20 })
            {
                double e = Eps(z, 0.01, 500);
                Assert.IsTrue(e < previous, $"ε must fall as z grows: {e} after {previous}");
                previous = e;
            }
            previous = 0;
            foreach (double q in new[] { 0.001, 0.01, 0.1, 0.5, 1 })
            {
                double e = Eps(2, q, 500);
                Assert.IsTrue(e > previous, $"ε must grow with q: {e} after {previous}");
                previous = e;
            }
        }
        Assert.AreEqual(0, new RdpAccountant().AddGaussian(double.PositiveInfinity, 100).RenyiEpsilon(0));
    }

    [TestMethod]
    public void CalibratedNoiseMeetsTheTargetTightly()
    {
        foreach (double target in new[] { 0.5, 1, 5, 10 })
        {
            foreach (var (q, steps) in new[] { (1.0, 1), (1.0, 1500), (0.01, 5000) })
            {
                void Compose(RdpAccountant a, double z) => a.AddSampledRowRelease(z, q, steps);
                double z = RdpAccountant.CalibrateNoiseMultiplier(target, Delta, Compose);
                var at = new RdpAccountant();
                Compose(at, z);
                Assert.IsTrue(at.Epsilon(Delta) <= target, $"reported ε {at.Epsilon(Delta)} above the target {target}");
                var below = new RdpAccountant();
                Compose(below, z * (1 - 1e-4));
                Assert.IsTrue(below.Epsilon(Delta) > target, $"z = {z} is not the smallest: {below.Epsilon(Delta)} ≤ {target} at 0.9999·z");
            }
        }
        Assert.AreEqual(0, RdpAccountant.CalibrateNoiseMultiplier(double.PositiveInfinity, Delta, (a, z) => a.AddGaussian(z)));
    }

    [TestMethod]
    public void RejectsInvalidArguments()
    {
        Assert.ThrowsExactly<ArgumentException>(() => new RdpAccountant([1.0]));
        Assert.ThrowsExactly<ArgumentException>(() => new RdpAccountant([]));
        var a = new RdpAccountant();
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => a.AddGaussian(0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => a.AddSampledGaussian(1, 0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => a.AddSampledRowRelease(1, 1.5));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => a.AddGaussian(1, -1));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => a.Epsilon(0));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => RdpAccountant.CalibrateNoiseMultiplier(0, Delta, (x, z) => x.AddGaussian(z)));
    }
}
