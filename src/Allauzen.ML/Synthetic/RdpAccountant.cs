namespace Allauzen.ML.Synthetic;

/// <summary>
/// A Rényi-differential-privacy (RDP) accountant for compositions of Gaussian mechanisms (Mironov 2017): it adds up,
/// order by order, the RDP ε(α) of every composed release and converts the total to (ε, δ) with
/// ε = min_α ε(α) + ln(1/δ)/(α − 1).
/// </summary>
/// <remarks>
/// Three kinds of release, each with noise multiplier z = σ/Δ (noise standard deviation over ℓ₂ sensitivity):
/// <list type="bullet">
/// <item><see cref="AddGaussian"/>: the plain Gaussian mechanism, ε(α) = α/(2z²) exactly, at every order.</item>
/// <item><see cref="AddSampledGaussian"/>: the sampled Gaussian mechanism of Mironov, Talwar and Zhang (2019): a
/// sum-type query over a Poisson sample (rate q) plus N(0, σ²I), adjacency by adding or removing one row. Integer
/// orders only, with ε(α) = ln(Σₖ C(α,k)(1−q)^{α−k} q^k e^{(k²−k)/(2z²)})/(α−1); other orders count as +∞. At
/// q = 1 it equals <see cref="AddGaussian"/>.</item>
/// <item><see cref="AddSampledRowRelease"/>: each row of a Poisson sample (rate q) released on its own with
/// N(0, σ²I) noise (the per-row projections of DPSWflow-r), adjacency by replacing one row, the sampled rows'
/// identities treated as revealed. With probability 1 − q the replaced row is absent and the outputs coincide, so
/// ε(α) = ln(1 − q + q·e^{(α−1)α/(2z²)})/(α−1) exactly (at any order); at q = 1 it equals <see cref="AddGaussian"/>.
/// Its amplification is linear in q, not quadratic as for a sum query: a sampled row's value is released whole.</item>
/// </list>
/// The conversion is the standard one (Mironov 2017, Proposition 3). Instances are not thread-safe.
/// </remarks>
public sealed class RdpAccountant
{
    private readonly double[] _orders;
    private readonly double[] _rdp;

    /// <summary>
    /// The default orders: 1.1, 1.2, …, 10.9 (every tenth), the integers 11 to 64, and 80, 96, 128, 192, 256, 512.
    /// </summary>
    public static IReadOnlyList<double> DefaultOrders { get; } = BuildDefaultOrders();

    /// <summary>An accountant with nothing composed yet (ε(α) = 0 at every order).</summary>
    /// <param name="orders">The Rényi orders α &gt; 1 to track; null for <see cref="DefaultOrders"/>.</param>
    /// <exception cref="ArgumentException">An order is not a finite number above 1, or the list is empty.</exception>
    public RdpAccountant(IEnumerable<double>? orders = null)
    {
        _orders = (orders ?? DefaultOrders).ToArray();
        if (_orders.Length == 0)
            throw new ArgumentException("orders must hold at least one Rényi order.", nameof(orders));
        foreach (double a in _orders)
        {
            if (!(a > 1 && double.IsFinite(a)))
                throw new ArgumentException($"Every Rényi order must be a finite number above 1 (got {a}).", nameof(orders));
        }
        _rdp = new double[_orders.Length];
    }

    /// <summary>The tracked Rényi orders α.</summary>
    public IReadOnlyList<double> Orders => _orders;

    /// <summary>The accumulated RDP ε(α) at <see cref="Orders"/>[i].</summary>
    /// <param name="index">An index into <see cref="Orders"/>.</param>
    public double RenyiEpsilon(int index) => _rdp[index];

    /// <summary>Composes <paramref name="count"/> plain Gaussian mechanisms with noise multiplier z: ε(α) += count·α/(2z²).</summary>
    /// <param name="noiseMultiplier">z = σ/Δ &gt; 0 (+∞ adds nothing).</param>
    /// <param name="count">Number of releases (≥ 0).</param>
    /// <returns>This accountant.</returns>
    public RdpAccountant AddGaussian(double noiseMultiplier, int count = 1) => Add(noiseMultiplier, 1, count, GaussianRdp);

    /// <summary>Composes <paramref name="count"/> sampled Gaussian mechanisms (Poisson rate q, sum query, add/remove
    /// adjacency; Mironov, Talwar and Zhang 2019, integer orders).</summary>
    /// <param name="noiseMultiplier">z = σ/Δ &gt; 0 (+∞ adds nothing).</param>
    /// <param name="samplingRate">q in (0, 1].</param>
    /// <param name="count">Number of releases (≥ 0).</param>
    /// <returns>This accountant.</returns>
    public RdpAccountant AddSampledGaussian(double noiseMultiplier, double samplingRate, int count = 1) =>
        Add(noiseMultiplier, samplingRate, count, SampledGaussianRdp);

    /// <summary>Composes <paramref name="count"/> per-row Gaussian releases of a Poisson sample (rate q, replace-one
    /// adjacency): ε(α) += count·ln(1 − q + q·e^{(α−1)α/(2z²)})/(α−1).</summary>
    /// <param name="noiseMultiplier">z = σ/Δ &gt; 0 (+∞ adds nothing).</param>
    /// <param name="samplingRate">q in (0, 1].</param>
    /// <param name="count">Number of releases (≥ 0).</param>
    /// <returns>This accountant.</returns>
    public RdpAccountant AddSampledRowRelease(double noiseMultiplier, double samplingRate, int count = 1) =>
        Add(noiseMultiplier, samplingRate, count, SampledRowReleaseRdp);

    /// <summary>The smallest ε over the orders such that the composition is (ε, δ)-DP: min_α ε(α) + ln(1/δ)/(α−1).</summary>
    /// <param name="delta">δ in (0, 1).</param>
    /// <returns>ε ≥ 0, or +∞ when every order is +∞.</returns>
    public double Epsilon(double delta) => EpsilonAndOrder(delta).Epsilon;

    /// <summary>As <see cref="Epsilon"/>, with the order α that attains the minimum.</summary>
    /// <param name="delta">δ in (0, 1).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delta"/> is outside (0, 1).</exception>
    public (double Epsilon, double Order) EpsilonAndOrder(double delta)
    {
        if (!(delta > 0 && delta < 1))
            throw new ArgumentOutOfRangeException(nameof(delta), delta, $"delta must be in (0, 1) (got {delta}).");
        double best = double.PositiveInfinity, order = double.NaN;
        double log = Math.Log(1 / delta);
        for (int i = 0; i < _orders.Length; i++)
        {
            double e = _rdp[i] + log / (_orders[i] - 1);
            if (e < best)
            {
                best = e;
                order = _orders[i];
            }
        }
        return (Math.Max(0, best), order);
    }

    /// <summary>
    /// The smallest noise multiplier z (to a relative 1e-6) for which <paramref name="compose"/>, applied to a fresh
    /// accountant with <paramref name="orders"/>, gives ε(δ) ≤ <paramref name="epsilon"/>; ε is decreasing in z, and the
    /// returned z always satisfies the target (the bisection keeps the feasible end).
    /// </summary>
    /// <param name="epsilon">Target ε &gt; 0; +∞ returns 0 (no noise).</param>
    /// <param name="delta">δ in (0, 1).</param>
    /// <param name="compose">Adds the releases for a given z, e.g. <c>(a, z) =&gt; a.AddSampledRowRelease(z, q, steps)</c>.</param>
    /// <param name="orders">The orders; null for <see cref="DefaultOrders"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">The target is not positive, or not reached below z = 1e8.</exception>
    public static double CalibrateNoiseMultiplier(double epsilon, double delta, Action<RdpAccountant, double> compose,
        IEnumerable<double>? orders = null)
    {
        ArgumentNullException.ThrowIfNull(compose);
        var orderList = (orders ?? DefaultOrders).ToArray();
        return CalibrateNoiseMultiplier(epsilon, z =>
        {
            var a = new RdpAccountant(orderList);
            compose(a, z);
            return a.Epsilon(delta);
        });
    }

    /// <summary>
    /// The smallest noise multiplier z (to a relative 1e-6) with <paramref name="epsilonAt"/>(z) ≤ <paramref name="epsilon"/>,
    /// for any ε(z) that decreases in z (bisection in z that keeps the feasible end).
    /// </summary>
    /// <param name="epsilon">Target ε &gt; 0; +∞ returns 0 (no noise).</param>
    /// <param name="epsilonAt">The ε a noise multiplier gives.</param>
    /// <exception cref="ArgumentOutOfRangeException">The target is not positive, or not reached below z = 1e8.</exception>
    public static double CalibrateNoiseMultiplier(double epsilon, Func<double, double> epsilonAt)
    {
        ArgumentNullException.ThrowIfNull(epsilonAt);
        if (!(epsilon > 0))
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, $"epsilon must be positive or +∞ (got {epsilon}).");
        if (double.IsPositiveInfinity(epsilon))
            return 0;
        double hi = 1;
        while (epsilonAt(hi) > epsilon)
        {
            hi *= 2;
            if (hi > 1e8)
                throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, $"epsilon {epsilon} is not reached with a noise multiplier below 1e8.");
        }
        double lo = hi / 2;
        while (lo > 1e-6 && epsilonAt(lo) <= epsilon)
        {
            hi = lo;
            lo /= 2;
        }
        while (hi - lo > 1e-6 * hi)
        {
            double mid = 0.5 * (lo + hi);
            if (epsilonAt(mid) <= epsilon)
                hi = mid;
            else
                lo = mid;
        }
        return hi;
    }

    /// <summary>RDP of one plain Gaussian mechanism: α/(2z²).</summary>
    /// <param name="order">α &gt; 1.</param>
    /// <param name="noiseMultiplier">z &gt; 0.</param>
    /// <param name="samplingRate">Ignored (1).</param>
    public static double GaussianRdp(double order, double noiseMultiplier, double samplingRate = 1) =>
        order / (2 * noiseMultiplier * noiseMultiplier);

    /// <summary>
    /// RDP of one sampled Gaussian mechanism (Mironov, Talwar and Zhang 2019, integer α):
    /// ln(Σₖ₌₀^α C(α,k)(1−q)^{α−k} q^k e^{(k²−k)/(2z²)})/(α−1), summed in log space; +∞ at a non-integer order when q &lt; 1.
    /// </summary>
    /// <param name="order">α &gt; 1.</param>
    /// <param name="noiseMultiplier">z &gt; 0.</param>
    /// <param name="samplingRate">q in (0, 1].</param>
    public static double SampledGaussianRdp(double order, double noiseMultiplier, double samplingRate)
    {
        if (samplingRate >= 1)
            return GaussianRdp(order, noiseMultiplier);
        if (order != Math.Floor(order))
            return double.PositiveInfinity;
        int alpha = (int)order;
        double logQ = Math.Log(samplingRate), log1mQ = Log1P(-samplingRate), twoZ2 = 2 * noiseMultiplier * noiseMultiplier;
        double max = double.NegativeInfinity;
        var terms = new double[alpha + 1];
        double logBinomial = 0; // ln C(α, 0)
        for (int k = 0; k <= alpha; k++)
        {
            if (k > 0)
                logBinomial += Math.Log(alpha - k + 1) - Math.Log(k);
            terms[k] = logBinomial + (alpha - k) * log1mQ + k * logQ + ((double)k * k - k) / twoZ2;
            max = Math.Max(max, terms[k]);
        }
        double sum = 0;
        foreach (double t in terms)
            sum += Math.Exp(t - max);
        return (max + Math.Log(sum)) / (alpha - 1);
    }

    /// <summary>RDP of one per-row release of a Poisson sample: ln(1 − q + q·e^{(α−1)α/(2z²)})/(α−1) (exact).</summary>
    /// <param name="order">α &gt; 1.</param>
    /// <param name="noiseMultiplier">z &gt; 0.</param>
    /// <param name="samplingRate">q in (0, 1].</param>
    public static double SampledRowReleaseRdp(double order, double noiseMultiplier, double samplingRate)
    {
        if (samplingRate >= 1)
            return GaussianRdp(order, noiseMultiplier);
        double x = (order - 1) * GaussianRdp(order, noiseMultiplier);
        // ln(1 − q + q·eˣ) without overflow: x + ln(q + (1 − q)e^{−x}).
        double log = x > 1 ? x + Math.Log(samplingRate + (1 - samplingRate) * Math.Exp(-x)) : Log1P(samplingRate * ExpM1(x));
        return log / (order - 1);
    }

    private RdpAccountant Add(double z, double q, int count, Func<double, double, double, double> rdp)
    {
        if (!(z > 0))
            throw new ArgumentOutOfRangeException(nameof(z), z, $"The noise multiplier must be positive or +∞ (got {z}).");
        if (!(q > 0 && q <= 1))
            throw new ArgumentOutOfRangeException(nameof(q), q, $"The sampling rate must be in (0, 1] (got {q}).");
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (double.IsPositiveInfinity(z) || count == 0)
            return this;
        for (int i = 0; i < _orders.Length; i++)
            _rdp[i] += count * rdp(_orders[i], z, q);
        return this;
    }

    /// <summary>ln(1 + x), accurate for small x (Kahan's correction; .NET's double.LogP1 is ln(x + 1) as written).</summary>
    private static double Log1P(double x)
    {
        double u = 1 + x;
        return u == 1 ? x : Math.Log(u) * x / (u - 1);
    }

    /// <summary>eˣ − 1, accurate for small x (Kahan's correction).</summary>
    private static double ExpM1(double x)
    {
        double u = Math.Exp(x);
        if (u == 1)
            return x;
        double um1 = u - 1;
        return um1 == -1 ? -1 : um1 * x / Math.Log(u);
    }

    private static double[] BuildDefaultOrders()
    {
        var orders = new List<double>();
        for (int x = 1; x < 100; x++)
            orders.Add(1 + x / 10.0);
        for (int a = 11; a <= 64; a++)
            orders.Add(a);
        orders.AddRange([80, 96, 128, 192, 256, 512]);
        return orders.ToArray();
    }
}
