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
/// the last iteration is provably below the tolerance (the error polynomial bounded with the Frobenius norm).
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
    /// receives the bound on max|WWᵀ − I| (or |WᵀW − I|) after the last iteration (NaN when W is not finite).
    /// </summary>
    /// <remarks>
    /// <paramref name="order"/> 1 is the first-order step V ← V(I + ½R), R = I − VᵀV (quadratic convergence:
    /// D' = −¾D² + ¼D³); order 2 adds the next term of the (I − R)^(−½) series, V ← V(I + ½R + ⅜R²), for cubic
    /// convergence (D' = ⅝D³ − (15/64)D⁴ + (9/64)D⁵) at the price of one n×n product: after an SGD step it needs
    /// 2 iterations where order 1 needs 4.
    /// </remarks>
    public static int ProjectWarm(Tensor w, int maxIterations, double tolerance, out double errorBound, int order = 2)
    {
        using var scope = torch.NewDisposeScope();
        bool wide = w.shape[0] < w.shape[1];
        var v = wide ? w.t() : w;
        long n = v.shape[1];
        var eye = torch.eye(n, n, dtype: w.dtype, device: w.device);
        int iterations = 0;
        errorBound = double.PositiveInfinity;
        bool scaled = false;
        while (iterations < maxIterations)
        {
            var p = v.t().mm(v);
            var r = eye - p;
            double e = r.norm().ToDouble();
            if (!double.IsFinite(e))
            {
                errorBound = double.NaN;
                return iterations;
            }
            if (e <= tolerance)
            {
                errorBound = e;
                break;
            }
            if (!scaled)
            {
                scaled = true;
                // Gershgorin: every eigenvalue of P = VᵀV (= σ²) is at most the largest absolute row sum.
                // Order 1 converges for σ² < 3, order 2 for σ² < 2.3; scale only when the bound leaves no margin.
                double bound = p.abs().sum(1).max().ToDouble();
                if (bound > (order == 1 ? 2.5 : 2.0))
                {
                    v = v / Math.Sqrt(bound);
                    continue;
                }
            }
            if (order == 1)
            {
                v = v.mm(eye + 0.5 * r);
                errorBound = 0.75 * e * e + 0.25 * e * e * e;
            }
            else
            {
                v = v.mm(eye + 0.5 * r + 0.375 * r.mm(r));
                errorBound = e * e * e * (0.625 + e * (0.234375 + 0.140625 * e));
            }
            iterations++;
            if (errorBound <= tolerance)
                break;
        }
        if (iterations > 0 || scaled)
        {
            if (wide)
                w.copy_(v.t());
            else
                w.copy_(v);
        }
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
