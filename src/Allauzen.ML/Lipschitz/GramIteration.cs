using Allauzen.ML.Torch;
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
        using var kept = new KeptScalars();
        Scalar tiny = kept.Of(Tiny(w.dtype)), two = kept.Of(2);
        for (int t = 0; t < iterations; t++)
        {
            var c = g.norm().clamp_min(tiny);
            if (detachScale)
                c = c.detach();
            g = g / c;
            logScale = two * logScale.add(c.log(), KeptScalars.One);
            g = g.t().matmul(g);
        }
        var p = kept.Of(Math.Pow(2, -iterations));
        return g.norm().pow(p) * (logScale * p).exp();
    }

    /// <summary>
    /// <paramref name="n"/> rescaled Gram squarings m ← (m/c)(m/c)ᵀ with c = max(‖m‖_F, 1e-30) detached, and the log of
    /// the scale they divided out (log s ← 2(log s + log c)), so that the last m times exp(log s) is the 2ⁿ-th Gram power
    /// of the input: the iteration the SLL and SR rescalings share.
    /// </summary>
    internal static (Tensor Power, Tensor LogScale) RescaledGramPowers(Tensor m, int n)
    {
        var logScale = torch.zeros([], dtype: m.dtype, device: m.device);
        using var kept = new KeptScalars();
        Scalar tiny = kept.Of(1e-30), two = kept.Of(2);
        for (int i = 0; i < n; i++)
        {
            var c = m.norm().clamp_min(tiny).detach();
            m = m / c;
            logScale = two * logScale.add(c.log(), KeptScalars.One);
            m = m.matmul(m.t());
        }
        return (m, logScale);
    }

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

    /// <summary>
    /// The per-frequency symbol matrices of a 2-D circular convolution on the half spectrum (the kernel is real, so
    /// K̂(−ω) = conj K̂(ω)), split into real and imaginary parts: two real batches (B, c_out, c_in), B = h·(w/2+1), in the
    /// frequency order of <c>rfft2(K, s = (h, w))</c>. Computed as a matrix product of the k_h·k_w taps with their
    /// phases (a direct DFT: far cheaper than c_out·c_in zero-padded FFTs for small kernels), contiguous, differentiable.
    /// </summary>
    public static (Tensor Real, Tensor Imag) SymbolParts(Tensor kernel, int height, int width)
    {
        long co = kernel.shape[0], ci = kernel.shape[1], kh = kernel.shape[2], kw = kernel.shape[3];
        int wf = width / 2 + 1;
        Tensor re, im;
        using (torch.NewDisposeScope())
        {
            using var kept = new KeptScalars();
            // arange(stop) is arange(0, stop, 1) with two implicit Scalars made inside TorchSharp: spelt out here.
            Scalar h = kept.Of(height), w = kept.Of(width), zero = kept.Of(0), one = kept.Of(1);
            // Phase of tap (a, b) at frequency (u, v): −2π(a·u/h + b·v/w), exact in float64 (angles reduced mod 1 first).
            var u = torch.arange(zero, h, one, dtype: ScalarType.Float64, device: kernel.device).view(height, 1, 1, 1);
            var v = torch.arange(zero, kept.Of(wf), one, dtype: ScalarType.Float64, device: kernel.device).view(1, wf, 1, 1);
            var a = torch.arange(zero, kept.Of(kh), one, dtype: ScalarType.Float64, device: kernel.device).view(1, 1, kh, 1);
            var b = torch.arange(zero, kept.Of(kw), one, dtype: ScalarType.Float64, device: kernel.device).view(1, 1, 1, kw);
            var turns = ((u * a).remainder(h) / h).add((v * b).remainder(w) / w, KeptScalars.One);
            var phase = (turns * kept.Of(-2 * Math.PI)).reshape(height * wf, kh * kw);
            re = phase.cos().to(kernel.dtype).MoveToOuterDisposeScope();
            im = phase.sin().to(kernel.dtype).MoveToOuterDisposeScope();
        }
        var taps = kernel.reshape(co * ci, kh * kw).t();                  // (k², co·ci)
        return (re.matmul(taps).view(-1, co, ci), im.matmul(taps).view(-1, co, ci));
    }

    /// <summary>
    /// Upper bound on the spectral norm of the circular convolution with <paramref name="kernel"/> on an h × w input: the
    /// Gram iteration batched over the half-spectrum frequencies, max over them.
    /// </summary>
    /// <remarks>
    /// Works on real tensors only. With K̂ = X + iY (over the smaller side), the first Gram matrix
    /// G₁ = K̂ᴴK̂ = (XᵀX + YᵀY) + i(M − Mᵀ), M = XᵀY, is Hermitian; every later one stays Hermitian, G = A + iB with A
    /// symmetric and B antisymmetric, and G² = (A² − B²) + i(AB − (AB)ᵀ) since BA = −(AB)ᵀ. So each step is three real
    /// batched products instead of a complex one with a conjugate transpose. Per-frequency log-scales are kept on the
    /// device and the bound is max_ω exp(2^{−t}(½·log‖G_t(ω)‖²_F + L(ω))). From step 3 on, frequencies whose current upper
    /// bound is below a lower bound on the maximum (a Rayleigh quotient at the leading frequency) are dropped: they cannot hold
    /// the maximum, so the result is the same bound at a fraction of the cost (one host synchronisation per step from then on).
    /// </remarks>
    public static Tensor Circular(Tensor kernel, int height, int width, int iterations, bool detachScale = false)
    {
        var (x, y) = SymbolParts(kernel, height, width);
        if (x.shape[2] > x.shape[1])
        {
            // Gram over the smaller side: K̂ᵀ has the same singular values.
            x = x.transpose(1, 2);
            y = y.transpose(1, 2);
        }
        var sq = SquaredFrobenius(x, y);
        if (iterations == 0)
            return sq.sqrt().max();
        var f = Rescale(sq, detachScale);
        var logScale = f.Log;                                      // L₁ = 2·log c₀ = log ‖K̂‖²_F
        x = x * f.Inverse;
        y = y * f.Inverse;
        var xt = x.transpose(1, 2);
        var m = torch.bmm(xt, y);
        var gr = torch.bmm(xt, x).add(torch.bmm(y.transpose(1, 2), y), KeptScalars.One);
        var gi = m - m.transpose(1, 2);
        double logLower = double.NegativeInfinity;
        using var kept = new KeptScalars();
        Scalar tiny = kept.Of(Tiny(gr.dtype)), half = kept.Of(0.5), two = kept.Of(2);
        for (int t = 1; t < iterations; t++)
        {
            var squared = SquaredFrobenius(gr, gi);
            if (t >= PruneFrom && gr.shape[0] > 1)
            {
                // Frequencies whose upper bound is already below a lower bound on the max can never hold the max: drop them.
                Tensor keep;
                using (torch.no_grad())
                {
                    var logUpper = (squared.clamp_min(tiny).log() * half).add(logScale, KeptScalars.One) * kept.Of(Math.Pow(2, -t));
                    if (double.IsNegativeInfinity(logLower))
                        logLower = LogLowerBound(gr, gi, logScale, logUpper.argmax().item<long>(), t);
                    keep = (logUpper >= kept.Of(logLower + Math.Log(1 - 1e-4))).nonzero().squeeze(1);
                }
                if (keep.shape[0] > 0 && keep.shape[0] < gr.shape[0])
                {
                    gr = gr.index_select(0, keep);
                    gi = gi.index_select(0, keep);
                    logScale = logScale.index_select(0, keep);
                    squared = squared.index_select(0, keep);
                }
            }
            f = Rescale(squared, detachScale);
            gr = gr * f.Inverse;
            gi = gi * f.Inverse;
            logScale = (two * logScale).add(f.Log, KeptScalars.One);                      // L ← 2(L + log c), log c = ½·log‖G‖²
            var ab = torch.bmm(gr, gi);
            gr = torch.bmm(gr, gr) - torch.bmm(gi, gi);
            gi = ab - ab.transpose(1, 2);
        }
        var logFinal = SquaredFrobenius(gr, gi).clamp_min(tiny).log() * half;
        return (logFinal.add(logScale, KeptScalars.One) * kept.Of(Math.Pow(2, -iterations))).exp().max();
    }

    /// <summary>
    /// The "norm2toep" bound of Delattre, Barthélemy and Allauzen (2024) on a 2-D convolution with any zero padding (and any
    /// circular padding) at any input size: the Gram iteration in the spatial (Toeplitz) domain. With K transposed so that its
    /// first axis is the larger one, kkt ← SelfCorrelation(kkt/‖kkt‖_F) t times, so kkt is the kernel of (KKᵀ)^{2^{t−1}} up to
    /// scale; its largest absolute row sum bounds the ℓ2 norm of that symmetric bi-infinite Toeplitz operator, hence
    /// σ ≤ max_i(Σ_{j,s}|kkt_ij[s]|)^{2^{−t}}·exp(L·2^{−t}). Independent of the input size; the kernel support grows as
    /// 2^t(k−1)+1 (self-correlations switch to FFTs once it exceeds 9).
    /// </summary>
    public static Tensor Toeplitz(Tensor kernel, int iterations)
    {
        var kkt = kernel.shape[1] > kernel.shape[0] ? kernel.transpose(0, 1) : kernel;
        var logScale = torch.zeros([], dtype: kernel.dtype, device: kernel.device);
        using var kept = new KeptScalars();
        Scalar tiny = kept.Of(Tiny(kernel.dtype)), two = kept.Of(2);
        for (int t = 0; t < iterations; t++)
        {
            var c = kkt.norm().clamp_min(tiny);
            kkt = kkt / c;
            logScale = two * logScale.add(c.log(), KeptScalars.One);
            kkt = SelfCorrelation(kkt);
        }
        var p = kept.Of(Math.Pow(2, -iterations));
        return kkt.abs().sum([1, 2, 3]).max().pow(p) * (logScale * p).exp();
    }

    /// <summary>
    /// Full 2-D self-correlation of a batch of kernels A (a × c × S × S'): out[i, j] = Σ_c corr(A_i,c, A_j,c), of size
    /// (2S−1) × (2S'−1) — <c>conv2d(A, A, padding = S−1)</c>, computed by FFTs of size 2S−1 when the kernel is large.
    /// </summary>
    public static Tensor SelfCorrelation(Tensor a)
    {
        long sh = a.shape[2], sw = a.shape[3];
        if (sh * sw <= 81)
            return nn.functional.conv2d(a, a, padding: [sh - 1, sw - 1]);
        long lh = 2 * sh - 1, lw = 2 * sw - 1;
        var ah = torch.fft.rfft2(a, s: [lh, lw]);                                 // (a, c, lh, lw/2+1)
        var gh = torch.einsum("icxy,jcxy->ijxy", ah, ah.conj());                  // per-frequency A Aᴴ
        var g = torch.fft.irfft2(gh, s: [lh, lw]);                                // circular of length 2S−1 = linear
        return torch.roll(g, [sh - 1, sw - 1], [2, 3]);
    }

    /// <summary>Gram steps after which frequencies that cannot hold the maximum are pruned (their bounds are loose before).</summary>
    private const int PruneFrom = 3;

    /// <summary>
    /// log of a lower bound on max_ω σ1(K̂(ω)) from frequency <paramref name="j"/> after <paramref name="t"/> Gram steps: a
    /// Rayleigh quotient of the Hermitian G_t(j) = A + iB (through its real symmetric form [[A, −B], [B, A]], same eigenvalues),
    /// refined by a few power steps; λmax(exp(L)·G_t) = σ1^{2^t}. −∞ when the quotient is not positive.
    /// </summary>
    private static double LogLowerBound(Tensor gr, Tensor gi, Tensor logScale, long j, int t)
    {
        using var scope = torch.NewDisposeScope();
        var a = gr[j].detach().to(ScalarType.Float64);
        var b = gi[j].detach().to(ScalarType.Float64);
        var x = torch.ones(a.shape[0], dtype: ScalarType.Float64, device: a.device);
        var y = torch.zeros_like(x);
        using var kept = new KeptScalars();
        var tiny = kept.Of(1e-300);
        for (int i = 0; i < 12; i++)
        {
            var nx = a.mv(x) - b.mv(y);
            var ny = b.mv(x).add(a.mv(y), KeptScalars.One);
            var norm = nx.square().sum().add(ny.square().sum(), KeptScalars.One).sqrt().clamp_min(tiny);
            x = nx / norm;
            y = ny / norm;
        }
        double rq = x.dot(a.mv(x) - b.mv(y)).add(y.dot(b.mv(x).add(a.mv(y), KeptScalars.One)), KeptScalars.One).item<double>();
        return rq > 0 ? (Math.Log(rq) + logScale[j].detach().to(ScalarType.Float64).item<double>()) * Math.Pow(2, -t) : double.NegativeInfinity;
    }

    /// <summary>‖X + iY‖²_F of every matrix of a batch.</summary>
    private static Tensor SquaredFrobenius(Tensor re, Tensor im) => re.square().sum([1, 2]).add(im.square().sum([1, 2]), KeptScalars.One);

    /// <summary>From squared Frobenius norms: 1/c (shaped to broadcast over a batch of matrices) and log c² = 2·log c.</summary>
    private static (Tensor Inverse, Tensor Log) Rescale(Tensor squared, bool detach)
    {
        using var kept = new KeptScalars();
        var s = squared.clamp_min(kept.Of(Tiny(squared.dtype)));
        if (detach)
            s = s.detach();
        return (s.rsqrt().view(-1, 1, 1), s.log());
    }

    private static double Tiny(ScalarType t) => t == ScalarType.Float64 ? 1e-300 : 1e-30;
}
