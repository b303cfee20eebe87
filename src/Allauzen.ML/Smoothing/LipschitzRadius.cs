namespace Allauzen.ML.Smoothing;

/// <summary>
/// The Lipschitz-aware radius of "Bridging the Theoretical Gap in Randomized Smoothing" (Delattre et al.,
/// AISTATS 2025), from the authors' <c>compute_rs_lipschitz_radius.py</c>: for a base output
/// f: ℝᵈ → [0, 1] that is L-Lipschitz, the worst case in one dimension is a ramp of slope L from 0 to 1 over
/// [s0, s0 + 1/L]. s0 solves p1 = 1 − L·∫_{s0}^{s0+1/L} Φ(u/σ) du (closed form
/// ∫Φ(u/σ)du = u·Φ(u/σ) + σ·φ(u/σ), solved with Brent's method); the local Lipschitz constant of Φ⁻¹∘f̃ is
/// κ(p1) = L·[Φ((s0 + 1/L)/σ) − Φ(s0/σ)]/φ(Φ⁻¹(p1)) ≤ 1/σ, and the radii are R_mono = Φ⁻¹(p1)/κ(p1) and
/// R_multi = (R_mono(p1) − R_mono(p2))/2. As L → ∞ they tend to Cohen's σΦ⁻¹(p1) and
/// (σ/2)(Φ⁻¹(p1) − Φ⁻¹(p2)).
/// </summary>
/// <remarks>
/// L must be a <em>certified</em> upper bound of the Lipschitz constant of the [0, 1]-valued output (not an
/// estimate such as a product of power-iteration norms), and p1, p2 must be confidence bounds (lower for the
/// top class, upper for the runner-up), never raw means. κ is evaluated at the point itself (ρ = 0), as the
/// reference code does.
/// </remarks>
public static class LipschitzRadius
{
    /// <summary>Solves for the start s0 of the worst-case ramp.</summary>
    /// <param name="p1">The (lower bound of the) smoothed output, in (0, 1).</param>
    /// <param name="lipschitz">Certified Lipschitz constant L &gt; 0 of the base output.</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    public static double RampStart(double p1, double lipschitz, double sigma)
    {
        Check(p1, lipschitz, sigma);
        double h = 1.0 / lipschitz;
        double F(double s0) => 1.0 - lipschitz * (G(s0 + h, sigma) - G(s0, sigma)) - p1;
        // F decreases in s0; bracket around σΦ⁻¹(1 − p1) − h/2 and widen until the sign changes.
        double centre = sigma * Normal.InverseCdf(1.0 - p1) - 0.5 * h;
        double step = Math.Max(sigma, h);
        double a = centre - step, b = centre + step;
        for (int i = 0; i < 200 && F(a) < 0; i++)
            a -= step * (1 << Math.Min(i, 30));
        for (int i = 0; i < 200 && F(b) > 0; i++)
            b += step * (1 << Math.Min(i, 30));
        return Brent.FindRoot(F, a, b, 1e-15);
    }

    /// <summary>The local Lipschitz constant κ(p1) of Φ⁻¹∘f̃ at a point where f̃ = p1 (≤ 1/σ).</summary>
    /// <param name="p1">The smoothed output, in (0, 1).</param>
    /// <param name="lipschitz">Certified Lipschitz constant L &gt; 0.</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    public static double LocalLipschitz(double p1, double lipschitz, double sigma)
    {
        double s0 = RampStart(p1, lipschitz, sigma);
        double mass = Normal.Cdf((s0 + 1.0 / lipschitz) / sigma) - Normal.Cdf(s0 / sigma);
        return lipschitz * mass / Normal.Pdf(Normal.InverseCdf(p1));
    }

    /// <summary>R_mono = Φ⁻¹(p1)/κ(p1): the one-sided radius (negative when p1 &lt; ½).</summary>
    /// <param name="p1">Lower confidence bound of the top class's smoothed output, in (0, 1).</param>
    /// <param name="lipschitz">Certified Lipschitz constant L &gt; 0 (+∞ gives Cohen's σΦ⁻¹(p1)).</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    public static double Mono(double p1, double lipschitz, double sigma)
    {
        if (double.IsPositiveInfinity(lipschitz) && sigma > 0)
            return sigma * Normal.InverseCdf(p1);
        if (p1 == 0.5)
            return 0.0;
        return Normal.InverseCdf(p1) / LocalLipschitz(p1, lipschitz, sigma);
    }

    /// <summary>R_multi = (R_mono(p1) − R_mono(p2))/2.</summary>
    /// <param name="p1">Lower bound of the top class, in (0, 1).</param>
    /// <param name="p2">Upper bound of the runner-up, in (0, 1).</param>
    /// <param name="lipschitz">Certified Lipschitz constant L &gt; 0 (+∞ gives Cohen's two-class radius).</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    public static double Multi(double p1, double p2, double lipschitz, double sigma) =>
        0.5 * (Mono(p1, lipschitz, sigma) - Mono(p2, lipschitz, sigma));

    /// <summary>
    /// The smoothed-Lipschitz constant the LVM-RS code attributes to its paper for an L-Lipschitz
    /// f: ℝᵈ → [0, r]: L·erf(r/(√2·L·σ)) (an upper bound, about 2× loose at large L).
    /// </summary>
    /// <param name="lipschitz">L &gt; 0.</param>
    /// <param name="sigma">σ &gt; 0.</param>
    /// <param name="range">The output range r &gt; 0.</param>
    public static double SmoothedLipschitzLvm(double lipschitz, double sigma, double range = 1.0) =>
        lipschitz * Erf(range / (Math.Sqrt(2) * lipschitz * sigma));

    /// <summary>erf(z) = 2·(Φ(√2·z) − ½), accurate for small z.</summary>
    internal static double Erf(double z) => z >= 0
        ? (z < 1.4 ? 2 * (Normal.Cdf(Math.Sqrt(2) * z) - 0.5) : 1 - 2 * Normal.Cdf(-Math.Sqrt(2) * z))
        : -Erf(-z);

    /// <summary>∫Φ(u/σ)du = u·Φ(u/σ) + σ·φ(u/σ).</summary>
    private static double G(double u, double sigma) => u * Normal.Cdf(u / sigma) + sigma * Normal.Pdf(u / sigma);

    private static void Check(double p1, double lipschitz, double sigma)
    {
        if (!(p1 > 0 && p1 < 1))
            throw new ArgumentOutOfRangeException(nameof(p1), p1, "p1 must lie in (0, 1).");
        if (!(lipschitz > 0) || double.IsNaN(lipschitz))
            throw new ArgumentOutOfRangeException(nameof(lipschitz), lipschitz, "The Lipschitz constant must be positive.");
        if (!(sigma > 0) || double.IsInfinity(sigma))
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "sigma must be positive and finite.");
    }
}

/// <summary>Brent's method (1973) for a root of a continuous function on a bracketing interval.</summary>
internal static class Brent
{
    public static double FindRoot(Func<double, double> f, double a, double b, double relTol, int maxIter = 500)
    {
        double fa = f(a), fb = f(b);
        if (fa == 0)
            return a;
        if (fb == 0)
            return b;
        if (Math.Sign(fa) == Math.Sign(fb))
            throw new ArgumentException($"Brent: f({a}) = {fa} and f({b}) = {fb} do not bracket a root.");
        double c = a, fc = fa, d = b - a, e = d;
        for (int i = 0; i < maxIter; i++)
        {
            if (Math.Sign(fb) == Math.Sign(fc))
            {
                c = a;
                fc = fa;
                d = e = b - a;
            }
            if (Math.Abs(fc) < Math.Abs(fb))
            {
                (a, b, c) = (b, c, b);
                (fa, fb, fc) = (fb, fc, fb);
            }
            double tol = 2 * double.Epsilon + 0.5 * relTol * Math.Abs(b) + 1e-300;
            double m = 0.5 * (c - b);
            if (Math.Abs(m) <= tol || fb == 0)
                return b;
            if (Math.Abs(e) >= tol && Math.Abs(fa) > Math.Abs(fb))
            {
                double s = fb / fa, p, q;
                if (a == c)
                {
                    p = 2 * m * s;
                    q = 1 - s;
                }
                else
                {
                    double qq = fa / fc, r = fb / fc;
                    p = s * (2 * m * qq * (qq - r) - (b - a) * (r - 1));
                    q = (qq - 1) * (r - 1) * (s - 1);
                }
                if (p > 0)
                    q = -q;
                else
                    p = -p;
                if (2 * p < Math.Min(3 * m * q - Math.Abs(tol * q), Math.Abs(e * q)))
                {
                    e = d;
                    d = p / q;
                }
                else
                {
                    d = m;
                    e = m;
                }
            }
            else
            {
                d = m;
                e = m;
            }
            a = b;
            fa = fb;
            b += Math.Abs(d) > tol ? d : Math.Sign(m) * tol;
            fb = f(b);
        }
        return b;
    }
}
