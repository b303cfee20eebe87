using System.Runtime.CompilerServices;
using Allauzen.ML.Torch;
using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
internal static partial class Bjorck
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
        using (var kept = new KeptScalars())
        {
            for (int k = 0; k < iterations; k++)
                v = kept.Of(1 + Beta) * v - kept.Of(Beta) * v.mm(v.t().mm(v));
        }
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
    /// error is proven within <paramref name="tolerance"/> (each degree costs one n×n product), up to a degree planned
    /// from an estimate of ‖R‖₂ to minimise the products in all, at most 3·<paramref name="order"/> (at most 8;
    /// <paramref name="order"/> 1 forces the first-order step). After a large step the spectrum of P is first centred
    /// on 1 (a scale, from its extreme eigenvalues estimated by a few Lanczos steps): the polar factor does not change
    /// and ‖R‖₂ shrinks. The steps
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
        // Everything runs on the small n×n side: P = WWᵀ (wide) or WᵀW (tall) is formed once; the iteration keeps
        // Z (a polynomial in P, so symmetric and commuting with P) and G = ZPZ, the Gram matrix of the projected
        // weights W·Z (tall) or Z·W (wide), and W is multiplied by Z once at the end. A second iteration costs three
        // n×n products instead of a second Gram matrix and application on the big side (for the wide 784→256 first
        // layer each of those is three n³ products). Host float32 weights keep the small side in host memory with
        // MKL's products (HostSide); anything else in libtorch tensors (TorchSide). Both take the same decisions.
        using ISmallSide side = (ISmallSide?)HostSide.TryCreate(w) ?? new TorchSide(w);
        double zScale = 1; // Z = zScale·I until the first step
        int iterations = 0;
        errorBound = double.PositiveInfinity;
        bool checkedScale = false;
        double estimate = double.PositiveInfinity; // estimated ‖R‖₂, for choosing degrees only (never for the bound)
        while (iterations < maxIterations)
        {
            // R = I − G, and one read: max|R|, the largest absolute row sum, ‖R‖_F and the largest row norm of R.
            var sv = side.Residual();
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
                // P's spectrum [λ_min, λ_max] is what the iteration maps to 1, and the polar factor does not change when
                // W is scaled: scaling P by c = 2/(λ_min + λ_max) centres the spectrum, so that ‖R‖₂ drops from
                // max(1 − λ_min, λ_max − 1) to (λ_max − λ_min)/(λ_max + λ_min). After a large step (depth 2 at
                // learning rate 0.5: λ_max up to 1.9, ‖R‖₂ up to 0.9) that halves the radius and saves products. The bound
                // that triggers it (min of ‖R‖∞ and ‖R‖_F) overstates ‖R‖₂ several times after small steps, hence 0.5.
                // The extremes come from a few Lanczos steps on the host; they only choose c and the degrees: the
                // stopping rule below is proven whatever they are.
                if (order != 1 && spectral > CentringThreshold)
                {
                    var (lo, hi) = side.ExtremeEigenvalues();
                    double radius = (hi - lo) / (hi + lo);
                    if (lo > 0 && radius < 0.8)
                    {
                        // Centred, σ² ≤ 1.8 up to the estimate's error: no divergence, so no Gershgorin scale.
                        double c = 2 / (lo + hi);
                        side.ScaleGram(c);
                        zScale = Math.Sqrt(c);
                        // Lanczos Ritz values lie inside the spectrum, so the true radius can be a little larger.
                        estimate = 1.1 * radius + 0.01;
                        continue;
                    }
                }
                // Every σ² = 1 − (eigenvalue of R) is at most 1 + ‖R‖∞ (Gershgorin). Order 1 converges for σ² < 3,
                // order 2 for σ² < 2.3; scale only when the bound leaves no margin.
                double gershgorin = 1 + sv[1];
                if (gershgorin > (order == 1 ? 2.5 : 2.0))
                {
                    side.ScaleGram(1 / gershgorin);
                    zScale = Math.Sqrt(1 / gershgorin);
                    continue;
                }
            }
            estimate = Math.Min(estimate, spectral);
            // The degree-k step multiplies by p_k(R), p_k the degree-k Taylor polynomial of (1 − x)^(−½), and leaves the
            // residual q_k(R) = I − (I − R)p_k(R)², a polynomial with terms R^(k+1) … R^(2k+1). Entrywise, with ρ_j the
            // largest row norm of R^j (R^j symmetric): |(R^(a+b))ᵢₗ| = |⟨row i of R^a, row l of R^b⟩| ≤ ρ_a ρ_b, and
            // higher powers add factors ‖R‖₂ ≤ s. The degree grows (one n×n product each) until that bound is within
            // tolerance, or up to the degree that the estimated ‖R‖₂ says is cheapest overall (PlanDegree).
            var rho = new List<double> { 0, rowNorm }; // rho[j] for R^j
            int degree = 1;
            errorBound = ResidualBound(1, rho, spectral);
            // Never below the former rule (up to 3·order when the bound is under ½): the bound-driven loop stops early
            // anyway, and the plan's ‖R‖₂ can be a loose bound that would cap a step which the entrywise bound finishes.
            int high = Math.Min(MaxDegree, 3 * Math.Max(order, 2));
            int cap = order == 1 ? 1 : Math.Max(PlanDegree(estimate, tolerance, high), spectral < 0.5 ? high : order);
            while (errorBound > tolerance && degree < cap)
            {
                var norms = side.NextPower();
                degree++;
                rho.Add(norms[3]);
                spectral = Math.Min(spectral, Math.Pow(norms[2], 1.0 / degree));
                errorBound = ResidualBound(degree, rho, spectral);
            }
            double spectrum = Math.Min(estimate, spectral);
            estimate = ResidualNorm(degree, spectrum);
            // q = p_k(R) = Σ_{j=0..k} c_j R^j; Z = zScale·q at the first step, Z·q after. A step that will not be the last
            // takes the degree-k polynomial fitted to the whole estimated spectrum instead of the Taylor one (fitted at
            // R = 0): no bound is taken from it, and the next step measures the Gram matrix it leaves (FittedStep).
            ReadOnlySpan<double> coefficients = TaylorCoefficients.AsSpan(0, degree + 1);
            if (order != 1 && errorBound > tolerance && iterations + 1 < maxIterations
                && FittedStep(degree, spectrum) is { } fitted && fitted.Residual < estimate)
            {
                coefficients = fitted.Coefficients;
                estimate = fitted.Residual;
            }
            side.Combine(coefficients);
            side.Accumulate(zScale);
            iterations++;
            if (errorBound <= tolerance || iterations >= maxIterations)
                break;
            side.NextGram(); // q·G·q, the new Gram matrix, for the next iteration only
        }
        side.Apply(zScale);
        return iterations;
    }

    /// <summary>Above this bound on ‖I − P‖₂ the projection estimates P's extreme eigenvalues and centres the spectrum.</summary>
    private const double CentringThreshold = 0.5;

    /// <summary>Lanczos steps for the extreme eigenvalues of P.</summary>
    private const int LanczosSteps = 12;

    /// <summary>max |q_k(x)| over |x| ≤ s: the spectral norm of the residual after a degree-k step from ‖R‖₂ = s.</summary>
    internal static double ResidualNorm(int k, double s)
    {
        double Eval(double x)
        {
            var q = ResidualCoefficients[k];
            double v = 0;
            for (int j = q.Length - 1; j >= 0; j--)
                v = v * x + q[j];
            return Math.Abs(v);
        }
        return Math.Max(Eval(s), Eval(-s));
    }

    /// <summary>
    /// The degree of the next step, from the estimated ‖R‖₂ = <paramref name="s"/>: the lowest that finishes within
    /// <paramref name="tolerance"/> in this iteration, else the one with the fewest predicted n×n products in all (k − 1
    /// powers, two products for the next Gram matrix, one to accumulate Z, then the same for the next iterations).
    /// </summary>
    private static int PlanDegree(double s, double tolerance, int cap)
    {
        if (!(s < 1))
            return Math.Min(2, cap);
        for (int k = 1; k <= cap; k++)
        {
            if (ResidualNorm(k, s) <= tolerance)
                return k;
        }
        int best = cap;
        double bestCost = double.PositiveInfinity;
        for (int k = 1; k <= cap; k++)
        {
            double cost = k - 1 + 3 + Remaining(ResidualNorm(k, s), tolerance, cap, 3);
            if (cost < bestCost)
                (best, bestCost) = (k, cost);
        }
        return best;
    }

    /// <summary>Predicted products to bring ‖R‖₂ from <paramref name="s"/> within <paramref name="tolerance"/>.</summary>
    private static double Remaining(double s, double tolerance, int cap, int depth)
    {
        if (s <= tolerance)
            return 0;
        double best = double.PositiveInfinity;
        for (int k = 1; k <= cap; k++)
        {
            double e = ResidualNorm(k, s);
            double cost = e <= tolerance ? k : depth > 0 ? k - 1 + 3 + Remaining(e, tolerance, cap, depth - 1) : double.PositiveInfinity;
            best = Math.Min(best, cost);
        }
        return best;
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

    /// <summary>max |WWᵀ − I| for wide or square W, max |WᵀW − I| for tall W.</summary>
    public static double OrthogonalityError(Tensor w)
    {
        using var scope = torch.NewDisposeScope();
        var v = w.shape[0] < w.shape[1] ? w.t() : w;
        long n = v.shape[1];
        return (v.t().mm(v) - torch.eye(n, n, dtype: w.dtype, device: w.device)).abs().max().ToDouble();
    }
}
