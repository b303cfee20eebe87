using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Lipschitz;

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
                ["A"] = LipschitzModule.Arr(Scaled(v.t(), step)),
            },
        };

    public static PlainLayer Conv(Tensor v, Tensor b, double step, int h, int w) =>
        new(PlainKind.ResidualConv, [(int)v.shape[0], (int)v.shape[1], (int)v.shape[2], (int)v.shape[3], h, w], step, false)
        {
            Tensors =
            {
                ["V"] = LipschitzModule.Arr(v),
                ["b"] = LipschitzModule.Arr(b),
                ["A"] = LipschitzModule.Arr(Scaled(LipschitzModule.AdjointKernel(v), step)),
            },
        };

    private static Tensor Scaled(Tensor t, double step)
    {
        using var kept = new KeptScalars();
        return t * kept.Of(step);
    }
}
