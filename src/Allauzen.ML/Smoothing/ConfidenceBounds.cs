namespace Allauzen.ML.Smoothing;

/// <summary>
/// One-sided confidence bounds used by randomized-smoothing certificates. Every bound fails with
/// probability at most α (one-sided α, Cohen et al.'s convention; statsmodels' two-sided call at 2α gives
/// the same numbers).
/// </summary>
public static class ConfidenceBounds
{
    /// <summary>
    /// The one-sided Clopper–Pearson lower bound on a binomial proportion: the p with
    /// P(Bin(n, p) ≥ k) = α, i.e. BetaInv(α; k, n − k + 1); 0 when k = 0 and α^(1/n) when k = n.
    /// Relative error ≤ 1e-12 (a log-space Newton/bisection solve on the regularized incomplete beta).
    /// </summary>
    /// <param name="k">Successes, 0 ≤ k ≤ n.</param>
    /// <param name="n">Trials, n ≥ 1.</param>
    /// <param name="alpha">Failure probability of the bound, in (0, 1).</param>
    public static double ClopperPearsonLower(long k, long n, double alpha)
    {
        Check(k, n, alpha);
        if (k == 0)
            return 0.0;
        if (k == n)
            return Math.Exp(Math.Log(alpha) / n);
        return SolveUpperTail(k, n, alpha).P;
    }

    /// <summary>
    /// The one-sided Clopper–Pearson upper bound: BetaInv(1 − α; k + 1, n − k) = 1 − <see cref="ClopperPearsonLower"/>(n − k, n, α);
    /// 1 when k = n and 1 − α^(1/n) when k = 0. Small bounds keep their relative accuracy.
    /// </summary>
    /// <param name="k">Successes, 0 ≤ k ≤ n.</param>
    /// <param name="n">Trials, n ≥ 1.</param>
    /// <param name="alpha">Failure probability of the bound, in (0, 1).</param>
    public static double ClopperPearsonUpper(long k, long n, double alpha)
    {
        Check(k, n, alpha);
        if (k == n)
            return 1.0;
        if (k == 0)
            return -Accurate.ExpM1(Math.Log(alpha) / n);
        return SolveUpperTail(n - k, n, alpha).Q;
    }

    /// <summary>
    /// The empirical-Bernstein deviation of Maurer and Pontil (2009, Thm 4) for n i.i.d. samples in [0, 1]
    /// with unbiased sample variance <paramref name="variance"/>: sqrt(2·V·ln(2/δ)/n) + 7·ln(2/δ)/(3(n − 1)).
    /// The mean minus (plus) this shift is a lower (upper) bound that fails with probability at most δ.
    /// </summary>
    /// <param name="variance">Unbiased sample variance V_n (≥ 0).</param>
    /// <param name="n">Number of samples, at least 2.</param>
    /// <param name="delta">Failure probability of the one-sided bound, in (0, 1).</param>
    public static double EmpiricalBernsteinShift(double variance, long n, double delta)
    {
        if (n < 2)
            throw new ArgumentOutOfRangeException(nameof(n), n, "The empirical Bernstein bound needs at least 2 samples.");
        if (!(delta > 0 && delta < 1))
            throw new ArgumentOutOfRangeException(nameof(delta), delta, "delta must lie in (0, 1).");
        double log = Math.Log(2.0 / delta);
        return Math.Sqrt(2.0 * Math.Max(variance, 0.0) * log / n) + 7.0 * log / (3.0 * (n - 1));
    }

    /// <summary>
    /// The two-sided exact binomial test of <paramref name="countA"/> successes in countA + countB trials
    /// against p = ½ (Cohen's PREDICT): min(1, 2·P(Bin(countA + countB, ½) ≤ min(countA, countB))).
    /// 1 when both counts are 0.
    /// </summary>
    /// <param name="countA">Votes for the top class.</param>
    /// <param name="countB">Votes for the runner-up.</param>
    public static double BinomialTestPValue(long countA, long countB)
    {
        if (countA < 0 || countB < 0)
            throw new ArgumentOutOfRangeException(countA < 0 ? nameof(countA) : nameof(countB), "Counts must be non-negative.");
        long n = countA + countB;
        if (n == 0)
            return 1.0;
        long m = Math.Min(countA, countB);
        double lower = BinomialDistribution.Tails(m + 1, n, 0.5, 0.5).Lower; // P(X ≤ m)
        return Math.Min(1.0, 2.0 * lower);
    }

    private static void Check(long k, long n, double alpha)
    {
        if (n < 1)
            throw new ArgumentOutOfRangeException(nameof(n), n, "The number of trials must be at least 1.");
        if (k < 0 || k > n)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"The number of successes must lie in [0, {n}].");
        if (!(alpha > 0 && alpha < 1))
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must lie in (0, 1).");
    }

    /// <summary>
    /// Solves P(Bin(n, p) ≥ k) = α for 1 ≤ k ≤ n − 1 and returns p and q = 1 − p, each accurate: the solve
    /// runs on log p when the root is below ½ and on log(1 − p) otherwise (safeguarded Newton, bisection).
    /// </summary>
    internal static (double P, double Q) SolveUpperTail(long k, long n, double alpha)
    {
        double logAlpha = Math.Log(alpha);
        bool upperHalf = BinomialDistribution.Tails(k, n, 0.5, 0.5).Upper < alpha;
        // Work variable u = log(w), w = p (lower half) or w = 1 − p (upper half); g(u) = log U − log α.
        // g increases with p, so it increases in u for the lower half and decreases for the upper half.
        double sign = upperHalf ? -1.0 : 1.0;
        double lo = Math.Log(double.Epsilon), hi = Math.Log(0.5); // sign·g(lo) < 0 ≤ sign·g(hi)
        double u = InitialGuess(k, n, alpha, upperHalf, lo, hi);
        for (int iter = 0; iter < 300; iter++)
        {
            double w = Math.Exp(u);
            double p = upperHalf ? 1.0 - w : w, q = upperHalf ? w : 1.0 - w;
            double upper = BinomialDistribution.Tails(k, n, p, q).Upper;
            double g = Math.Log(upper) - logAlpha;
            double sg = sign * g;
            if (sg < 0)
                lo = u;
            else
                hi = u;
            if (g == 0 || hi - lo <= 1e-15 * Math.Abs(u))
                break;
            // dU/dp = (k/p)·pmf(k; n, p); dg/du = w·(dU/dp)·(dp/dw)/U.
            double logDensity = Math.Log(k) - Math.Log(p) + BinomialDistribution.LogPmf(k, n, p, q);
            double slope = sign * Math.Exp(logDensity + Math.Log(w) - Math.Log(upper));
            double next = u - g / slope;
            if (double.IsNaN(next) || double.IsInfinity(g) || next <= lo || next >= hi)
                next = 0.5 * (lo + hi);
            if (Math.Abs(next - u) <= 2e-16 * Math.Abs(u))
            {
                u = next;
                break;
            }
            u = next;
        }
        double wf = Math.Exp(u);
        return upperHalf ? (1.0 - wf, wf) : (wf, 1.0 - wf);
    }

    private static double InitialGuess(long k, long n, double alpha, bool upperHalf, double lo, double hi)
    {
        // Normal approximation of the quantile; clamp into the bracket.
        double phat = (double)k / n;
        double z = Normal.InverseCdf(1 - alpha);
        double guess = phat - z * Math.Sqrt(Math.Max(phat * (1 - phat), 1.0 / n) / n);
        double w = upperHalf ? 1.0 - guess : guess;
        if (!(w > 0))
            w = Math.Min(phat, 1 - phat) * 1e-3 + 1e-300;
        double u = Math.Log(Math.Min(w, 0.5));
        return Math.Clamp(u, lo, hi);
    }
}
