using Allauzen.ML.Foton;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Foton;

/// <summary>The two passes of a forward-only step and the per-layer updates they give (the oracle's intermediates).</summary>
/// <param name="H">Clean-pass hidden outputs H_0..H_{L−1}.</param>
/// <param name="Y">Clean-pass logits.</param>
/// <param name="E">Output error softmax(τY) − T.</param>
/// <param name="XMod">Modulated input X̃.</param>
/// <param name="HMod">Modulated-pass hidden outputs H̃_i.</param>
/// <param name="G">Per-layer updates, aligned with the layer names.</param>
internal sealed record ForwardOnlyUpdate(Tensor[] H, Tensor Y, Tensor E, Tensor XMod, Tensor[] HMod, Tensor[] G);

/// <summary>
/// The tests' oracle for <see cref="FotonStep.Run"/>: the forward-only step written as the algorithm states it, two
/// whole passes with every intermediate kept (X̃ formed, the first layer's modulation as X̃·W_0ᵀ, nothing fused),
/// the modulated pass taken as differences with the same <see cref="OrthogonalMlp.Difference"/> (so that at depth it
/// is comparable in float32). Plus <see cref="Run"/>, which collects the updates the running step hands over.
/// </summary>
internal static class TwoPassOracle
{
    /// <param name="rule">FOTON (default) or PEPITA.</param>
    /// <param name="divisor">B; null for the actual number of rows.</param>
    public static ForwardOnlyUpdate Compute(OrthogonalMlp net, Tensor x, Tensor targets, Tensor?[]? masks, Tensor feedback, double temperature,
        ForwardOnlyRule? rule = null, double? divisor = null)
    {
        rule ??= ForwardOnlyRule.Foton;
        var (h, a, y) = net.ForwardWithPreActivations(x, masks);
        var e = nn.functional.softmax(temperature * y!, 1) - targets;
        var xMod = x + rule.Sign * e.mm(feedback);
        // The modulated pass as differences D_i = H_i − H̃_i, from D_{−1} = X − X̃.
        int l = net.OutputIndex;
        var d = new Tensor[l];
        var cur = x - xMod;
        for (int i = 0; i < l; i++)
        {
            var da = net.Linear(i, cur, net.Weights[i]);
            if (masks?[i] is Tensor m)
                da = da * m;
            cur = net.Difference(a[i], da, h[i]);
            d[i] = cur;
        }
        var hMod = h.Zip(d, (hi, di) => hi - di).ToArray();
        double b = divisor ?? x.shape[0];
        Tensor Pre(int i) => rule.ModulatedPresynaptic ? (i == 0 ? xMod : hMod[i - 1]) : (i == 0 ? x : h[i - 1]);
        var g = new Tensor[l + 1];
        for (int i = 0; i < l; i++)
            g[i] = net.OuterProduct(i, d[i], Pre(i)) / b;
        g[l] = net.OuterProduct(l, e, Pre(l)) / b;
        return new ForwardOnlyUpdate(h, y!, e, xMod, hMod, g);
    }

    /// <summary>The updates G_i and logits of the running step (<see cref="FotonStep.Run"/>), weights left unchanged.</summary>
    public static (Tensor[] G, Tensor Y) Run(OrthogonalMlp net, Tensor x, Tensor targets, Func<int, Tensor?> mask, Tensor feedback, double temperature,
        ForwardOnlyRule? rule = null, bool storeActivations = true, double? divisor = null)
    {
        var g = new Tensor[net.Weights.Length];
        var y = FotonStep.Run(net, x, targets, mask, feedback, temperature, divisor ?? x.shape[0],
            (i, gi) => g[i] = gi.clone().DetachFromDisposeScope(), rule, storeActivations);
        return (g, y);
    }
}
