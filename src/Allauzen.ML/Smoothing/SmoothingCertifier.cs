namespace Allauzen.ML.Smoothing;

/// <summary>
/// The result of certifying one input: a class with an L2 radius, or an abstention (class −1, radius 0).
/// </summary>
/// <param name="Class">The certified class (0-based), or −1 for ABSTAIN.</param>
/// <param name="Radius">The certified L2 radius in input units (0 when abstaining).</param>
/// <param name="LowerBoundTopClass">The lower confidence bound p̲A used for the top class (diagnostic).</param>
/// <param name="UpperBoundRunnerUp">The upper confidence bound p̄B used for the runner-up (diagnostic).</param>
public readonly record struct SmoothingCertificate(int Class, double Radius, double LowerBoundTopClass, double UpperBoundRunnerUp)
{
    /// <summary>True when the certifier abstained.</summary>
    public bool Abstained => Class < 0;

    internal static SmoothingCertificate Abstain(double pA, double pB) => new(-1, 0.0, pA, pB);
}

/// <summary>Which radius CPM (and the Bonferroni baseline) computes from the bucket bounds.</summary>
public enum CpmRadius
{
    /// <summary>R_multi = (σ/2)(Φ⁻¹(p̲A) − Φ⁻¹(p̄B)), each of the #buckets bounds at α/#buckets.</summary>
    Multi = 0,

    /// <summary>R_mono = σ·Φ⁻¹(p̲A) (p̄B = 1 − p̲A), one bound at α.</summary>
    Mono = 1,
}

/// <summary>
/// The certificates of randomized smoothing computed from sufficient statistics (vote counts, sums of simplex
/// maps), so that one sampling pass can be certified many ways. Each method documents its α convention; every
/// bound is clamped to [0, 1], Φ⁻¹(0/1) is ∓∞, and NaN candidates are rejected.
/// </summary>
public static class SmoothingCertifier
{
    /// <summary>
    /// Cohen et al. (2019) CERTIFY: ĉA = argmax of the selection counts (lowest index on ties);
    /// p̲A = CP_lo(counts[ĉA], n, α) on the independent estimation sample (one-sided α); abstain iff p̲A &lt; ½
    /// (as the reference: p̲A = ½ returns ĉA with radius 0); R = σ·Φ⁻¹(p̲A). p̄B is reported as 1 − p̲A.
    /// </summary>
    /// <param name="selectionCounts">Votes of the n0 selection sample, one per class.</param>
    /// <param name="estimationCounts">Votes of the n estimation sample, one per class.</param>
    /// <param name="alpha">Failure probability, in (0, 1).</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    public static SmoothingCertificate Cohen(ReadOnlySpan<long> selectionCounts, ReadOnlySpan<long> estimationCounts, double alpha, double sigma)
    {
        long n = Sum(estimationCounts);
        CheckCommon(selectionCounts, estimationCounts, n, alpha, sigma);
        int cA = ArgMax(selectionCounts);
        double pA = ConfidenceBounds.ClopperPearsonLower(estimationCounts[cA], n, alpha);
        if (pA < 0.5)
            return SmoothingCertificate.Abstain(pA, 1 - pA);
        return new SmoothingCertificate(cA, sigma * Normal.InverseCdf(pA), pA, 1 - pA);
    }

    /// <summary>
    /// Cohen et al. (2019) PREDICT: the top two counts (lowest index first on ties) and the two-sided exact
    /// binomial test against ½; returns the top class when the p-value ≤ α, −1 otherwise. The probability of
    /// returning a class other than g(x) is at most α.
    /// </summary>
    /// <param name="counts">Votes of n noisy samples.</param>
    /// <param name="alpha">Significance level, in (0, 1).</param>
    public static int CohenPredict(ReadOnlySpan<long> counts, double alpha)
    {
        CheckAlpha(alpha);
        if (counts.Length == 0)
            throw new ArgumentException("The count vector is empty.", nameof(counts));
        int a = ArgMax(counts);
        int b = -1;
        for (int c = 0; c < counts.Length; c++)
        {
            if (c != a && (b < 0 || counts[c] > counts[b]))
                b = c;
        }
        long nB = b < 0 ? 0 : counts[b];
        return ConfidenceBounds.BinomialTestPValue(counts[a], nB) <= alpha ? a : -1;
    }

    /// <summary>
    /// The class buckets of the Bridging paper's CPM, built from the selection counts only: the top class, the
    /// runner-up, then while the remaining selection mass exceeds the runner-up's count the largest remaining
    /// class gets its own bucket; the rest forms one bucket. Order: descending count, lower index first (the
    /// reference's torch.sort tie order is unspecified).
    /// </summary>
    /// <param name="selectionCounts">Votes of the n0 selection sample (at least 2 classes).</param>
    public static IReadOnlyList<int[]> CpmBuckets(ReadOnlySpan<long> selectionCounts)
    {
        var counts = selectionCounts.ToArray();
        var order = Enumerable.Range(0, counts.Length).OrderByDescending(i => counts[i]).ThenBy(i => i).ToList();
        var buckets = new List<int[]> { new[] { order[0] } };
        if (order.Count < 2)
            return buckets;
        buckets.Add([order[1]]);
        var rest = order.Skip(2).ToList();
        long runnerUp = counts[order[1]];
        while (rest.Count > 0 && rest.Sum(i => counts[i]) > runnerUp)
        {
            buckets.Add([rest[0]]);
            rest.RemoveAt(0);
        }
        if (rest.Count > 0)
            buckets.Add([.. rest]);
        return buckets;
    }

    /// <summary>
    /// The Bridging paper's CPM certificate (Delattre et al., AISTATS 2025): buckets from the selection sample
    /// (<see cref="CpmBuckets"/>); α' = α/#buckets for <see cref="CpmRadius.Multi"/>, α for
    /// <see cref="CpmRadius.Mono"/> (and Mono when there is a single bucket); p̲A = CP_lo(bucket 0), p̄B = max
    /// CP_up over the other buckets, on the estimation counts; abstain iff R &lt; 0. For the Lipschitz-based radius
    /// (which needs bounds on a Lipschitz soft output, not on votes) see <see cref="CpmLipschitz"/>.
    /// </summary>
    /// <param name="selectionCounts">Votes of the n0 selection sample.</param>
    /// <param name="estimationCounts">Votes of the n estimation sample.</param>
    /// <param name="alpha">Failure probability, in (0, 1).</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    /// <param name="mode">R_multi (default) or R_mono.</param>
    public static SmoothingCertificate Cpm(ReadOnlySpan<long> selectionCounts, ReadOnlySpan<long> estimationCounts, double alpha, double sigma,
        CpmRadius mode = CpmRadius.Multi)
    {
        long n = Sum(estimationCounts);
        CheckCommon(selectionCounts, estimationCounts, n, alpha, sigma);
        var buckets = CpmBuckets(selectionCounts);
        if (buckets.Count < 2)
            mode = CpmRadius.Mono;
        double a = mode == CpmRadius.Multi ? alpha / buckets.Count : alpha;
        var est = estimationCounts.ToArray();
        double pA = ConfidenceBounds.ClopperPearsonLower(buckets[0].Sum(i => est[i]), n, a);
        double pB = mode == CpmRadius.Mono ? 1 - pA : 0.0;
        if (mode == CpmRadius.Multi)
        {
            for (int b = 1; b < buckets.Count; b++)
                pB = Math.Max(pB, ConfidenceBounds.ClopperPearsonUpper(buckets[b].Sum(i => est[i]), n, a));
        }
        return FromBounds(buckets[0][0], pA, pB, sigma, mode, double.PositiveInfinity);
    }

    /// <summary>
    /// The Bridging paper's CPM certificate with its Lipschitz-based radius (Delattre et al., AISTATS 2025). Votes
    /// are not Lipschitz, so the base output is the soft one: bucket B's output is Σ_{k∈B} softmax(t·logits)_k ∈ [0, 1],
    /// whose Lipschitz constant is at most <see cref="SoftmaxBucketLipschitz"/>(L, t) for L-Lipschitz logits. Buckets
    /// come from the selection votes (<see cref="CpmBuckets"/>, independent of the estimation sample); each bucket's
    /// mean over the n estimation samples is bounded with the empirical Bernstein inequality (Maurer and Pontil
    /// 2009, one-sided) at α' = α/#buckets (<see cref="CpmRadius.Multi"/>) or α (<see cref="CpmRadius.Mono"/>, or a
    /// single bucket), with the bucket's sample variance bounded by (Σ_{k∈B} √V_k)² (Cauchy–Schwarz on the empirical
    /// covariance, which only widens the bound); the radius is <see cref="LipschitzRadius.Multi"/> or
    /// <see cref="LipschitzRadius.Mono"/> at <paramref name="softLipschitz"/> (+∞ gives Cohen's Φ⁻¹ radius on the
    /// same bounds). The certified classifier is the smoothed soft classifier argmax_k E[softmax(t·f(x + ε))_k].
    /// </summary>
    /// <param name="selectionCounts">Votes of the n0 selection sample.</param>
    /// <param name="soft">Statistics of the soft output softmax(t·logits) over the n estimation samples.</param>
    /// <param name="alpha">Failure probability, in (0, 1).</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    /// <param name="mode">R_multi (default) or R_mono.</param>
    /// <param name="softLipschitz">Certified Lipschitz constant of every bucket output (e.g. <see cref="SoftmaxBucketLipschitz"/>), or +∞.</param>
    public static SmoothingCertificate CpmLipschitz(ReadOnlySpan<long> selectionCounts, SimplexMapStatistics soft, double alpha, double sigma,
        CpmRadius mode, double softLipschitz)
    {
        ArgumentNullException.ThrowIfNull(soft);
        CheckAlpha(alpha);
        CheckSigma(sigma);
        if (!(softLipschitz > 0))
            throw new ArgumentOutOfRangeException(nameof(softLipschitz), softLipschitz, "The Lipschitz constant must be positive.");
        int k = selectionCounts.Length;
        if (k == 0 || soft.Sums.Length != k)
            throw new ArgumentException($"The selection counts have {k} classes and the soft-output statistics {soft.Sums.Length}; they must match and be non-empty.");
        long n = soft.Count;
        if (n < 2)
            throw new ArgumentException("The empirical Bernstein bound needs at least 2 estimation samples.", nameof(soft));
        var buckets = CpmBuckets(selectionCounts);
        if (buckets.Count < 2)
            mode = CpmRadius.Mono;
        double a = mode == CpmRadius.Multi ? alpha / buckets.Count : alpha;
        double Mean(int[] b) => b.Sum(c => soft.Sums[c]) / n;
        double Shift(int[] b)
        {
            double sd = b.Sum(c => Math.Sqrt(soft.Variance(c)));
            return ConfidenceBounds.EmpiricalBernsteinShift(sd * sd, n, a);
        }
        double pA = Mean(buckets[0]) - Shift(buckets[0]);
        double pB = mode == CpmRadius.Mono ? 1 - Clamp01(pA) : 0.0;
        if (mode == CpmRadius.Multi)
        {
            for (int b = 1; b < buckets.Count; b++)
                pB = Math.Max(pB, Mean(buckets[b]) + Shift(buckets[b]));
        }
        return FromBounds(buckets[0][0], pA, pB, sigma, mode, softLipschitz);
    }

    /// <summary>
    /// A certified Lipschitz constant of x ↦ Σ_{k∈B} softmax(t·z(x))_k for any class set B when the logits z are
    /// L-Lipschitz (L2): (√2/4)·t·L. The gradient of P_B = Σ_{k∈B} p_k with respect to the logits is
    /// g_j = p_j·(1[j∈B] − P_B), so ‖g‖² = (1 − P_B)²·Σ_{j∈B} p_j² + P_B²·Σ_{j∉B} p_j² ≤ 2·P_B²·(1 − P_B)² ≤ 1/8.
    /// </summary>
    /// <param name="logitsLipschitz">Certified L2 Lipschitz constant L of features → logits.</param>
    /// <param name="scale">The inverse temperature t &gt; 0 of the softmax.</param>
    public static double SoftmaxBucketLipschitz(double logitsLipschitz, double scale) => Math.Sqrt(2) / 4 * scale * logitsLipschitz;

    /// <summary>
    /// The Bonferroni baseline of the Bridging code (as intended; the published function raises): ĉA from the
    /// selection counts, each class bounded at α/K for R_multi (α for R_mono), p̄B = max per-class upper bound.
    /// </summary>
    /// <param name="selectionCounts">Votes of the n0 selection sample.</param>
    /// <param name="estimationCounts">Votes of the n estimation sample.</param>
    /// <param name="alpha">Failure probability, in (0, 1).</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    /// <param name="mode">R_multi (default) or R_mono.</param>
    public static SmoothingCertificate Bonferroni(ReadOnlySpan<long> selectionCounts, ReadOnlySpan<long> estimationCounts, double alpha, double sigma,
        CpmRadius mode = CpmRadius.Multi)
    {
        long n = Sum(estimationCounts);
        CheckCommon(selectionCounts, estimationCounts, n, alpha, sigma);
        int k = estimationCounts.Length;
        double a = mode == CpmRadius.Multi ? alpha / k : alpha;
        int cA = ArgMax(selectionCounts);
        double pA = ConfidenceBounds.ClopperPearsonLower(estimationCounts[cA], n, a);
        double pB = 0;
        for (int c = 0; c < k; c++)
        {
            if (c != cA)
                pB = Math.Max(pB, ConfidenceBounds.ClopperPearsonUpper(estimationCounts[c], n, a));
        }
        return FromBounds(cA, pA, mode == CpmRadius.Mono ? 1 - pA : pB, sigma, mode, double.PositiveInfinity);
    }

    /// <summary>
    /// A certificate from bucket bounds (p̲A of the top bucket, p̄B the largest upper bound of the others):
    /// R_multi or R_mono, with Cohen's Φ⁻¹ radius when <paramref name="lipschitz"/> is +∞ and the Bridging
    /// Lipschitz radius otherwise; abstain iff R &lt; 0 or NaN.
    /// </summary>
    /// <param name="topClass">The class of the top bucket.</param>
    /// <param name="pA">Lower bound of the top bucket.</param>
    /// <param name="pB">Upper bound of the runner-up buckets.</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    /// <param name="mode">R_multi or R_mono.</param>
    /// <param name="lipschitz">Certified Lipschitz constant of the [0, 1] soft output, or +∞.</param>
    public static SmoothingCertificate FromBucketBounds(int topClass, double pA, double pB, double sigma, CpmRadius mode, double lipschitz) =>
        FromBounds(topClass, pA, pB, sigma, mode, lipschitz);

    private static SmoothingCertificate FromBounds(int cA, double pA, double pB, double sigma, CpmRadius mode, double lipschitz)
    {
        pA = Clamp01(pA);
        pB = Clamp01(pB);
        double r;
        if (double.IsPositiveInfinity(lipschitz))
        {
            r = mode == CpmRadius.Mono
                ? sigma * Normal.InverseCdf(pA)
                : 0.5 * sigma * (Normal.InverseCdf(pA) - Normal.InverseCdf(pB));
        }
        else
        {
            r = mode == CpmRadius.Mono ? SafeLipschitzMono(pA, lipschitz, sigma)
                : 0.5 * (SafeLipschitzMono(pA, lipschitz, sigma) - SafeLipschitzMono(pB, lipschitz, sigma));
        }
        if (double.IsNaN(r) || r < 0)
            return SmoothingCertificate.Abstain(pA, pB);
        if (double.IsPositiveInfinity(r))
            r = double.MaxValue;
        return new SmoothingCertificate(cA, r, pA, pB);
    }

    private static double SafeLipschitzMono(double p, double lipschitz, double sigma) =>
        p <= 0 ? double.NegativeInfinity : p >= 1 ? double.PositiveInfinity : LipschitzRadius.Mono(p, lipschitz, sigma);

    /// <summary>
    /// LVM-RS (Delattre et al., ICLR 2024) from the vote counts and the per-class statistics of simplex maps.
    /// Candidates: the votes with Clopper–Pearson bounds, and each map with empirical-Bernstein bounds
    /// (pooled unbiased variance); A = argmax of the lower bounds, p̄B = max over k ≠ A of the upper bounds,
    /// radius R_multi (the code's Lipschitz-margin candidate never beats it and is not computed); R* = the best
    /// candidate, abstain iff R* ≤ 0.
    /// <list type="bullet">
    /// <item><paramref name="sound"/> = false (<see cref="SmoothingMethod.LvmAsPublished"/>): every bound at α/K,
    /// as the reference code; not a valid level-α certificate (2K bounds and a max over the candidates on the
    /// same data).</item>
    /// <item><paramref name="sound"/> = true (<see cref="SmoothingMethod.LvmSound"/>): every bound at α/(2·K·M)
    /// with M = maps + 1 candidates, so the union over all 2·K·M bounds fails with probability ≤ α.</item>
    /// </list>
    /// </summary>
    /// <param name="counts">Votes of the n samples.</param>
    /// <param name="maps">Per-map statistics of the same n samples (may be empty: votes only).</param>
    /// <param name="alpha">Failure probability, in (0, 1).</param>
    /// <param name="sigma">Noise level σ &gt; 0.</param>
    /// <param name="sound">Corrected α (true) or the reference's α/K (false).</param>
    public static SmoothingCertificate Lvm(ReadOnlySpan<long> counts, IReadOnlyList<SimplexMapStatistics> maps, double alpha, double sigma, bool sound)
    {
        long n = Sum(counts);
        CheckAlpha(alpha);
        CheckSigma(sigma);
        if (n < 1)
            throw new ArgumentException("The estimation counts sum to 0.", nameof(counts));
        int k = counts.Length;
        int m = maps.Count + 1;
        double delta = sound ? alpha / (2.0 * k * m) : alpha / k;
        var lower = new double[k];
        var upper = new double[k];
        for (int c = 0; c < k; c++)
        {
            lower[c] = ConfidenceBounds.ClopperPearsonLower(counts[c], n, delta);
            upper[c] = ConfidenceBounds.ClopperPearsonUpper(counts[c], n, delta);
        }
        var best = Candidate(lower, upper, sigma);
        foreach (var map in maps)
        {
            if (map.Count != n || map.Sums.Length != k)
                throw new ArgumentException($"Map statistics {map.Map} hold {map.Count} samples of {map.Sums.Length} classes; the counts hold {n} samples of {k} classes.", nameof(maps));
            for (int c = 0; c < k; c++)
            {
                double mean = map.Sums[c] / n;
                double shift = ConfidenceBounds.EmpiricalBernsteinShift(map.Variance(c), n, delta);
                lower[c] = mean - shift;
                upper[c] = mean + shift;
            }
            var cand = Candidate(lower, upper, sigma);
            if (cand.Radius > best.Radius || (best.Class < 0 && cand.Class >= 0))
                best = cand;
        }
        return best.Radius > 0 ? best : SmoothingCertificate.Abstain(best.LowerBoundTopClass, best.UpperBoundRunnerUp);
    }

    private static SmoothingCertificate Candidate(double[] lower, double[] upper, double sigma)
    {
        int a = 0;
        for (int c = 1; c < lower.Length; c++)
        {
            if (lower[c] > lower[a])
                a = c;
        }
        double pB = 0;
        for (int c = 0; c < upper.Length; c++)
        {
            if (c != a)
                pB = Math.Max(pB, upper[c]);
        }
        double pA = Clamp01(lower[a]);
        pB = Clamp01(pB);
        if (!(pA > 0))
            return SmoothingCertificate.Abstain(pA, pB);
        double r = 0.5 * sigma * (Normal.InverseCdf(pA) - Normal.InverseCdf(pB));
        if (double.IsNaN(r) || r <= 0)
            return new SmoothingCertificate(-1, double.IsNaN(r) ? double.NegativeInfinity : r, pA, pB);
        return new SmoothingCertificate(a, r, pA, pB);
    }

    /// <summary>The largest radius any certificate can reach with n samples: σΦ⁻¹(α^(1/n)) (all votes for one class).</summary>
    /// <param name="sigma">Noise level σ.</param>
    /// <param name="n">Estimation samples.</param>
    /// <param name="alpha">Failure probability.</param>
    public static double SaturationRadius(double sigma, long n, double alpha) =>
        sigma * Normal.InverseCdf(Math.Exp(Math.Log(alpha) / n));

    internal static double Clamp01(double p) => double.IsNaN(p) ? double.NaN : Math.Clamp(p, 0.0, 1.0);

    internal static int ArgMax(ReadOnlySpan<long> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++)
        {
            if (v[i] > v[best])
                best = i;
        }
        return best;
    }

    private static long Sum(ReadOnlySpan<long> v)
    {
        long s = 0;
        foreach (long x in v)
        {
            if (x < 0)
                throw new ArgumentException("Counts must be non-negative.");
            s += x;
        }
        return s;
    }

    private static void CheckCommon(ReadOnlySpan<long> selection, ReadOnlySpan<long> estimation, long n, double alpha, double sigma)
    {
        CheckAlpha(alpha);
        CheckSigma(sigma);
        if (selection.Length != estimation.Length || selection.Length == 0)
            throw new ArgumentException($"The selection counts have {selection.Length} classes and the estimation counts {estimation.Length}; they must match and be non-empty.");
        if (n < 1)
            throw new ArgumentException("The estimation counts sum to 0.");
    }

    private static void CheckAlpha(double alpha)
    {
        if (!(alpha > 0 && alpha < 1))
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "alpha must lie in (0, 1).");
    }

    private static void CheckSigma(double sigma)
    {
        if (!(sigma > 0) || double.IsInfinity(sigma))
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "sigma must be positive and finite.");
    }
}

/// <summary>
/// Sufficient statistics of one simplex map over n noisy samples: per class the sum of h_k and the sum of
/// squared deviations from the mean (merged chunk by chunk with Chan's formula), giving the pooled unbiased
/// variance V_n the empirical-Bernstein theorem assumes.
/// </summary>
/// <param name="Map">The map.</param>
/// <param name="Count">Number of samples n.</param>
/// <param name="Sums">Σ h_k, one per class.</param>
/// <param name="CentredSquares">Σ (h_k − mean_k)², one per class.</param>
public sealed record SimplexMapStatistics(SimplexMap Map, long Count, double[] Sums, double[] CentredSquares)
{
    /// <summary>The unbiased sample variance of class <paramref name="c"/>.</summary>
    /// <param name="c">The class.</param>
    public double Variance(int c) => Count > 1 ? CentredSquares[c] / (Count - 1) : 0.0;

    /// <summary>Statistics from raw samples (n × K, row-major), e.g. for tests and offline use.</summary>
    /// <param name="map">The map the samples come from.</param>
    /// <param name="samples">h(z) for each sample, n rows of K.</param>
    /// <param name="classes">K.</param>
    public static SimplexMapStatistics FromSamples(SimplexMap map, ReadOnlySpan<double> samples, int classes)
    {
        long n = samples.Length / classes;
        var sums = new double[classes];
        var squares = new double[classes];
        for (long i = 0; i < n; i++)
        {
            for (int c = 0; c < classes; c++)
                sums[c] += samples[(int)(i * classes + c)];
        }
        for (int c = 0; c < classes; c++)
        {
            double mean = sums[c] / n;
            for (long i = 0; i < n; i++)
            {
                double d = samples[(int)(i * classes + c)] - mean;
                squares[c] += d * d;
            }
        }
        return new SimplexMapStatistics(map, n, sums, squares);
    }
}
