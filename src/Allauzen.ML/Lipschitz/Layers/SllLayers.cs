using Allauzen.ML.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Allauzen.ML.Lipschitz;

/// <summary>
/// SLL dense layer (Araujo et al., ICLR 2023): y = x − 2·Wᵀ T ReLU(Wx + b), T = diag(t),
/// t_i = 1 / Σ_j |WWᵀ|_ij·q_j/q_i with q = exp(q_param) on the column axis (paper formula) and safe_inv.
/// With n &gt; 1 rescaling iterations it is the q-weighted residual spectral rescaling of Delattre et al. (2024):
/// M ← (M/‖M‖_F)(M/‖M‖_F)ᵀ n times from M = W (M ∝ (WWᵀ)^{2^{n−1}}), then
/// 1/T_ii = (Σ_j |M_ij|·q_j/q_i)^{2^{−(n−1)}}·exp(L·2^{−(n−1)}): the q-weighted Gershgorin bound on (WWᵀ)^{2^{n−1}} and the
/// operator monotonicity of x^{1/m} give WWᵀ ⪯ T⁻¹, i.e. ‖T^½W‖ ≤ 1, tighter as n grows. n = 1 is exactly SLL.
/// </summary>
internal sealed class SllDense : LipschitzModule
{
    internal readonly Parameter W;
    internal readonly Parameter b;
    internal readonly Parameter q;

    private readonly int _n;

    public SllDense(int features, int inner, ScalarType dtype = ScalarType.Float32, int iterations = 1) : base("SllDense")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        _n = iterations;
        var w = torch.empty(inner, features, dtype: dtype);
        nn.init.xavier_normal_(w);
        W = Param(w);
        double bound = 1 / Math.Sqrt(features);
        b = Param(torch.empty(inner, dtype: dtype).uniform_(-bound, bound));
        q = Param(torch.zeros(inner, dtype: dtype));
        RegisterComponents();
    }

    public Tensor T()
    {
        var qe = q.exp();
        if (_n == 1)
            return SafeInv((W.matmul(W.t()).abs() * qe.unsqueeze(0) / qe.unsqueeze(1)).sum(1));
        var (m, logScale) = GramIteration.RescaledGramPowers(W, _n);
        using var kept = new KeptScalars();
        var p = kept.Of(Math.Pow(2, -(_n - 1)));
        var rows = (m.abs() * qe.unsqueeze(0) / qe.unsqueeze(1)).sum(1);
        return SafeInv(rows.pow(p) * (logScale * p).exp());
    }

    public override Tensor forward(Tensor x)
    {
        var res = F.relu(x.matmul(W.t()).add(b, KeptScalars.One)) * T();
        using var kept = new KeptScalars();
        return x - kept.Of(2) * res.matmul(W);
    }

    public override PlainLayer Fold()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var w = W.to(ScalarType.Float64);
        var sq = T().to(ScalarType.Float64).sqrt();
        // T ReLU(u) = T^½ ReLU(T^½ u) for t ≥ 0: SLL is CPL with V = T^½W, step 2.
        var v = w * sq.unsqueeze(1);
        var bv = b.to(ScalarType.Float64) * sq;
        return Residual.Dense(v, bv, 2.0);
    }
}

/// <summary>
/// SLL convolutional layer: y = x − 2·convᵀ(t·ReLU(conv(x, K) + b), K), zero padding (k−1)/2, with
/// t_i = 1 / Σ_{j,s} |conv2d(K, K, padding = k−1)|_ij[s]·q_j/q_i. With n &gt; 1 rescaling iterations: the q-weighted residual
/// spectral rescaling, kkt ← SelfCorrelation(kkt/‖kkt‖_F) n times, 1/t_i = (Σ_{j,s}|kkt_ij[s]|·q_j/q_i)^{2^{−(n−1)}}·exp(L·2^{−(n−1)})
/// (a bound on the bi-infinite Toeplitz operator, so valid for zero padding at any size).
/// </summary>
internal sealed class SllConv : LipschitzModule
{
    internal readonly Parameter W;
    internal readonly Parameter b;
    internal readonly Parameter q;
    private readonly int _h, _w, _pad;

    private readonly int _n;

    public SllConv(int channels, int inner, int kernel, int height, int width, ScalarType dtype = ScalarType.Float32, int iterations = 1)
        : base("SllConv")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        _n = iterations;
        if (kernel % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(kernel), kernel, "Kernel size must be odd ('same' padding).");
        var w = torch.empty(inner, channels, kernel, kernel, dtype: dtype);
        nn.init.xavier_normal_(w);
        W = Param(w);
        double bound = 1 / Math.Sqrt(channels * kernel * kernel);
        b = Param(torch.empty(inner, dtype: dtype).uniform_(-bound, bound));
        q = Param(torch.zeros(inner, dtype: dtype));
        _h = height;
        _w = width;
        _pad = (kernel - 1) / 2;
        RegisterComponents();
    }

    public Tensor T()
    {
        var qe = q.exp();
        if (_n == 1)
            return SafeInv((SelfCorrelation(W).abs().sum([2, 3]) * qe.unsqueeze(0) / qe.unsqueeze(1)).sum(1));
        var kkt = (Tensor)W;
        var logScale = torch.zeros([], dtype: kkt.dtype, device: kkt.device);
        using var kept = new KeptScalars();
        Scalar tiny = kept.Of(1e-30), two = kept.Of(2);
        for (int i = 0; i < _n; i++)
        {
            var c = kkt.norm().clamp_min(tiny).detach();
            kkt = kkt / c;
            logScale = two * logScale.add(c.log(), KeptScalars.One);
            kkt = SelfCorrelation(kkt);
        }
        var p = kept.Of(Math.Pow(2, -(_n - 1)));
        var rows = (kkt.abs().sum([2, 3]) * qe.unsqueeze(0) / qe.unsqueeze(1)).sum(1);
        return SafeInv(rows.pow(p) * (logScale * p).exp());
    }

    public override Tensor forward(Tensor x)
    {
        var res = F.relu(F.conv2d(x, W, b, padding: [_pad, _pad])) * T().view(1, -1, 1, 1);
        using var kept = new KeptScalars();
        return x - kept.Of(2) * F.conv_transpose2d(res, W, padding: [_pad, _pad]);
    }

    public override PlainLayer Fold()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var sq = T().to(ScalarType.Float64).sqrt();
        var v = W.to(ScalarType.Float64) * sq.view(-1, 1, 1, 1);
        return Residual.Conv(v, b.to(ScalarType.Float64) * sq, 2.0, _h, _w);
    }
}
