namespace Allauzen.ML.Smoothing;

/// <summary>
/// Binomial probabilities accurate to ≈ 1e-15 relative for n up to 10⁹ and p down to the smallest
/// doubles: the probability mass by Loader's saddle-point form (Stirling remainders and the deviance
/// term bd0, no lgamma differences that lose 1e-10 at n = 10⁵), and tails of the regularized incomplete
/// beta function I_x(k, n − k + 1) = P(Bin(n, x) ≥ k), summed as pmf(k; n, x) times a decreasing series of
/// pmf ratios on the side of the mode that makes it a tail (a continued fraction loses 1e-12 near k = n). Every function takes both x and y = 1 − x so callers
/// near 1 keep the accuracy of the small complement.
/// </summary>
internal static class BinomialDistribution
{
    private const double LnSqrt2Pi = 0.91893853320467274178032973640562;

    /// <summary>log(n!) − ((n + ½)·log n − n + log √(2π)), the Stirling remainder, for integer n ≥ 0.</summary>
    internal static double StirlingError(double n)
    {
        if (n <= 15)
        {
            if (n == 0)
                return 0.0; // not used: the callers treat k = 0 and k = n apart
            double logFactorial = 0;
            for (int i = 2; i <= (int)n; i++)
                logFactorial += Math.Log(i);
            return logFactorial - (n + 0.5) * Math.Log(n) + n - LnSqrt2Pi;
        }
        double nn = n * n, inv = 1.0 / n, inv2 = 1.0 / nn;
        // 1/(12n) − 1/(360n³) + 1/(1260n⁵) − 1/(1680n⁷) + 1/(1188n⁹) − 691/(360360n¹¹)
        return inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 * (1.0 / 1260 - inv2 * (1.0 / 1680 - inv2 * (1.0 / 1188 - inv2 * 691.0 / 360360)))));
    }

    /// <summary>The deviance term bd0(x, m) = x·log(x/m) + m − x, accurate when x ≈ m.</summary>
    internal static double Bd0(double x, double m) => Bd0(x, m, x - m);

    /// <summary>bd0 with the difference d = x − m supplied by the caller (who can compute it without cancellation).</summary>
    internal static double Bd0(double x, double m, double d)
    {
        if (Math.Abs(d) < 0.1 * (x + m))
        {
            double v = d / (x + m);
            double s = d * v;
            double ej = 2 * x * v;
            double v2 = v * v;
            for (int j = 1; j < 1000; j++)
            {
                ej *= v2;
                double s1 = s + ej / (2 * j + 1);
                if (s1 == s)
                    return s1;
                s = s1;
            }
            return s;
        }
        return x * Math.Log(x / m) - d;
    }

    /// <summary>log P(Bin(n, p) = k) with p = <paramref name="p"/>, q = 1 − p given separately.</summary>
    internal static double LogPmf(double k, double n, double p, double q)
    {
        if (p == 0)
            return k == 0 ? 0.0 : double.NegativeInfinity;
        if (q == 0)
            return k == n ? 0.0 : double.NegativeInfinity;
        if (k == 0)
            return n * LogOf(q, p);
        if (k == n)
            return n * LogOf(p, q);
        // n·p, n·q and k − n·p from whichever of p, q is the accurate (smaller) one.
        double np = p <= 0.5 ? n * p : n - n * q;
        double nq = q <= 0.5 ? n * q : n - n * p;
        double d = p <= 0.5 ? k - n * p : n * q - (n - k);
        double lc = StirlingError(n) - StirlingError(k) - StirlingError(n - k) - Bd0(k, np, d) - Bd0(n - k, nq, -d);
        return lc + 0.5 * Math.Log(n / (2 * Math.PI * k * (n - k)));
    }

    /// <summary>log(a) where a = 1 − b, computed from the smaller of the two.</summary>
    private static double LogOf(double a, double b) => a < 0.5 ? Math.Log(a) : Accurate.Log1P(-b);

    /// <summary>
    /// The upper tail P(Bin(n, x) ≥ k) and its complement P(Bin(n, x) &lt; k), each with relative accuracy,
    /// for integers 0 ≤ k ≤ n; y = 1 − x.
    /// </summary>
    internal static (double Upper, double Lower) Tails(long k, long n, double x, double y)
    {
        if (k <= 0)
            return (1.0, 0.0);
        if (k > n)
            return (0.0, 1.0);
        // P(X ≥ k) = I_x(a, b) with a = k, b = n − k + 1.
        double a = k, b = n - k + 1;
        if (x * (a + b + 2) < a + 1)
        {
            double upper = TailSum(a, x, y, n);
            return (upper, 1.0 - upper);
        }
        // I_x(a, b) = 1 − I_y(b, a); I_y(b, a) = P(Bin(n, y) ≥ n − k + 1).
        double lower = TailSum(b, y, x, n);
        return (1.0 - lower, lower);
    }

    /// <summary>
    /// P(Bin(n, x) ≥ a) = I_x(a, n − a + 1) for an integer 1 ≤ a ≤ n and x &lt; (a + 1)/(n + 3),
    /// summed from the mode side: pmf(a; n, x)·Σ_{j ≥ a} Π ratios, where the ratio
    /// pmf(j + 1)/pmf(j) = (n − j)/(j + 1)·x/y is below 1 from the first term on, so the positive terms
    /// decrease and the sum stops after a few standard deviations (at most n − a + 1 terms).
    /// </summary>
    private static double TailSum(double a, double x, double y, double n)
    {
        if (x == 0)
            return 0.0;
        double logPmf = LogPmf(a, n, x, y);
        double odds = x / y, term = 1.0, sum = 1.0;
        for (double j = a; j < n; j++)
        {
            term *= (n - j) / (j + 1) * odds;
            sum += term;
            if (term <= 1e-17 * sum)
                break;
        }
        return Math.Exp(logPmf + Math.Log(sum));
    }
}
