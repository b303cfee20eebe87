using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Lipschitz;

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
