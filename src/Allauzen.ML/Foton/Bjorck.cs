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
    /// <paramref name="order"/> 1 is the first-order step V ← V(I + ½R), R = I − VᵀV (quadratic convergence:
    /// D' = −¾D² + ¼D³); order 2 adds the next term of the (I − R)^(−½) series, V ← V(I + ½R + ⅜R²), for cubic
    /// convergence (D' = ⅝D³ − (15/64)D⁴ + (9/64)D⁵) at the price of one n×n product: after an SGD step it needs
    /// 2 iterations where order 1 needs 4.
    /// </para>
    /// <para>
    /// Stopping: the iteration maps every eigenvalue 1 − d of VᵀV to 1 − D'(d), so the spectral norm s of R
    /// bounds the next error by D'(s), and max|R'| ≤ ‖R'‖₂. s is bounded by the largest absolute row sum of R
    /// (O(n²) on the product the iteration needs anyway). A layer
    /// whose measured max|R| is already within <paramref name="tolerance"/> is left untouched (no update at all);
    /// one host read per iteration.
    /// </para>
    /// </remarks>
    public static int ProjectWarm(Tensor w, int maxIterations, double tolerance, out double errorBound, int order = 2)
    {
        using var scope = torch.NewDisposeScope();
        bool wide = w.shape[0] < w.shape[1];
        // Work on the small n×n Gram matrix: wide W → WWᵀ and W ← (I + ½R …)W; tall W → WᵀW and W ← W(I + ½R …).
        long n = wide ? w.shape[0] : w.shape[1];
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
            using var ra = r.abs();
            // One host read: max|R| and the largest absolute row sum of R (≥ ‖R‖₂, R symmetric).
            var sv = torch.stack([ra.max(), ra.sum(1).max()]).to(ScalarType.Float64).cpu().data<double>();
            double maxAbs = sv[0], spectral = sv[1];
            if (!double.IsFinite(spectral))
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
                double gershgorin = 1 + spectral;
                if (gershgorin > (order == 1 ? 2.5 : 2.0))
                {
                    v = v / Math.Sqrt(gershgorin);
                    continue;
                }
            }
            // V ← V + V·(½R [+ ⅜R²]) (tall) or W ← W + (½R [+ ⅜R²])·W (wide).
            var m = order == 1 ? r.mul_(half) : r.mm(r).mul_(threeEighths).add_(r, alpha: half);
            var next = (wide ? m.mm(v) : v.mm(m)).add_(v, alpha: one);
            if (!ReferenceEquals(v, w))
                v.Dispose();
            v = next;
            double s = spectral;
            errorBound = order == 1 ? 0.75 * s * s + 0.25 * s * s * s : s * s * s * (0.625 + s * (0.234375 + 0.140625 * s));
            iterations++;
            if (errorBound <= tolerance)
                break;
        }
        if (!ReferenceEquals(v, w))
            w.copy_(v);
        return iterations;
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
