using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Allauzen.ML.Lipschitz;

/// <summary>A layer of a certified network: a module that folds its constraint into plain weights for deployment.</summary>
internal abstract class LipschitzModule : nn.Module<Tensor, Tensor>
{
    protected LipschitzModule(string name) : base(name)
    {
    }

    /// <summary>The deployed layer with the constraint folded into the weights (float64 maths, float32 storage).</summary>
    public abstract PlainLayer Fold();

    internal static (float[] Data, long[] Shape) Arr(Tensor t)
    {
        using var c = t.detach().cpu().to(ScalarType.Float32).contiguous();
        return (c.data<float>().ToArray(), c.shape);
    }

    internal static Parameter Param(Tensor t) => new(t, requires_grad: true);

    /// <summary>A plain dense layer y = W·x + b (then ReLU when <paramref name="relu"/>) from folded weights.</summary>
    internal static PlainLayer PlainDense(Tensor w, Tensor b, bool relu) =>
        new(PlainKind.Dense, [(int)w.shape[0], (int)w.shape[1]], 0, relu) { Tensors = { ["W"] = Arr(w), ["b"] = Arr(b) } };

    /// <summary>A plain 'same' convolution (then ReLU when <paramref name="relu"/>) on an h × w input from a folded kernel.</summary>
    internal static PlainLayer PlainConv(Tensor k, Tensor b, int h, int w, bool relu) =>
        new(PlainKind.Conv, [(int)k.shape[0], (int)k.shape[1], (int)k.shape[2], (int)k.shape[3], h, w], 0, relu)
        {
            Tensors = { ["W"] = Arr(k), ["b"] = Arr(b) },
        };

    /// <summary>1/x where x &gt; 0, else 0 (the SLL "safe_inv": no ε inside a bound).</summary>
    internal static Tensor SafeInv(Tensor x) => torch.where(x > 0, 1 / x.clamp_min(1e-300), torch.zeros_like(x));

    /// <summary>Full 2-D self-correlation of a batch of kernels: out[i, j] = Σ_c corr(K_i,c, K_j,c), size 2S−1.</summary>
    internal static Tensor SelfCorrelation(Tensor k) => GramIteration.SelfCorrelation(k);

    /// <summary>The adjoint of a 'same' convolution with kernel V (odd k) written as a convolution: flip(Vᵀ).</summary>
    internal static Tensor AdjointKernel(Tensor v) => v.transpose(0, 1).flip(2, 3);
}

/// <summary>(x − mean)·scale on the flat features. The scale multiplies the network's Lipschitz constant.</summary>
internal sealed class InputNormalize : LipschitzModule
{
    private readonly Tensor mean;
    private readonly double _scale;

    public InputNormalize(float[] meanValues, double scale, ScalarType dtype = ScalarType.Float32) : base("InputNormalize")
    {
        mean = torch.tensor(meanValues).to(dtype);
        _scale = scale;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => (x - mean) * _scale;

    public override PlainLayer Fold() => new(PlainKind.Normalize, [(int)mean.shape[0]], _scale, false) { Tensors = { ["mean"] = Arr(mean) } };
}

/// <summary>Flat → (C, H, W).</summary>
internal sealed class ReshapeImage(int c, int h, int w) : LipschitzModule("Reshape")
{
    public override Tensor forward(Tensor x) => x.reshape(x.shape[0], c, h, w);

    public override PlainLayer Fold() => new(PlainKind.Reshape, [c, h, w], 0, false);
}

/// <summary>Zero channels appended (SLL's PaddingChannels): an isometry.</summary>
internal sealed class PadChannels(int from, int to) : LipschitzModule("PadChannels")
{
    public override Tensor forward(Tensor x) =>
        to == from ? x : F.pad(x, [0, 0, 0, 0, 0, to - from]);

    public override PlainLayer Fold() => new(PlainKind.PadChannels, [from, to], 0, false);
}

/// <summary>k×k window sums divided by k (AvgPool2d(k, divisor_override = k)): 1-Lipschitz.</summary>
internal sealed class SumPool(int k) : LipschitzModule("SumPool")
{
    public override Tensor forward(Tensor x) => k == 1 ? x : F.avg_pool2d(x, k) * k;

    public override PlainLayer Fold() => new(PlainKind.SumPool, [k], 0, false);
}

/// <summary>(C, H, W) → flat.</summary>
internal sealed class FlattenImage() : LipschitzModule("Flatten")
{
    public override Tensor forward(Tensor x) => x.flatten(1);

    public override PlainLayer Fold() => new(PlainKind.Flatten, [], 0, false);
}

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
        var m = (Tensor)W;
        var logScale = torch.zeros([], dtype: m.dtype, device: m.device);
        for (int i = 0; i < _n; i++)
        {
            var c = m.norm().clamp_min(1e-30).detach();
            m = m / c;
            logScale = 2 * (logScale + c.log());
            m = m.matmul(m.t());
        }
        double p = Math.Pow(2, -(_n - 1));
        var rows = (m.abs() * qe.unsqueeze(0) / qe.unsqueeze(1)).sum(1);
        return SafeInv(rows.pow(p) * (logScale * p).exp());
    }

    public override Tensor forward(Tensor x)
    {
        var res = F.relu(x.matmul(W.t()) + b) * T();
        return x - 2 * res.matmul(W);
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
        for (int i = 0; i < _n; i++)
        {
            var c = kkt.norm().clamp_min(1e-30).detach();
            kkt = kkt / c;
            logScale = 2 * (logScale + c.log());
            kkt = SelfCorrelation(kkt);
        }
        double p = Math.Pow(2, -(_n - 1));
        var rows = (kkt.abs().sum([2, 3]) * qe.unsqueeze(0) / qe.unsqueeze(1)).sum(1);
        return SafeInv(rows.pow(p) * (logScale * p).exp());
    }

    public override Tensor forward(Tensor x)
    {
        var res = F.relu(F.conv2d(x, W, b, padding: [_pad, _pad])) * T().view(1, -1, 1, 1);
        return x - 2 * F.conv_transpose2d(res, W, padding: [_pad, _pad]);
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

/// <summary>How a CPL layer gets σ = ‖W‖. Only <see cref="Gram"/> is certifiable.</summary>
internal enum CplSigma
{
    /// <summary>Gram-iteration upper bound (float64): the layer is 1-Lipschitz by construction.</summary>
    Gram,

    /// <summary>One power-iteration step from a random start (the reference code's training-time estimate): a lower bound. Negative control only.</summary>
    PowerIteration1,
}

/// <summary>
/// CPL dense layer (Meunier et al., ICML 2022): y = x − (2/σ²)·Wᵀ ReLU(Wx + b) with σ an <b>upper</b> bound on ‖W‖
/// (Gram iteration), so the explicit Euler step on a convex potential is 1-Lipschitz.
/// </summary>
internal sealed class CplDense : LipschitzModule
{
    internal readonly Parameter W;
    internal readonly Parameter b;
    private readonly CplSigma _sigmaKind;
    private double _cachedSigma = double.NaN;

    public CplDense(int features, int inner, ScalarType dtype = ScalarType.Float32, CplSigma sigma = CplSigma.Gram) : base("CplDense")
    {
        var w = torch.empty(inner, features, dtype: dtype);
        nn.init.xavier_normal_(w);
        W = Param(w);
        b = Param(torch.zeros(inner, dtype: dtype));
        _sigmaKind = sigma;
        RegisterComponents();
    }

    /// <summary>Gram iterations of the training-time σ (float32, on the device, no host synchronisation).</summary>
    internal const int TrainingIterations = 6;

    /// <summary>Gram iterations of the float64 σ used in eval mode and folded into the deployed weights.</summary>
    internal const int FoldIterations = 8;

    /// <summary>
    /// The training-time step h = 2/σ² as a tensor, from a float32 Gram bound computed without gradient: the σ of the
    /// trained function. The certified constant does not rest on it: eval mode and <see cref="Fold"/> recompute σ in float64.
    /// </summary>
    internal static Tensor TrainingStep(Tensor sigma)
    {
        using var _ = torch.no_grad();
        return 2 / sigma.square();
    }

    /// <summary>σ used by the layer in eval mode and when folding (float64 Gram bound, cached in eval mode).</summary>
    public double Sigma(int iterations = FoldIterations)
    {
        bool cache = !training && iterations == CplDense.FoldIterations;
        if (cache && !double.IsNaN(_cachedSigma))
            return _cachedSigma;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var w = W.to(ScalarType.Float64);
        double s = _sigmaKind == CplSigma.Gram
            ? GramIteration.Dense(w, iterations).item<double>()
            : OnePowerStep(w);
        if (cache)
            _cachedSigma = s;
        return s;
    }

    private static double OnePowerStep(Tensor w)
    {
        using var gen = new torch.Generator(5);
        var u = torch.randn([w.shape[0]], dtype: ScalarType.Float64, generator: gen);
        var v = w.t().matmul(u);
        v = v / v.norm();
        return w.matmul(v).norm().item<double>();
    }

    public override Tensor forward(Tensor x)
    {
        var r = F.relu(x.matmul(W.t()) + b).matmul(W);
        if (training && _sigmaKind == CplSigma.Gram)
            return x - TrainingStep(GramIteration.Dense(W.detach(), TrainingIterations)) * r;
        double s = Sigma(FoldIterations);
        return x - 2 / (s * s) * r;
    }

    public override PlainLayer Fold()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        _cachedSigma = double.NaN;
        double s = Sigma(FoldIterations);
        return Residual.Dense(W.to(ScalarType.Float64), b.to(ScalarType.Float64), 2 / (s * s));
    }

    public override void train(bool mode = true)
    {
        _cachedSigma = double.NaN;
        base.train(mode);
    }
}

/// <summary>
/// CPL convolutional layer: y = x − (2/σ²)·convᵀ(ReLU(conv(x, K) + b), K), zero padding (k−1)/2, with σ the
/// zero-padding Gram bound (circular Gram on the (h+k−1) × (w+k−1) grid) at the layer's real input size.
/// </summary>
internal sealed class CplConv : LipschitzModule
{
    internal readonly Parameter W;
    internal readonly Parameter b;
    private readonly int _h, _w, _pad;
    private readonly CplSigma _sigmaKind;
    private double _cachedSigma = double.NaN;

    public CplConv(int channels, int inner, int kernel, int height, int width, ScalarType dtype = ScalarType.Float32,
        CplSigma sigma = CplSigma.Gram) : base("CplConv")
    {
        if (kernel % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(kernel), kernel, "Kernel size must be odd ('same' padding).");
        var w = torch.empty(inner, channels, kernel, kernel, dtype: dtype);
        nn.init.xavier_normal_(w);
        W = Param(w);
        b = Param(torch.zeros(inner, dtype: dtype));
        _h = height;
        _w = width;
        _pad = (kernel - 1) / 2;
        _sigmaKind = sigma;
        RegisterComponents();
    }

    /// <summary>σ used in eval mode and when folding: the float64 zero-padding Gram bound (cached in eval mode).</summary>
    public double Sigma(int iterations = CplDense.FoldIterations)
    {
        bool cache = !training && iterations == CplDense.FoldIterations;
        if (cache && !double.IsNaN(_cachedSigma))
            return _cachedSigma;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var w = W.to(ScalarType.Float64);
        int k = (int)w.shape[2];
        double s = _sigmaKind == CplSigma.Gram
            ? GramIteration.Circular(w, _h + k - 1, _w + k - 1, iterations).item<double>()
            : OnePowerStep(w);
        if (cache)
            _cachedSigma = s;
        return s;
    }

    private double OnePowerStep(Tensor w)
    {
        using var gen = new torch.Generator(9);
        var y = torch.randn([1, w.shape[0], _h, _w], dtype: ScalarType.Float64, generator: gen);
        var x = F.conv_transpose2d(y, w, padding: [_pad, _pad]);
        x = x / x.norm();
        return F.conv2d(x, w, padding: [_pad, _pad]).norm().item<double>();
    }

    public override Tensor forward(Tensor x)
    {
        var r = F.conv_transpose2d(F.relu(F.conv2d(x, W, b, padding: [_pad, _pad])), W, padding: [_pad, _pad]);
        if (training && _sigmaKind == CplSigma.Gram)
        {
            int k = (int)W.shape[2];
            return x - CplDense.TrainingStep(GramIteration.Circular(W.detach(), _h + k - 1, _w + k - 1, CplDense.TrainingIterations)) * r;
        }
        double s = Sigma(CplDense.FoldIterations);
        return x - 2 / (s * s) * r;
    }

    public override PlainLayer Fold()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        _cachedSigma = double.NaN;
        double s = Sigma(CplDense.FoldIterations);
        return Residual.Conv(W.to(ScalarType.Float64), b.to(ScalarType.Float64), 2 / (s * s), _h, _w);
    }

    public override void train(bool mode = true)
    {
        _cachedSigma = double.NaN;
        base.train(mode);
    }
}

/// <summary>
/// A dense layer y = W·x + b (then an optional ReLU) whose weight W = rescale(P) is a 1-Lipschitz rescaling of a free
/// parameter P (orthogonal initialisation); subclasses define <see cref="Weight"/>. Folds to a plain Gemm.
/// </summary>
internal abstract class RescaledDense : LipschitzModule
{
    internal readonly Parameter P;
    internal readonly Parameter b;
    private readonly bool _relu;

    protected RescaledDense(string name, int inputs, int outputs, bool relu, ScalarType dtype) : base(name)
    {
        var p = torch.empty(outputs, inputs, dtype: dtype);
        nn.init.orthogonal_(p);
        P = Param(p);
        b = Param(torch.zeros(outputs, dtype: dtype));
        _relu = relu;
    }

    /// <summary>The constrained weight W = rescale(P).</summary>
    public abstract Tensor Weight();

    public override Tensor forward(Tensor x)
    {
        var y = x.matmul(Weight().t()) + b;
        return _relu ? F.relu(y) : y;
    }

    public override PlainLayer Fold()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        return PlainDense(Weight(), b, _relu);
    }
}

/// <summary>
/// A 'same' convolution (odd kernel, zero padding (k−1)/2, then an optional ReLU) whose kernel K = rescale(P) is a
/// 1-Lipschitz rescaling of a free parameter P (Dirac initialisation plus small noise); subclasses define
/// <see cref="Weight"/>. Folds to a plain Conv.
/// </summary>
internal abstract class RescaledConv : LipschitzModule
{
    internal readonly Parameter P;
    internal readonly Parameter b;
    private readonly bool _relu;
    private readonly int _h, _w, _pad;

    protected RescaledConv(string name, int inChannels, int outChannels, int kernel, int height, int width, bool relu, ScalarType dtype)
        : base(name)
    {
        if (kernel % 2 == 0)
            throw new ArgumentOutOfRangeException(nameof(kernel), kernel, "Kernel size must be odd ('same' padding).");
        var p = torch.empty(outChannels, inChannels, kernel, kernel, dtype: dtype);
        using (torch.no_grad())
        {
            nn.init.dirac_(p);
            p.add_(torch.randn_like(p) * 0.01);
        }
        P = Param(p);
        b = Param(torch.zeros(outChannels, dtype: dtype));
        _relu = relu;
        _h = height;
        _w = width;
        _pad = (kernel - 1) / 2;
    }

    /// <summary>The constrained kernel K = rescale(P).</summary>
    public abstract Tensor Weight();

    public override Tensor forward(Tensor x)
    {
        var y = F.conv2d(x, Weight(), b, padding: [_pad, _pad]);
        return _relu ? F.relu(y) : y;
    }

    public override PlainLayer Fold()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        return PlainConv(Weight(), b, _h, _w, _relu);
    }
}

/// <summary>
/// AOL dense layer (Prach &amp; Lampert, ECCV 2022): W = P·D with D_jj = (Σ_i |PᵀP|_ji)^{−1/2} (0 when the sum is 0),
/// one scale per <b>input</b> column; ‖PD‖ ≤ 1. Followed by an optional ReLU.
/// </summary>
internal sealed class AolDense : RescaledDense
{
    public AolDense(int inputs, int outputs, bool relu, ScalarType dtype = ScalarType.Float32) : base("AolDense", inputs, outputs, relu, dtype)
    {
        RegisterComponents();
    }

    public Tensor D() => SafeInv(P.t().matmul(P).abs().sum(1)).sqrt();

    public override Tensor Weight() => P * D().unsqueeze(0);
}

/// <summary>
/// AOL convolution: K = P·d_c per <b>input</b> channel c, d_c = (Σ |conv2d(Pᵀ, Pᵀ, padding = k−1)|_c,·)^{−1/2}; 1-Lipschitz
/// for zero (and any 1-Lipschitz) padding. Zero padding (k−1)/2, optional ReLU.
/// </summary>
internal sealed class AolConv : RescaledConv
{
    public AolConv(int inChannels, int outChannels, int kernel, int height, int width, bool relu, ScalarType dtype = ScalarType.Float32)
        : base("AolConv", inChannels, outChannels, kernel, height, width, relu, dtype)
    {
        RegisterComponents();
    }

    public Tensor D() => SafeInv(SelfCorrelation(P.transpose(0, 1)).abs().sum([1, 2, 3])).sqrt();

    public override Tensor Weight() => P * D().view(1, -1, 1, 1);
}

/// <summary>
/// Spectral rescaling (Delattre, Barthélemy, Allauzen 2024), dense: M ← (M/‖M‖_F)(M/‖M‖_F)ᵀ n times from M = W, then
/// t_i = (Σ_j |M_ij|)^{2^{−n}}·exp(L·2^{−n}) and W_SR = diag(1/t)·W (one scale per <b>output</b> row). n = 1 is AOL on
/// rows; n → ∞ tends to spectral normalisation. Optional ReLU.
/// </summary>
internal sealed class SrDense : RescaledDense
{
    private readonly int _n;

    public SrDense(int inputs, int outputs, int iterations, bool relu, ScalarType dtype = ScalarType.Float32)
        : base("SrDense", inputs, outputs, relu, dtype)
    {
        _n = iterations;
        RegisterComponents();
    }

    public Tensor T()
    {
        var m = (Tensor)P;
        var logScale = torch.zeros([], dtype: m.dtype);
        for (int i = 0; i < _n; i++)
        {
            var c = m.norm().clamp_min(1e-30).detach();
            m = m / c;
            logScale = 2 * (logScale + c.log());
            m = m.matmul(m.t());
        }
        double p = Math.Pow(2, -_n);
        return m.abs().sum(1).pow(p) * (logScale * p).exp();
    }

    public override Tensor Weight() => P * SafeInv(T()).unsqueeze(1);
}

/// <summary>
/// Spectral rescaling of a convolution: the same iteration with kkt ← conv2d(kkt, kkt, padding = S−1), one t per
/// <b>output</b> channel, K_SR = K / t. Valid for zero padding (the bound is on the bi-infinite Toeplitz operator).
/// </summary>
internal sealed class SrConv : RescaledConv
{
    private readonly int _n;

    public SrConv(int inChannels, int outChannels, int kernel, int height, int width, int iterations, bool relu,
        ScalarType dtype = ScalarType.Float32) : base("SrConv", inChannels, outChannels, kernel, height, width, relu, dtype)
    {
        _n = iterations;
        RegisterComponents();
    }

    public Tensor T()
    {
        var kkt = (Tensor)P;
        var logScale = torch.zeros([], dtype: kkt.dtype);
        for (int i = 0; i < _n; i++)
        {
            var c = kkt.norm().clamp_min(1e-30).detach();
            kkt = kkt / c;
            logScale = 2 * (logScale + c.log());
            kkt = SelfCorrelation(kkt);
        }
        double p = Math.Pow(2, -_n);
        return kkt.abs().sum([1, 2, 3]).pow(p) * (logScale * p).exp();
    }

    public override Tensor Weight() => P * SafeInv(T()).view(-1, 1, 1, 1);
}

/// <summary>Last linear layer with L2-normalised rows (SLL's LinearNormalized). Its spectral norm enters the network's constant.</summary>
internal sealed class LinearNormalized : LipschitzModule
{
    internal readonly Parameter P;
    internal readonly Parameter b;

    public LinearNormalized(int inputs, int classes, ScalarType dtype = ScalarType.Float32) : base("LinearNormalized")
    {
        var p = torch.empty(classes, inputs, dtype: dtype);
        nn.init.xavier_normal_(p);
        P = Param(p);
        b = Param(torch.zeros(classes, dtype: dtype));
        RegisterComponents();
    }

    public Tensor Weight() => P / P.norm(1, keepdim: true, p: 2).clamp_min(1e-12);

    public override Tensor forward(Tensor x) => x.matmul(Weight().t()) + b;

    public override PlainLayer Fold()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var w = Weight();
        return PlainDense(w, b, false);
    }
}

/// <summary>Builds the folded residual layers x − A·ReLU(Vx + b) with A = step·Vᵀ (dense) or step·flip(Vᵀ) (conv).</summary>
internal static class Residual
{
    public static PlainLayer Dense(Tensor v, Tensor b, double step) =>
        new(PlainKind.ResidualDense, [(int)v.shape[0], (int)v.shape[1]], step, false)
        {
            Tensors =
            {
                ["V"] = LipschitzModule.Arr(v),
                ["b"] = LipschitzModule.Arr(b),
                ["A"] = LipschitzModule.Arr(v.t() * step),
            },
        };

    public static PlainLayer Conv(Tensor v, Tensor b, double step, int h, int w) =>
        new(PlainKind.ResidualConv, [(int)v.shape[0], (int)v.shape[1], (int)v.shape[2], (int)v.shape[3], h, w], step, false)
        {
            Tensors =
            {
                ["V"] = LipschitzModule.Arr(v),
                ["b"] = LipschitzModule.Arr(b),
                ["A"] = LipschitzModule.Arr(LipschitzModule.AdjointKernel(v) * step),
            },
        };
}
