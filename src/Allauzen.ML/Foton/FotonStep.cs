using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>The two passes of a forward-only step and the per-layer updates they give.</summary>
/// <param name="H">Clean-pass hidden outputs H_0..H_{L−1}.</param>
/// <param name="Y">Clean-pass logits.</param>
/// <param name="E">Output error softmax(τY) − T.</param>
/// <param name="XMod">Modulated input.</param>
/// <param name="HMod">Modulated-pass hidden outputs.</param>
/// <param name="G">Per-layer updates (the "gradients" the optimizer receives), aligned with the layer names.</param>
internal sealed record ForwardOnlyUpdate(Tensor[] H, Tensor Y, Tensor E, Tensor XMod, Tensor[] HMod, Tensor[] G);

/// <summary>
/// The FOTON update (code of Caillon, Colagrande et al. 2025, reconstructed in papers/foton.md §1), without autograd:
/// <list type="number">
/// <item>clean pass → H_i, logits Y; output error E = softmax(τY) − T;</item>
/// <item>modulated input X̃ = X − E·Fᵀ with Fᵀ = W_L⋯W_0 (the current weights);</item>
/// <item>modulated pass on X̃ with the same dropout masks → H̃_i (evaluated as differences H_i − H̃_i, see
/// <see cref="OrthogonalMlp.ModulatedDifferences"/>: the same pass, without float32 cancellation);</item>
/// <item>G_i = (H_i − H̃_i)ᵀ·H_{i−1}/B with the clean pre-synaptic H_{i−1} (X for i = 0); G_L = Eᵀ·H_{L−1}/B.</item>
/// </list>
/// For σ = identity and orthonormal rows, H_i − H̃_i telescopes to the backpropagated error, so G_i is exactly
/// ∂(mean CE)/∂W_i. B is the actual batch size by default; the trainer follows the reference and divides by the
/// configured batch size (<see cref="FotonOptions.ScaleByConfiguredBatchSize"/>), which shrinks the step of an epoch's
/// last, partial batch.
/// </summary>
internal static class FotonStep
{
    /// <param name="net">The network (its current weights).</param>
    /// <param name="x">Inputs [B, d_0].</param>
    /// <param name="targets">One-hot targets [B, C], same dtype as the weights.</param>
    /// <param name="masks">Scaled dropout masks per hidden layer, or null.</param>
    /// <param name="fTranspose">Fᵀ [C, d_0].</param>
    /// <param name="temperature">τ.</param>
    /// <param name="sign">−1 for FOTON's X − E·Fᵀ; +1 flips the modulation (a negative control).</param>
    /// <param name="divisor">B in G_i = …/B: null (default) for the actual number of rows; the trainer passes
    /// max(rows, BatchSize) under <see cref="FotonOptions.ScaleByConfiguredBatchSize"/>.</param>
    public static ForwardOnlyUpdate Compute(OrthogonalMlp net, Tensor x, Tensor targets, Tensor?[]? masks, Tensor fTranspose,
        double temperature, double sign = -1, double? divisor = null)
    {
        var (h, a, y) = net.ForwardWithPreActivations(x, masks);
        var e = nn.functional.softmax(temperature * y!, 1) - targets;
        var delta0 = -sign * e.mm(fTranspose);
        var xMod = x - delta0;
        var d = net.ModulatedDifferences(h, a, delta0, masks);
        var hMod = h.Zip(d, (hi, di) => hi - di).ToArray();
        double b = divisor ?? x.shape[0];
        int l = net.OutputIndex;
        var g = new Tensor[l + 1];
        for (int i = 0; i < l; i++)
        {
            var pre = i == 0 ? x : h[i - 1];
            g[i] = net.OuterProduct(i, d[i], pre) / b;
        }
        g[l] = net.OuterProduct(l, e, l == 0 ? x : h[l - 1]) / b;
        return new ForwardOnlyUpdate(h, y!, e, xMod, hMod, g);
    }

    /// <summary>
    /// The same update, fused with the optimizer (our schedule). A first clean pass keeps, per hidden layer, the one
    /// tensor the second sweep needs (<paramref name="storeActivations"/>: H_i for tanh, the masked pre-activation
    /// Â_i otherwise, from which H_i = σ(Â_i) is cheap) or nothing but the logits and the first layer's
    /// pre-activation (memory independent of depth; the sweep then recomputes the clean pass, one forward pass
    /// more). The sweep runs the modulated pass as differences layer by layer and forms G_i on the fly. The
    /// modulated input is never formed: its first-layer pre-activation is E·(Fᵀ M_0ᵀ) (C×d_1, C·d_0·d_1 flops)
    /// instead of (E·Fᵀ)·M_0ᵀ (B·d_0·d_1 flops), the same linear map. Masks come from <paramref name="mask"/>,
    /// which must return the same mask every time for a given layer. With <paramref name="apply"/>, each G_i is
    /// handed to it as soon as it is formed and then freed (the returned array holds nulls): the sweep never
    /// reads W_i again once G_i is known (Fᵀ and the first layer's map were taken before), so the caller may
    /// update and project layer i in place right away, and only one layer's update is alive at a time.
    /// </summary>
    public static (Tensor[] G, Tensor Y) ComputeFused(OrthogonalMlp net, Tensor x, Tensor targets, Func<int, Tensor?> mask,
        Tensor fTranspose, double temperature, double sign = -1, Action<int, Tensor>? apply = null, double? divisor = null,
        bool storeActivations = false)
    {
        int l = net.OutputIndex;
        bool tanh = net.Architecture.Activation == FotonActivation.Tanh;
        // Scalars held in locals for the whole sweep (an implicit temporary may be finalised during the native call).
        using Scalar invBatch = (1.0 / (divisor ?? x.shape[0])).ToScalar(), tau = temperature.ToScalar(), flip = (-sign).ToScalar();
        var w = net.Weights;
        // stored[i]: H_i (tanh) or Â_i (other activations) when storing; else only stored[0] = Â_0.
        var stored = new Tensor?[l];
        Tensor cur = x;
        for (int i = 0; i < l; i++)
        {
            using var scope = torch.NewDisposeScope();
            var a = MaskedLinear(net, i, cur, w[i], mask(i));
            var next = net.Activate(a);
            if (storeActivations || i == 0)
            {
                var keep = storeActivations && tanh ? next : a;
                if (ReferenceEquals(keep, next) || ReferenceEquals(next, a))
                    next = next.alias(); // the running activation and the stored tensor are disposed separately
                stored[i] = keep.MoveToOuterDisposeScope();
            }
            next.MoveToOuterDisposeScope();
            if (!ReferenceEquals(cur, x))
                cur.Dispose();
            cur = next;
        }
        var y = net.Linear(l, cur, w[l]);
        if (!ReferenceEquals(cur, x))
            cur.Dispose();
        var e = nn.functional.softmax(y.mul(tau), 1).sub_(targets);
        var g = new Tensor[l + 1];
        cur = x;
        Tensor? delta = null;
        for (int i = 0; i < l; i++)
        {
            Tensor nextCur, nextDelta;
            using (var scope = torch.NewDisposeScope())
            {
                var m = mask(i);
                Tensor da;
                if (i == 0)
                {
                    // δA_0 = (X − X̃)·M_0ᵀ = −sign·E·(Fᵀ M_0ᵀ): the C rows of Fᵀ go through the first layer's map.
                    da = e.mm(net.Linear(0, fTranspose, w[0]));
                    if (sign != -1)
                        da.mul_(flip);
                    if (m is not null)
                        da.mul_(m);
                }
                else
                    da = MaskedLinear(net, i, delta!, w[i], m);
                Tensor h, d;
                if (tanh && storeActivations && TanhFastPathApplies(da))
                {
                    h = stored[i]!;
                    d = OrthogonalMlp.TanhDifference(h, da);
                }
                else
                {
                    // The clean pre-activation: stored (Â_i), or recomputed from the clean H_{i−1} (W_i is not updated yet).
                    var a = stored[i] is Tensor si && !(tanh && storeActivations) ? si : MaskedLinear(net, i, cur, w[i], m);
                    h = tanh && storeActivations ? stored[i]! : net.Activate(a);
                    d = net.Difference(a, da, h);
                }
                var gi = net.OuterProduct(i, d, cur).mul_(invBatch);
                if (apply is null)
                    g[i] = gi.MoveToOuterDisposeScope();
                else
                    apply(i, gi);
                nextCur = (ReferenceEquals(h, stored[i]) ? h.alias() : h).MoveToOuterDisposeScope();
                nextDelta = d.MoveToOuterDisposeScope();
            }
            if (!ReferenceEquals(cur, x))
                cur.Dispose();
            delta?.Dispose();
            stored[i]?.Dispose();
            stored[i] = null;
            cur = nextCur;
            delta = nextDelta;
        }
        g[l] = net.OuterProduct(l, e, cur).mul_(invBatch);
        if (apply is not null)
        {
            apply(l, g[l]);
            g[l].Dispose();
            g[l] = null!;
        }
        if (!ReferenceEquals(cur, x))
            cur.Dispose();
        delta?.Dispose();
        return (g, y);
    }

    private static Tensor MaskedLinear(OrthogonalMlp net, int i, Tensor input, Tensor w, Tensor? mask)
    {
        var a = net.Linear(i, input, w);
        return mask is null ? a : a.mul_(mask);
    }

    /// <summary>
    /// <see cref="OrthogonalMlp.TanhDifference"/> is accurate (absolute error below 1e-6 from H's own float32 rounding)
    /// while |δÂ| ≤ 1; one host read per layer.
    /// </summary>
    private static bool TanhFastPathApplies(Tensor da)
    {
        using var max = da.abs().max();
        return max.ToDouble() <= 1.0;
    }
}
