using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Lipschitz;

/// <summary>
/// Gram iteration (Delattre, Barthélemy, Araujo, Allauzen, ICML 2023): a deterministic, differentiable
/// upper bound on the spectral norm. G₀ = W (over the smaller side), G_{t+1} = G_tᴴG_t, and
/// σ1(W) ≤ ‖G_t‖_F^{2^{−t}}. Before each squaring G is divided by its Frobenius norm c and the scale is
/// kept in the log domain, L ← 2(L + log c), so nothing overflows: bound = ‖G_t‖_F^{2^{−t}}·exp(L·2^{−t}).
/// Works in the dtype of its input (float32 for training, float64 for certified values).
/// </summary>
internal static class GramIteration
{
    /// <summary>Upper bound on σ1 of a real matrix (rows × cols). Differentiable (exact gradient even with a detached scale).</summary>
    public static Tensor Dense(Tensor w, int iterations, bool detachScale = false)
    {
        if (w.dim() != 2)
            throw new ArgumentException($"Gram iteration on a matrix needs a 2-D tensor, got {w.dim()} dimensions.", nameof(w));
        // Gram over the smaller side: make G₀ have the smaller number of columns.
        var g = w.shape[1] > w.shape[0] ? w.t() : w;
        var logScale = torch.zeros([], dtype: w.dtype, device: w.device);
        for (int t = 0; t < iterations; t++)
        {
            var c = g.norm().clamp_min(Tiny(w.dtype));
            if (detachScale)
                c = c.detach();
            g = g / c;
            logScale = 2 * (logScale + c.log());
            g = g.t().matmul(g);
        }
        double p = Math.Pow(2, -iterations);
        return g.norm().pow(p) * (logScale * p).exp();
    }

    /// <summary>
    /// Per-matrix bounds for a batch of complex (or real) matrices (B × m × n): the batched Gram iteration
    /// with one log-scale per matrix. Returns B bounds.
    /// </summary>
    public static Tensor Batched(Tensor g, int iterations, bool detachScale = false)
    {
        if (g.dim() != 3)
            throw new ArgumentException($"Batched Gram iteration needs a 3-D tensor, got {g.dim()} dimensions.", nameof(g));
        if (g.shape[2] > g.shape[1])
            g = g.transpose(1, 2);
        var realType = g.is_complex() ? (g.dtype == ScalarType.ComplexFloat64 ? ScalarType.Float64 : ScalarType.Float32) : g.dtype;
        var logScale = torch.zeros([g.shape[0]], dtype: realType, device: g.device);
        for (int t = 0; t < iterations; t++)
        {
            var c = Frobenius(g).clamp_min(Tiny(realType));
            if (detachScale)
                c = c.detach();
            g = g / c.view(-1, 1, 1);
            logScale = 2 * (logScale + c.log());
            var gh = g.is_complex() ? g.transpose(1, 2).conj() : g.transpose(1, 2);
            g = torch.bmm(gh, g);
        }
        double p = Math.Pow(2, -iterations);
        return Frobenius(g).pow(p) * (logScale * p).exp();
    }

    /// <summary>Frobenius norm of each matrix of a batch (complex: sqrt Σ|z|²).</summary>
    public static Tensor Frobenius(Tensor g) =>
        (g.is_complex() ? g.abs().square() : g.square()).sum([1, 2]).sqrt();

    /// <summary>
    /// The per-frequency matrices of a 2-D circular convolution: rfft2 of the kernel zero-padded to
    /// (h, w), as a batch of h·(w/2+1) matrices of size c_out × c_in (half spectrum: the kernel is real).
    /// </summary>
    public static Tensor Symbol(Tensor kernel, int height, int width)
    {
        var co = kernel.shape[0];
        var ci = kernel.shape[1];
        var f = torch.fft.rfft2(kernel, s: [height, width]);           // (co, ci, h, w/2+1)
        return f.reshape(co, ci, -1).permute(2, 0, 1);                    // (B, co, ci)
    }

    /// <summary>Upper bound on the spectral norm of the circular convolution with <paramref name="kernel"/> on an h × w input.</summary>
    public static Tensor Circular(Tensor kernel, int height, int width, int iterations, bool detachScale = false) =>
        Batched(Symbol(kernel, height, width), iterations, detachScale).max();

    private static double Tiny(ScalarType t) => t == ScalarType.Float64 ? 1e-300 : 1e-30;
}
