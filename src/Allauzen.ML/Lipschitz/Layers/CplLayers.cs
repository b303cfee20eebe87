using Allauzen.ML.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Allauzen.ML.Lipschitz;

/// <summary>How a CPL layer gets σ = ‖W‖. Only <see cref="Gram"/> is certifiable.</summary>
internal enum CplSigma
{
    /// <summary>Gram-iteration upper bound (float64): the layer is 1-Lipschitz by construction.</summary>
    Gram,

    /// <summary>One power-iteration step from a random start (the reference code's training-time estimate): a lower bound. Negative control only.</summary>
    PowerIteration1,
}

/// <summary>
/// A CPL layer (Meunier et al., ICML 2022): y = x − (2/σ²)·Wᵀ ReLU(Wx + b), the explicit Euler step on a convex potential,
/// 1-Lipschitz when σ is an <b>upper</b> bound on ‖W‖. The dense and convolutional layers differ only in the operator W
/// (<see cref="PotentialGradient"/>), its Gram bound (<see cref="GramBound"/>) and its folded form; the σ logic is here: a float32 bound
/// on the device in training, a float64 bound in eval mode (cached until the next <c>train</c> call) and when folding.
/// </summary>
internal abstract class CplLayer : LipschitzModule
{
    internal readonly Parameter W;
    internal readonly Parameter b;
    private readonly CplSigma _sigmaKind;
    private double _cachedSigma = double.NaN;

    /// <summary>A layer with Xavier-normal weights of <paramref name="shape"/> ([inner, …]) and zero biases.</summary>
    private protected CplLayer(string name, long[] shape, ScalarType dtype, CplSigma sigma) : base(name)
    {
        var w = torch.empty(shape, dtype: dtype);
        nn.init.xavier_normal_(w);
        W = Param(w);
        b = Param(torch.zeros(shape[0], dtype: dtype));
        _sigmaKind = sigma;
        RegisterComponents();
    }

    /// <summary>Gram iterations of the training-time σ (float32, on the device, no host synchronisation).</summary>
    internal const int TrainingIterations = 6;

    /// <summary>Gram iterations of the float64 σ used in eval mode and folded into the deployed weights.</summary>
    internal const int FoldIterations = 8;

    /// <summary>An upper bound on ‖W‖ for the operator of this layer (a scalar tensor of <paramref name="w"/>'s type).</summary>
    private protected abstract Tensor GramBound(Tensor w, int iterations);

    /// <summary>One power-iteration step from a fixed random start (a lower bound on ‖W‖): the negative control.</summary>
    private protected abstract double OnePowerStep(Tensor w);

    /// <summary>Wᵀ ReLU(Wx + b) for this layer's operator.</summary>
    private protected abstract Tensor PotentialGradient(Tensor x);

    /// <summary>The plain layer x − step·Wᵀ ReLU(Wx + b) from float64 weights.</summary>
    private protected abstract PlainLayer FoldResidual(Tensor w, Tensor bias, double step);

    /// <summary>
    /// The training-time step h = 2/σ² as a tensor, from a float32 Gram bound computed without gradient: the σ of the
    /// trained function. The certified constant does not rest on it: eval mode and <see cref="Fold"/> recompute σ in float64.
    /// </summary>
    internal static Tensor TrainingStep(Tensor sigma)
    {
        using var _ = torch.no_grad();
        using var kept = new KeptScalars();
        return kept.Of(2) / sigma.square();
    }

    /// <summary>σ used by the layer in eval mode and when folding (float64 Gram bound, cached in eval mode).</summary>
    public double Sigma(int iterations = FoldIterations)
    {
        bool cache = !training && iterations == FoldIterations;
        if (cache && !double.IsNaN(_cachedSigma))
            return _cachedSigma;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var w = W.to(ScalarType.Float64);
        double s = _sigmaKind == CplSigma.Gram ? GramBound(w, iterations).item<double>() : OnePowerStep(w);
        if (cache)
            _cachedSigma = s;
        return s;
    }

    public override Tensor forward(Tensor x)
    {
        var r = PotentialGradient(x);
        if (training && _sigmaKind == CplSigma.Gram)
            return x - TrainingStep(GramBound(W.detach(), TrainingIterations)) * r;
        double s = Sigma(FoldIterations);
        using var kept = new KeptScalars();
        return x - kept.Of(2 / (s * s)) * r;
    }

    public override PlainLayer Fold()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        _cachedSigma = double.NaN;
        double s = Sigma(FoldIterations);
        return FoldResidual(W.to(ScalarType.Float64), b.to(ScalarType.Float64), 2 / (s * s));
    }

    public override void train(bool mode = true)
    {
        _cachedSigma = double.NaN;
        base.train(mode);
    }
}

/// <summary>
/// CPL dense layer: y = x − (2/σ²)·Wᵀ ReLU(Wx + b) with σ an <b>upper</b> bound on ‖W‖ (Gram iteration), so the explicit
/// Euler step on a convex potential is 1-Lipschitz.
/// </summary>
internal sealed class CplDense(int features, int inner, ScalarType dtype = ScalarType.Float32, CplSigma sigma = CplSigma.Gram)
    : CplLayer("CplDense", [inner, features], dtype, sigma)
{
    private protected override Tensor GramBound(Tensor w, int iterations) => GramIteration.Dense(w, iterations);

    private protected override double OnePowerStep(Tensor w)
    {
        using var gen = new torch.Generator(5);
        var u = torch.randn([w.shape[0]], dtype: ScalarType.Float64, generator: gen);
        var v = w.t().matmul(u);
        v = v / v.norm();
        return w.matmul(v).norm().item<double>();
    }

    private protected override Tensor PotentialGradient(Tensor x) => F.relu(x.matmul(W.t()).add(b, KeptScalars.One)).matmul(W);

    private protected override PlainLayer FoldResidual(Tensor w, Tensor bias, double step) => Residual.Dense(w, bias, step);
}

/// <summary>
/// CPL convolutional layer: y = x − (2/σ²)·convᵀ(ReLU(conv(x, K) + b), K), zero padding (k−1)/2, with σ the
/// zero-padding Gram bound (circular Gram on the (h+k−1) × (w+k−1) grid) at the layer's real input size.
/// </summary>
internal sealed class CplConv : CplLayer
{
    private readonly int _h, _w, _pad;

    public CplConv(int channels, int inner, int kernel, int height, int width, ScalarType dtype = ScalarType.Float32,
        CplSigma sigma = CplSigma.Gram) : base("CplConv", [inner, channels, Odd(kernel), kernel], dtype, sigma)
    {
        _h = height;
        _w = width;
        _pad = (kernel - 1) / 2;
    }

    private static int Odd(int kernel) => kernel % 2 == 1
        ? kernel
        : throw new ArgumentOutOfRangeException(nameof(kernel), kernel, "Kernel size must be odd ('same' padding).");

    private protected override Tensor GramBound(Tensor w, int iterations)
    {
        int k = (int)w.shape[2];
        return GramIteration.Circular(w, _h + k - 1, _w + k - 1, iterations);
    }

    private protected override double OnePowerStep(Tensor w)
    {
        using var gen = new torch.Generator(9);
        var y = torch.randn([1, w.shape[0], _h, _w], dtype: ScalarType.Float64, generator: gen);
        var x = F.conv_transpose2d(y, w, padding: [_pad, _pad]);
        x = x / x.norm();
        return F.conv2d(x, w, padding: [_pad, _pad]).norm().item<double>();
    }

    private protected override Tensor PotentialGradient(Tensor x) =>
        F.conv_transpose2d(F.relu(F.conv2d(x, W, b, padding: [_pad, _pad])), W, padding: [_pad, _pad]);

    private protected override PlainLayer FoldResidual(Tensor w, Tensor bias, double step) => Residual.Conv(w, bias, step, _h, _w);
}
