using Allauzen.ML.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Allauzen.ML.Lipschitz;

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
        var y = x.matmul(Weight().t()).add(b, KeptScalars.One);
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
            using var kept = new KeptScalars();
            p.add_(torch.randn_like(p) * kept.Of(0.01), KeptScalars.One);
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
