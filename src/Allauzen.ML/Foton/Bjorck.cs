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
/// a scale is needed), uses the second-order step (cubic convergence), and stops as soon as the error after
/// the last iteration is provably below the tolerance (the error polynomial bounded with a bound on the spectral norm).
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
    /// Each iteration takes the first-order step V ← V(I + ½R), R = I − VᵀV (quadratic convergence:
    /// D' = −¾D² + ¼D³ for every eigenvalue D of R) when that provably reaches <paramref name="tolerance"/>, and
    /// otherwise, with <paramref name="order"/> 2, the second-order step V ← V(I + ½R + ⅜R²) (cubic convergence:
    /// D' = ⅝D³ − (15/64)D⁴ + (9/64)D⁵) at the price of one more n×n product. After a small SGD step the
    /// first-order step usually suffices: two n×n products (the Gram matrix and the update), against three.
    /// </para>
    /// <para>
    /// Stopping: the iteration maps every eigenvalue d of R to D'(d), so a bound s on the spectral norm of R
    /// bounds the next error by D'(s), and max|R'| ≤ ‖R'‖₂. s is the smaller of the Frobenius norm and the largest
    /// absolute row sum of R (both O(n²) on the product the iteration needs anyway) and, once R² is formed for the
    /// second-order step, ‖R²‖_F^½ (≥ ‖R‖₂ since ‖R‖₂² = ‖R²‖₂), usually several times tighter. A layer whose
    /// measured max|R| is already within <paramref name="tolerance"/> is left untouched; at most two host reads
    /// per iteration.
    /// </para>
    /// </remarks>
    public static int ProjectWarm(Tensor w, int maxIterations, double tolerance, out double errorBound, int order = 2)
    {
        using var scope = torch.NewDisposeScope();
        bool wide = w.shape[0] < w.shape[1];
        // Work on the small n×n Gram matrix: wide W → WWᵀ and W ← (I + ½R …)W; tall W → WᵀW and W ← W(I + ½R …).
        var v = w;
        int iterations = 0;
        errorBound = double.PositiveInfinity;
        bool checkedScale = false;
        // Scalars held in locals for the whole loop: an implicit temporary may be finalised during the native call.
        using Scalar one = 1.0.ToScalar(), half = 0.5.ToScalar(), threeEighths = 0.375.ToScalar();
        while (iterations < maxIterations)
        {
            var r = (wide ? v.mm(v.t()) : v.t().mm(v)).neg_();
            r.diagonal().add_(one); // R = I − P, in place
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
                // order 2 for σ² < 2.3; scale only when the bound leaves no margin (then recompute the product).
                double gershgorin = 1 + sv[1];
                if (gershgorin > (order == 1 ? 2.5 : 2.0))
                {
                    v = v / Math.Sqrt(gershgorin);
                    continue;
                }
            }
            // First order: R' = ¾R² + ¼R³, and |(R²)ᵢⱼ| = |⟨Rᵢ, Rⱼ⟩| ≤ b², |(R³)ᵢⱼ| ≤ b²‖R‖₂ (b the largest row norm).
            double firstOrder = rowNorm * rowNorm * (0.75 + 0.25 * spectral);
            Tensor m;
            if (order == 1 || firstOrder <= tolerance)
            {
                m = r.mul_(half);
                errorBound = firstOrder;
            }
            else
            {
                // Second order: R' = ⅝R³ + (15/64)R⁴ + (9/64)R⁵; with a the largest row norm of R²,
                // |(R³)ᵢⱼ| ≤ a·b, |(R⁴)ᵢⱼ| ≤ a², |(R⁵)ᵢⱼ| ≤ a·‖R‖₂²·b.
                var r2 = r.mm(r);
                using var rowSquares = r2.square().sum(1).max();
                double a2 = Math.Sqrt(rowSquares.to(ScalarType.Float64).cpu().item<double>());
                m = r2.mul_(threeEighths).add_(r, alpha: half);
                errorBound = 0.625 * a2 * rowNorm + 0.234375 * a2 * a2 + 0.140625 * a2 * rowNorm * spectral * spectral;
            }
            // V ← V + V·M (tall) or W ← W + M·W (wide).
            var next = (wide ? m.mm(v) : v.mm(m)).add_(v, alpha: one);
            if (!ReferenceEquals(v, w))
                v.Dispose();
            v = next;
            iterations++;
            if (errorBound <= tolerance)
                break;
        }
        if (!ReferenceEquals(v, w))
            w.copy_(v);
        return iterations;
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
