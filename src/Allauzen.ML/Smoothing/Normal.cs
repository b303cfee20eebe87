namespace Allauzen.ML.Smoothing;

/// <summary>
/// The standard normal distribution: density φ, distribution function Φ and quantile Φ⁻¹, written for
/// randomized smoothing where radii are σ·Φ⁻¹(p) with p as close to 1 as 1 − 1e-15 and as small as 1e-300.
/// </summary>
/// <remarks>
/// Φ uses the Taylor series of Φ(x) − ½ = φ(x)·Σ x^(2k+1)/(2k+1)!! for |x| &lt; 2 and Laplace's continued
/// fraction of the Mills ratio Φ(−x)/φ(x) = 1/(x + 1/(x + 2/(x + 3/(x + …)))) (Lentz's method) beyond, so
/// both tails keep their relative accuracy (≈ 1e-15). φ splits x² into its rounded value and the exact
/// rounding error, so exp(−x²/2) stays accurate in the tails. Φ⁻¹ starts from Acklam's rational
/// approximation (relative error ≈ 1e-9) and applies Halley steps on the accurate Φ, always in the lower tail
/// q = min(p, 1 − p) (1 − p is exact for p ≥ ½), and on Φ(x) − ½ near the centre.
/// </remarks>
public static class Normal
{
    private const double InvSqrt2Pi = 0.39894228040143267793994605993438;

    /// <summary>The standard normal density φ(x) = exp(−x²/2)/√(2π).</summary>
    /// <param name="x">The point.</param>
    public static double Pdf(double x)
    {
        if (double.IsNaN(x))
            return double.NaN;
        if (double.IsInfinity(x))
            return 0.0;
        double s = x * x;
        double e = Math.FusedMultiplyAdd(x, x, -s); // x² = s + e exactly
        return InvSqrt2Pi * Math.Exp(-0.5 * s) * (1.0 - 0.5 * e);
    }

    /// <summary>
    /// The standard normal distribution function Φ(x) = P(Z ≤ x), relative error ≤ 1e-14 for x ≥ −37
    /// (gradual underflow below, 0 below −38.5).
    /// </summary>
    /// <param name="x">The point.</param>
    public static double Cdf(double x)
    {
        if (double.IsNaN(x))
            return double.NaN;
        if (x >= 0)
            return x < 2.0 ? 0.5 + CentralPart(x) : 1.0 - UpperTail(x);
        return x > -2.0 ? 0.5 + CentralPart(x) : UpperTail(-x);
    }

    /// <summary>
    /// The standard normal quantile Φ⁻¹(p): −∞ at 0, +∞ at 1, NaN outside [0, 1]; relative error ≤ 1e-14
    /// for p from 1e-300 to 1 − 1e-16.
    /// </summary>
    /// <param name="p">The probability.</param>
    public static double InverseCdf(double p)
    {
        if (double.IsNaN(p) || p < 0 || p > 1)
            return double.NaN;
        if (p == 0)
            return double.NegativeInfinity;
        if (p == 1)
            return double.PositiveInfinity;
        if (p == 0.5)
            return 0.0;
        if (p > 0.5)
            return -LowerQuantile(1.0 - p, p - 0.5); // 1 − p and p − ½ are exact for p ≥ ½
        return LowerQuantile(p, p - 0.5);
    }

    /// <summary>Φ(x) − ½ for |x| &lt; 2 (or a little beyond), without cancellation.</summary>
    private static double CentralPart(double x)
    {
        double x2 = x * x, term = x, sum = x;
        for (int k = 1; k < 200; k++)
        {
            term *= x2 / (2 * k + 1);
            sum += term;
            if (Math.Abs(term) <= 1e-17 * Math.Abs(sum))
                break;
        }
        return Pdf(x) * sum;
    }

    /// <summary>1 − Φ(x) = Φ(−x) for x ≥ 2, by the Mills-ratio continued fraction.</summary>
    private static double UpperTail(double x)
    {
        if (x > 38.5)
            return 0.0;
        return Pdf(x) * MillsRatio(x);
    }

    /// <summary>R(x) = (1 − Φ(x))/φ(x) = 1/(x + 1/(x + 2/(x + 3/(x + …)))), modified Lentz.</summary>
    private static double MillsRatio(double x)
    {
        const double tiny = 1e-300;
        double f = x, c = x, d = 0.0;
        for (int k = 1; k < 5000; k++)
        {
            d = x + k * d;
            if (d == 0)
                d = tiny;
            c = x + k / c;
            if (c == 0)
                c = tiny;
            d = 1.0 / d;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1.0) < 1e-16)
                break;
        }
        return 1.0 / f;
    }

    /// <summary>Φ(x) for x ≤ 0 together with the residual against the target, chosen to avoid cancellation.</summary>
    private static double Residual(double x, double q, double centred)
    {
        // Near the centre compare Φ(x) − ½ with p − ½ (both accurate); in the tail compare Φ(x) with q.
        if (x > -2.0)
            return CentralPart(x) - centred;
        return UpperTail(-x) - q;
    }

    /// <summary>Φ⁻¹(q) for 0 &lt; q &lt; ½; <paramref name="centred"/> is the signed p − ½ of the lower-tail problem.</summary>
    private static double LowerQuantile(double q, double centred)
    {
        double x = Acklam(q);
        double target = -Math.Abs(centred); // in the lower tail Φ(x) − ½ = −|p − ½|
        for (int i = 0; i < 3; i++)
        {
            double pdf = Pdf(x);
            if (pdf == 0)
                break;
            double r = Residual(x, q, target);
            double u = r / pdf;
            double step = u / (1.0 + 0.5 * x * u); // Halley: φ'/φ = −x
            x -= step;
            if (Math.Abs(step) <= 1e-17 * Math.Abs(x))
                break;
        }
        return x;
    }

    /// <summary>Acklam's rational approximation of Φ⁻¹ on (0, ½], relative error about 1.15e-9.</summary>
    private static double Acklam(double p)
    {
        const double pLow = 0.02425;
        if (p < pLow)
        {
            double q = Math.Sqrt(-2.0 * Math.Log(p));
            return (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e+00) * q
                       - 2.549671010127766e+00) * q + 4.374664141464968e+00) * q + 2.938163982698783e+00)
                   / ((((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e+00) * q
                       + 3.754408661907416e+00) * q + 1.0);
        }
        double t = p - 0.5, r = t * t;
        return (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r - 2.759285104469687e+02) * r
                   + 1.383577518672690e+02) * r - 3.066479806614716e+01) * r + 2.506628277459239e+00) * t
               / (((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r - 1.556989798598866e+02) * r
                   + 6.680131188771972e+01) * r - 1.328068155288572e+01) * r + 1.0);
    }
}
