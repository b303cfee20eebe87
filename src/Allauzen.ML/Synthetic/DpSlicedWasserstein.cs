using Allauzen.ML.Smoothing;

namespace Allauzen.ML.Synthetic;

/// <summary>
/// The Gaussian mechanism of the differentially private sliced-Wasserstein flow (DPSWflow; Sebag, Pydi, Franceschi,
/// Rakotomamonjy, Gartrell, Atif, Allauzen, arXiv 2312.08227): the data matrix Y (rows in the unit ball) is released
/// only through its projections ΘY on K random unit directions plus N(0, σ²) noise, with σ ∝ Δ/ε.
/// </summary>
/// <remarks>
/// Δ is the paper's high-probability ℓ₂ sensitivity of y ↦ Θy for ‖y‖ ≤ 1 under replacement of one row (hence the
/// factor 2), where each (θ·y)² has mean 1/d and variance 2(d−1)/(d²(d+2)) for θ uniform on the sphere:
/// K &gt; 30 (normal approximation): Δ = 2·√(K/d + (z₁₋δ/₂/d)·√(2K(d−1)/(d+2)));
/// K ≤ 30 (a Bernstein-type tail): Δ = 2·√(K/d + (2/3)·ln(1/δ) + (2/d)·√(K·(d−1)/(d+2)·ln(1/δ))).
/// The bound fails with probability δ/2 and the Gaussian mechanism spends the other δ/2:
/// c = √(2·ln(1.25/(δ/2))). This is the classical Gaussian-mechanism constant, proved for ε ≤ 1; the reference
/// code applies it for any ε, and at ε = 10 the mechanism's share of δ is then 1.07e-5 instead of δ/2 = 5e-6
/// (δ = 1e-5). <see cref="NoiseScale"/> keeps the reference's formula (the unit values of the notes);
/// <see cref="AnalyticNoiseScale"/> is the exact calibration the generator uses since 2026-12-06.
/// </remarks>
public static class DpSlicedWasserstein
{
    /// <summary>
    /// The high-probability sensitivity Δ of the projection y ↦ Θy (K unit directions in ℝ^d, rows ‖y‖ ≤ 1,
    /// replacement of one row), with the reference's two branches (K ≤ 30 and K &gt; 30).
    /// </summary>
    /// <param name="projections">K ≥ 1.</param>
    /// <param name="dimensions">d ≥ 1.</param>
    /// <param name="delta">δ in (0, 1).</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range.</exception>
    public static double Sensitivity(int projections, int dimensions, double delta)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(projections, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        if (!(delta > 0 && delta < 1))
            throw new ArgumentOutOfRangeException(nameof(delta), delta, $"delta must be in (0, 1) (got {delta}).");
        double k = projections, d = dimensions;
        double ratio = (d - 1) / (d + 2);
        double inner;
        if (projections > 30)
        {
            double z = Normal.InverseCdf(1 - delta / 2);
            inner = k / d + z / d * Math.Sqrt(2 * k * ratio);
        }
        else
        {
            double log = Math.Log(1 / delta);
            inner = k / d + 2.0 / 3.0 * log + 2 / d * Math.Sqrt(k * ratio * log);
        }
        return 2 * Math.Sqrt(inner);
    }

    /// <summary>
    /// The noise standard deviation σ = c·Δ/ε of the Gaussian mechanism, c = √(2·ln(1.25/(δ/2))) and Δ from
    /// <see cref="Sensitivity"/>. ε = +∞ gives 0 (no noise, no privacy).
    /// </summary>
    /// <param name="projections">K ≥ 1.</param>
    /// <param name="dimensions">d ≥ 1.</param>
    /// <param name="epsilon">ε &gt; 0, or +∞.</param>
    /// <param name="delta">δ in (0, 1).</param>
    /// <example>K = 70, d = 8, ε = 5, δ = 1e-5 gives Δ = 7.5408 and σ = 7.5194.</example>
    /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range.</exception>
    public static double NoiseScale(int projections, int dimensions, double epsilon, double delta)
    {
        if (!(epsilon > 0))
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, $"epsilon must be positive or +∞ (got {epsilon}).");
        double sensitivity = Sensitivity(projections, dimensions, delta);
        if (double.IsPositiveInfinity(epsilon))
            return 0;
        double c = Math.Sqrt(2 * Math.Log(1.25 / (delta / 2)));
        return c * sensitivity / epsilon;
    }

    /// <summary>
    /// The noise standard deviation σ = s·Δ of the analytic Gaussian mechanism (Balle &amp; Wang, ICML 2018): Δ from
    /// <see cref="Sensitivity"/> (failure probability δ/2) and s the smallest noise multiplier whose exact privacy profile
    /// Φ(1/(2s) − ε·s) − e^ε·Φ(−1/(2s) − ε·s) is at most δ/2, so the release is (ε, δ)-DP for every ε &gt; 0 (the
    /// classical constant of <see cref="NoiseScale"/> is proved for ε ≤ 1 only). ε = +∞ gives 0.
    /// </summary>
    /// <param name="projections">K ≥ 1.</param>
    /// <param name="dimensions">d ≥ 1.</param>
    /// <param name="epsilon">ε &gt; 0, or +∞.</param>
    /// <param name="delta">δ in (0, 1).</param>
    /// <example>K = 70, d = 8, δ = 1e-5: σ = 29.290 at ε = 1, 6.9311 at ε = 5, 3.8655 at ε = 10 (NoiseScale: 37.597,
    /// 7.5194, 3.7597).</example>
    /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range.</exception>
    public static double AnalyticNoiseScale(int projections, int dimensions, double epsilon, double delta)
    {
        if (!(epsilon > 0))
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, $"epsilon must be positive or +∞ (got {epsilon}).");
        double sensitivity = Sensitivity(projections, dimensions, delta);
        return double.IsPositiveInfinity(epsilon) ? 0 : sensitivity * AnalyticMultiplier(epsilon, delta / 2);
    }

    /// <summary>The exact privacy profile δ(ε) of the Gaussian mechanism with noise multiplier s = σ/Δ:
    /// Φ(1/(2s) − ε·s) − e^ε·Φ(−1/(2s) − ε·s) (Balle &amp; Wang 2018, Theorem 8).</summary>
    internal static double GaussianProfile(double multiplier, double epsilon)
    {
        double a = 1 / (2 * multiplier), b = epsilon * multiplier;
        double tail = Normal.Cdf(-a - b);
        return Normal.Cdf(a - b) - (tail == 0 ? 0 : Math.Exp(epsilon + Math.Log(tail)));
    }

    /// <summary>The smallest s with <see cref="GaussianProfile"/>(s, ε) ≤ δ (the profile decreases in s), by bisection
    /// to a relative 1e-12, rounded up.</summary>
    internal static double AnalyticMultiplier(double epsilon, double delta)
    {
        double hi = 1;
        while (GaussianProfile(hi, epsilon) > delta)
            hi *= 2;
        double lo = hi / 2;
        while (lo > 1e-300 && GaussianProfile(lo, epsilon) <= delta)
            lo /= 2;
        while (hi - lo > 1e-12 * hi)
        {
            double mid = 0.5 * (lo + hi);
            if (GaussianProfile(mid, epsilon) > delta)
                lo = mid;
            else
                hi = mid;
        }
        return hi;
    }
}
