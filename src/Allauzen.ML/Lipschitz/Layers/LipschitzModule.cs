using Allauzen.ML.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

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
    internal static Tensor SafeInv(Tensor x)
    {
        using var kept = new KeptScalars();
        return torch.where(x > kept.Of(0), kept.Of(1) / x.clamp_min(kept.Of(1e-300)), torch.zeros_like(x));
    }

    /// <summary>Full 2-D self-correlation of a batch of kernels: out[i, j] = Σ_c corr(K_i,c, K_j,c), size 2S−1.</summary>
    internal static Tensor SelfCorrelation(Tensor k) => GramIteration.SelfCorrelation(k);

    /// <summary>The adjoint of a 'same' convolution with kernel V (odd k) written as a convolution: flip(Vᵀ).</summary>
    internal static Tensor AdjointKernel(Tensor v) => v.transpose(0, 1).flip(2, 3);
}
