using Allauzen.ML.Smoothing;

namespace Allauzen.ML.Synthetic;

/// <summary>
/// The Gaussian mechanism of the differentially private sliced-Wasserstein flow (DPSWflow; Sebag, Pydi, Franceschi,
/// Rakotomamonjy, Gartrell, Atif, Allauzen, arXiv 2312.08227): the data matrix Y (rows in the unit ball) is released
/// only through its projections ΘY on K random unit directions plus N(0, σ²) noise, with σ = c·Δ/ε.
/// </summary>
/// <remarks>
/// Δ is the paper's high-probability ℓ₂ sensitivity of y ↦ Θy for ‖y‖ ≤ 1 under replacement of one row (hence the
/// factor 2), where each (θ·y)² has mean 1/d and variance 2(d−1)/(d²(d+2)) for θ uniform on the sphere:
/// K &gt; 30 (normal approximation): Δ = 2·√(K/d + (z₁₋δ/₂/d)·√(2K(d−1)/(d+2)));
/// K ≤ 30 (a Bernstein-type tail): Δ = 2·√(K/d + (2/3)·ln(1/δ) + (2/d)·√(K·(d−1)/(d+2)·ln(1/δ))).
/// The bound fails with probability δ/2 and the Gaussian mechanism spends the other δ/2:
/// c = √(2·ln(1.25/(δ/2))). This is the classical Gaussian-mechanism constant, proved for ε ≤ 1; the reference
/// code (and this class) apply it for any ε, which is a caveat of the paper's accounting, not an extension of it.
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
}
