using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Torch;

/// <summary>
/// LeakyReLU with its slope passed as a kept Scalar: TorchSharp's <c>nn.LeakyReLU</c> converts its double slope to a
/// temporary Scalar on every call (see <see cref="KeptScalars"/>). Same native call, so the same values.
/// </summary>
internal sealed class LeakyRelu(double negativeSlope) : nn.Module<Tensor, Tensor>("LeakyReLU")
{
    public override Tensor forward(Tensor x)
    {
        using var kept = new KeptScalars();
        return x.leaky_relu(kept.Of(negativeSlope));
    }
}
