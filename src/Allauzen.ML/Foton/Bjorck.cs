using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// First-order Björck–Bowie orthonormalisation: the iteration V ← (1 + β)V − βV(VᵀV), β = ½, on the tall
/// orientation V of a weight W (V = Wᵀ when W is wide), converges to the polar factor UVᵀ of W — the
/// nearest matrix with orthonormal rows (wide W) or columns (tall W) — when the singular values of the
/// scaled V lie in (0, √3).
/// </summary>
/// <remarks>
/// Two variants. <see cref="Reference"/> is the rule of the FOTON reference code (the LConvNet routine it
/// imports): σ_max from 10 power-iteration steps, V ← V/σ_max, then a fixed number of iterations.
/// <see cref="ProjectWarm"/> is ours: after a small SGD step the weights are already near-orthonormal, so
/// it skips the power iteration (a Gershgorin bound on VᵀV, which the iteration computes anyway, says when
/// a scale is needed), forms the Gram matrix once, takes adaptive-degree steps on the small n×n side, applies the
/// result once, and stops as soon as the error is provably below the tolerance (an entrywise bound on the exact
/// residual polynomial).
/// </remarks>
internal static class Bjorck
{
    public const double Beta = 0.5;
    public const int PowerIterations = 10;

    /// <summary>The reference rule: power-iteration σ_max scaling from <paramref name="start"/> (or a Gaussian from <paramref name="generator"/>), then <paramref name="iterations"/> iterations. Returns a new tensor.</summary>
    public static Tensor Reference(Tensor w, int iterations, Tensor? start = null, Generator? generator = null)
    {
        using var scope = torch.NewDisposeScope();
        bool wide = w.shape[0] < w.shape[1];
        var v = wide ? w.t() : w;
        long m = v.shape[0];
        var u = (start ?? torch.randn([m], dtype: w.dtype, device: w.device, generator: generator)).to(w.dtype).reshape(m, 1);
        Tensor s = u;
        for (int k = 0; k < PowerIterations; k++)
        {
            s = v.t().mm(u);
            s = s / s.norm();
            u = v.mm(s);
            u = u / u.norm();
        }
        var sigma = u.t().mm(v).mm(s);
        v = v / sigma;
        for (int k = 0; k < iterations; k++)
            v = (1 + Beta) * v - Beta * v.mm(v.t().mm(v));
        return (wide ? v.t() : v).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Projects <paramref name="w"/> in place, starting from its current value. Returns the number of
    /// iterations run (0 when <paramref name="w"/> is already within tolerance); <paramref name="errorBound"/>
    /// receives max|WWᵀ − I| (|WᵀW − I| for tall W) as measured before the last iteration, or the proven bound
    /// on it after the last iteration (NaN when W is not finite).
    /// </summary>
    /// <remarks>
    /// <para>
    /// P = VᵀV is formed once (one product on the big side). Each iteration takes R = I − G, G the Gram matrix of the
    /// current iterate (G = P at first), and multiplies by p_k(R), p_k the degree-k Taylor polynomial of (1 − x)^(−½)
    /// (k = 1: I + ½R, Björck's first-order step; k = 2: I + ½R + ⅜R²). The degree is the smallest for which the new
    /// error is proven within <paramref name="tolerance"/> (each degree costs one n×n product), up to
    /// 3·<paramref name="order"/> (at most 8; <paramref name="order"/> 1 forces the first-order step). The steps
    /// accumulate into Z (a polynomial in P: symmetric, commuting with P, so the next Gram matrix is p·G·p), and V
    /// is multiplied by Z once at the end (one more big-side product). For a wide 784→256 layer a big-side product
    /// costs three n³ ones, so a higher degree, or a further iteration on the small side, beats re-forming VᵀV.
    /// </para>
    /// <para>
    /// Stopping: the residual after the step is exactly q_k(R) = I − (I − R)p_k(R)², a polynomial in R with terms
    /// R^(k+1) … R^(2k+1). Its entries are bounded by the row norms of the powers already formed
    /// (|(R^(a+b))ᵢₗ| ≤ ‖row i of R^a‖·‖row l of R^b‖, R symmetric) and s ≥ ‖R‖₂ (the smaller of the Frobenius norm
    /// and the largest absolute row sum): a bound on max|R'|, the quantity the tolerance is about, that is close to
    /// the actual error, so no second Gram matrix is needed to confirm it. A layer whose measured max|R| is already
    /// within the tolerance is left untouched; one host read per product.
    /// </para>
    /// </remarks>
    public static int ProjectWarm(Tensor w, int maxIterations, double tolerance, out double errorBound, int order = 2)
    {
        using var scope = torch.NewDisposeScope();
        bool wide = w.shape[0] < w.shape[1];
        // Everything runs on the small n×n side: P = WWᵀ (wide) or WᵀW (tall) is formed once; the iteration keeps
        // Z (a polynomial in P, so symmetric and commuting with P) and G = ZPZ, the Gram matrix of the projected
        // weights W·Z (tall) or Z·W (wide), and W is multiplied by Z once at the end. A second iteration costs three
        // n×n products instead of a second Gram matrix and application on the big side (for the wide 784→256 first
        // layer each of those is three n³ products).
        var g = wide ? w.mm(w.t()) : w.t().mm(w);
        Tensor? z = null;
        int iterations = 0;
        errorBound = double.PositiveInfinity;
        bool checkedScale = false;
        // Scalars held in locals for the whole loop: an implicit temporary may be finalised during the native call.
        using Scalar one = 1.0.ToScalar();
        while (iterations < maxIterations)
        {
            var r = g.neg();
            r.diagonal().add_(one); // R = I − G
            // One host read: max|R|, the largest absolute row sum, ‖R‖_F and the largest row norm of R.
            var sv = Norms(r);
            double maxAbs = sv[0], rowNorm = sv[3], spectral = Math.Min(sv[1], sv[2]);
            if (!double.IsFinite(sv[1]) || !double.IsFinite(sv[2]))
            {
                errorBound = double.NaN;
                return iterations;
            }
            if (maxAbs <= tolerance)
            {
                errorBound = maxAbs;
                break;
            }
            if (!checkedScale)
            {
                checkedScale = true;
                // Every σ² = 1 − (eigenvalue of R) is at most 1 + ‖R‖∞ (Gershgorin). Order 1 converges for σ² < 3,
                // order 2 for σ² < 2.3; scale only when the bound leaves no margin.
                double gershgorin = 1 + sv[1];
                if (gershgorin > (order == 1 ? 2.5 : 2.0))
                {
                    using Scalar inverse = (1 / gershgorin).ToScalar(), root = Math.Sqrt(1 / gershgorin).ToScalar();
                    g = g.mul(inverse);
                    z = torch.eye(g.shape[0], dtype: g.dtype, device: g.device).mul_(root);
                    continue;
                }
            }
            // The degree-k step multiplies by p_k(R), p_k the degree-k Taylor polynomial of (1 − x)^(−½), and leaves the
            // residual q_k(R) = I − (I − R)p_k(R)², a polynomial with terms R^(k+1) … R^(2k+1). Entrywise, with ρ_j the
            // largest row norm of R^j (R^j symmetric): |(R^(a+b))ᵢₗ| = |⟨row i of R^a, row l of R^b⟩| ≤ ρ_a ρ_b, and
            // higher powers add factors ‖R‖₂ ≤ s. The degree grows (one n×n product each) until that bound is within
            // tolerance.
            var powers = new List<Tensor> { r };
            var rho = new List<double> { 0, rowNorm }; // rho[j] for R^j
            int degree = 1;
            errorBound = ResidualBound(1, rho, spectral);
            // High degrees only where the series converges fast (s < ½); s tightens with each power: ‖R‖₂ ≤ ‖R^j‖_F^(1/j).
            int Cap() => order == 1 ? 1 : Math.Min(MaxDegree, spectral < 0.5 ? 3 * Math.Max(order, 2) : order);
            while (errorBound > tolerance && degree < Cap())
            {
                var power = powers[^1].mm(r);
                powers.Add(power);
                degree++;
                double[] norms;
                using (var rowSquares = power.square().sum(1))
                using (var both = torch.stack([rowSquares.max(), rowSquares.sum()]))
                    norms = both.to(ScalarType.Float64).cpu().data<double>().ToArray();
                rho.Add(Math.Sqrt(norms[0]));
                spectral = Math.Min(spectral, Math.Pow(norms[1], 0.5 / degree));
                errorBound = ResidualBound(degree, rho, spectral);
            }
            // q = p_k(R) = I + Σ_{j=1..k} c_j R^j, accumulated into the highest power.
            Tensor q;
            using (Scalar top = TaylorCoefficients[degree].ToScalar())
                q = powers[^1].mul(top);
            for (int j = degree - 1; j >= 1; j--)
            {
                using Scalar c = TaylorCoefficients[j].ToScalar();
                q.add_(powers[j - 1], alpha: c);
            }
            q.diagonal().add_(one);
            z = z is null ? q : z.mm(q);
            iterations++;
            if (errorBound <= tolerance || iterations >= maxIterations)
                break;
            g = q.mm(g).mm(q); // the new Gram matrix, for the next iteration only
        }
        if (z is not null)
        {
            using var projected = wide ? z.mm(w) : w.mm(z);
            w.copy_(projected);
        }
        return iterations;
    }

    private const int MaxDegree = 8;

    /// <summary>Coefficients c_j of (1 − x)^(−½) = Σ c_j x^j: c_0 = 1, c_j = c_{j−1}(2j − 1)/(2j).</summary>
    private static readonly double[] TaylorCoefficients = BuildTaylor(MaxDegree);

    /// <summary>Coefficients of q_k(x) = 1 − (1 − x)p_k(x)² for k = 0..MaxDegree (index [k][j]).</summary>
    private static readonly double[][] ResidualCoefficients = [.. Enumerable.Range(0, MaxDegree + 1).Select(Residual)];

    private static double[] BuildTaylor(int n)
    {
        var c = new double[n + 1];
        c[0] = 1;
        for (int j = 1; j <= n; j++)
            c[j] = c[j - 1] * (2 * j - 1) / (2 * j);
        return c;
    }

    private static double[] Residual(int k)
    {
        var p = TaylorCoefficients.Take(k + 1).ToArray();
        var p2 = new double[2 * k + 1];
        for (int i = 0; i <= k; i++)
            for (int j = 0; j <= k; j++)
                p2[i + j] += p[i] * p[j];
        var q = new double[2 * k + 2];
        for (int j = 0; j < p2.Length; j++)
        {
            q[j] -= p2[j];
            q[j + 1] += p2[j];
        }
        q[0] += 1; // q = 1 − (1 − x)p²; its coefficients below x^(k+1) vanish up to rounding
        for (int j = 0; j <= k; j++)
            q[j] = 0;
        return q;
    }

    /// <summary>
    /// Bound on max|q_k(R)ᵢₗ| from ρ_j (largest row norms of R^j, j ≤ k, in <paramref name="rho"/>) and s ≥ ‖R‖₂:
    /// each R^j, j = a + b + e with a, b ≤ k, contributes |coefficient|·ρ_a·ρ_b·s^e.
    /// </summary>
    private static double ResidualBound(int k, List<double> rho, double s)
    {
        var q = ResidualCoefficients[k];
        double bound = 0;
        for (int j = k + 1; j < q.Length; j++)
        {
            int a = Math.Min(k, j - 1), b = Math.Min(k, j - a), e = j - a - b;
            bound += Math.Abs(q[j]) * rho[a] * rho[b] * Math.Pow(s, e);
        }
        return bound;
    }

    /// <summary>max|R|, the largest absolute row sum, ‖R‖_F and the largest row L2 norm of R, in float64 on the host (one read).</summary>
    private static double[] Norms(Tensor r)
    {
        using var scope = torch.NewDisposeScope();
        var ra = r.abs();
        var squares = r.square().sum(1);
        return torch.stack([ra.max(), ra.sum(1).max(), squares.sum().sqrt(), squares.max().sqrt()]).to(ScalarType.Float64).cpu().data<double>().ToArray();
    }

    /// <summary>max |WWᵀ − I| for wide or square W, max |WᵀW − I| for tall W.</summary>
    public static double OrthogonalityError(Tensor w)
    {
        using var scope = torch.NewDisposeScope();
        var v = w.shape[0] < w.shape[1] ? w.t() : w;
        long n = v.shape[1];
        return (v.t().mm(v) - torch.eye(n, n, dtype: w.dtype, device: w.device)).abs().max().ToDouble();
    }
}
