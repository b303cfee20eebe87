using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>What tells FOTON's step from PEPITA's; everything else in <see cref="FotonStep.Run"/> is shared.</summary>
/// <param name="Sign">The modulation X̃ = X + Sign·E·Fᵀ: −1 for FOTON, +1 for PEPITA.</param>
/// <param name="ModulatedPresynaptic">The pre-synaptic factor of G_i: the clean H_{i−1} (FOTON) or the modulated
/// H̃_{i−1} (PEPITA; X̃ for the first layer, also for the output layer's G_L).</param>
internal sealed record ForwardOnlyRule(double Sign, bool ModulatedPresynaptic)
{
    /// <summary>FOTON: X̃ = X − E·Fᵀ with Fᵀ = W_L⋯W_0, clean pre-synaptic activity.</summary>
    public static ForwardOnlyRule Foton { get; } = new(-1, ModulatedPresynaptic: false);

    /// <summary>PEPITA (Dellaferrera and Kreiman 2022): X̃ = X + E·Fᵀ with a fixed random F, modulated pre-synaptic activity.</summary>
    public static ForwardOnlyRule Pepita { get; } = new(+1, ModulatedPresynaptic: true);
}

/// <summary>
/// The forward-only training step of FOTON (Caillon, Colagrande et al. 2025; docs/components/foton.md, "The
/// algorithm"), the code training runs, for FOTON and PEPITA (<see cref="ForwardOnlyRule"/>). No autograd:
/// <list type="number">
/// <item>clean pass: H_i = σ(M_i ⊙ H_{i−1}W_iᵀ) (H_{−1} = X, M_i the dropout mask), logits Y = H_{L−1}W_Lᵀ;</item>
/// <item>output error E = softmax(τY) − T;</item>
/// <item>modulated input X̃ = X − E·Fᵀ, Fᵀ = W_L⋯W_0 the current weights (PEPITA: X̃ = X + E·Fᵀ, F fixed and random);</item>
/// <item>modulated pass on X̃ with the same masks, giving H̃_i;</item>
/// <item>local updates G_i = (H_i − H̃_i)ᵀ·H_{i−1}/B with the clean pre-synaptic H_{i−1} (PEPITA: H̃_{i−1}), and
/// the last layer's exact gradient G_L = Eᵀ·H_{L−1}/B.</item>
/// </list>
/// For σ = identity and orthonormal, non-expanding layers H_i − H̃_i telescopes to the backpropagated error, so G_i
/// is exactly ∂(mean CE)/∂W_i.
/// </summary>
/// <remarks>
/// How the same update is made fast and small (each is the rule above in exact arithmetic; the tests compare them
/// with a plain two-pass oracle):
/// <list type="bullet">
/// <item>Steps 4 and 5 run as one sweep over the layers, and each G_i is handed to the caller's <c>apply</c> (its
/// optimizer step and projection) as soon as it is formed: the sweep never reads W_i again after G_i (Fᵀ and the
/// first layer's map are taken before), so layer i may be updated in place right away, and only one layer's update
/// is alive at a time.</item>
/// <item>The modulated pass is taken as differences D_i = H_i − H̃_i: δÂ_i = M_i ⊙ D_{i−1}W_iᵀ is propagated exactly
/// and σ(Â) − σ(Â − δÂ) is taken without the float32 cancellation of subtracting two nearly equal activations
/// (<see cref="OrthogonalMlp.Difference"/>; for tanh from H alone, <see cref="OrthogonalMlp.TanhDifference"/>).</item>
/// <item>The first layer's pre-activation difference is E·(Fᵀ M_0ᵀ) (C×d_1, C·d_0·d_1 flops) rather than
/// (E·Fᵀ)·M_0ᵀ (B·d_0·d_1 flops); FOTON never forms X̃.</item>
/// <item>The clean pass keeps one tensor per hidden layer (H_i for tanh, the masked pre-activation Â_i otherwise, from
/// which H_i = σ(Â_i) is cheap) or, with <c>storeActivations</c> false, only the first layer's pre-activation, and the
/// sweep recomputes the clean pass (one forward pass more, memory independent of depth).</item>
/// </list>
/// </remarks>
internal static class FotonStep
{
    /// <summary>Runs one step and returns the clean logits Y.</summary>
    /// <param name="net">The network (its current weights; <paramref name="apply"/> may update layer i in place once it receives G_i).</param>
    /// <param name="x">Inputs [B, d_0].</param>
    /// <param name="targets">One-hot targets [B, C], same dtype as the weights.</param>
    /// <param name="mask">The scaled dropout mask of hidden layer i (null: none); it must return the same mask every time for a given layer.</param>
    /// <param name="feedback">Fᵀ [C, d_0]: W_L⋯W_0 for FOTON, the fixed random feedback for PEPITA.</param>
    /// <param name="temperature">τ.</param>
    /// <param name="divisor">B in G_i = …/B (the trainer passes max(rows, BatchSize) under <see cref="FotonOptions.ScaleByConfiguredBatchSize"/>).</param>
    /// <param name="apply">Receives (i, G_i) in layer order, input side first; G_i is disposed when it returns.</param>
    /// <param name="rule">FOTON (default) or PEPITA; a FOTON rule with the sign flipped is the tests' negative control.</param>
    /// <param name="storeActivations">Keep one tensor per hidden layer from the clean pass (default) or recompute the clean pass in the sweep.</param>
    /// <param name="inPlace">Plain SGD inside the local update (see <see cref="InPlaceSgd"/>); null: every G_i goes to <paramref name="apply"/>.</param>
    /// <param name="keep">The same masks as <paramref name="mask"/>, as keep bytes: the host float32 kernels (tanh with stored H, ReLU) read them instead of the float masks (no mask tensor).</param>
    public static Tensor Run(OrthogonalMlp net, Tensor x, Tensor targets, Func<int, Tensor?> mask, Tensor feedback, double temperature,
        double divisor, Action<int, Tensor> apply, ForwardOnlyRule? rule = null, bool storeActivations = true, InPlaceSgd? inPlace = null,
        DropoutMasks? keep = null)
    {
        rule ??= ForwardOnlyRule.Foton;
        var stored = CleanPass(net, x, mask, keep, storeActivations, out var y);
        using Scalar tau = temperature.ToScalar();
        using var e = nn.functional.softmax(y.mul(tau), 1).sub_(targets);
        ModulatedPassAndUpdates(net, x, e, mask, keep, feedback, rule, stored, storeActivations, divisor, apply, inPlace);
        return y;
    }

    /// <summary>
    /// Plain SGD (no momentum, no weight decay) applied inside the local update: W_i ← W_i − η·G_i as one
    /// multiply-accumulate into the weights (G_i = Dᵀ·pre/B is never formed: no update tensor and no optimizer pass),
    /// then <paramref name="Updated"/>(i) (the trainer's projection). Dense float32 layers only; the others go through
    /// the step's callback as before. Same update as the callback with SGD, up to float32 rounding.
    /// </summary>
    /// <param name="LearningRate">η.</param>
    /// <param name="Updated">Called with i once W_i holds its update.</param>
    internal sealed record InPlaceSgd(double LearningRate, Action<int> Updated);

    /// <summary>
    /// Step 1: the clean pass. Returns what the sweep keeps per hidden layer (H_i for tanh and Â_i otherwise when
    /// storing; only Â_0 when not) and the logits.
    /// </summary>
    private static Tensor?[] CleanPass(OrthogonalMlp net, Tensor x, Func<int, Tensor?> mask, DropoutMasks? keep, bool storeActivations, out Tensor y)
    {
        int l = net.OutputIndex;
        bool keepH = storeActivations && net.Architecture.Activation == FotonActivation.Tanh;
        var w = net.Weights;
        var stored = new Tensor?[l];
        Tensor cur = x;
        for (int i = 0; i < l; i++)
        {
            using var scope = torch.NewDisposeScope();
            Tensor a, next;
            if (keepH)
            {
                // Only H is kept: for host float32, tanh(M ⊙ A) in one pass (ActivationKernels), M from the keep bytes.
                a = net.Linear(i, cur, w[i]);
                if (keep is not null && ActivationKernels.Applies(a, null) && keep.TryKeep(i, out var bytes, out float scale))
                    next = ActivationKernels.Tanh(a, bytes, scale);
                else
                {
                    var m = mask(i);
                    if (ActivationKernels.Applies(a, m))
                        next = ActivationKernels.Tanh(a, m);
                    else
                    {
                        if (m is not null)
                            a.mul_(m);
                        next = net.Activate(a);
                    }
                }
            }
            else
            {
                a = net.Linear(i, cur, w[i]);
                if (net.Architecture.Activation == FotonActivation.Relu && keep is not null && ActivationKernels.Applies(a, null)
                    && keep.TryKeep(i, out var bytes, out float scale))
                    next = ActivationKernels.MaskRelu(a, bytes, scale); // Â = M ⊙ A in place, H = relu(Â): one pass
                else
                {
                    if (mask(i) is { } m)
                        a.mul_(m);
                    next = net.Activate(a);
                }
            }
            if (storeActivations || i == 0)
            {
                var kept = keepH ? next : a;
                if (ReferenceEquals(kept, next) || ReferenceEquals(next, a))
                    next = next.alias(); // the running activation and the stored tensor are disposed separately
                stored[i] = kept.MoveToOuterDisposeScope();
            }
            next.MoveToOuterDisposeScope();
            if (!ReferenceEquals(cur, x))
                cur.Dispose();
            cur = next;
        }
        y = net.Linear(l, cur, w[l]);
        if (!ReferenceEquals(cur, x))
            cur.Dispose();
        return stored;
    }

    /// <summary>
    /// Steps 3–5, layer by layer: the modulated pass as differences D_i = H_i − H̃_i and G_i = D_iᵀ·pre_{i}/B, each
    /// handed to <paramref name="apply"/> at once; then G_L = Eᵀ·pre_L/B.
    /// </summary>
    private static void ModulatedPassAndUpdates(OrthogonalMlp net, Tensor x, Tensor e, Func<int, Tensor?> mask, DropoutMasks? keep, Tensor feedback,
        ForwardOnlyRule rule, Tensor?[] stored, bool storeActivations, double divisor, Action<int, Tensor> apply, InPlaceSgd? inPlace)
    {
        void Hand(int i, Tensor d, Tensor pre)
        {
            if (inPlace is not null && net.TryAddOuterProduct(i, d, pre, -inPlace.LearningRate / divisor))
                inPlace.Updated(i);
            else
                apply(i, net.OuterProduct(i, d, pre, 1.0 / divisor));
        }

        int l = net.OutputIndex;
        bool keepH = storeActivations && net.Architecture.Activation == FotonActivation.Tanh;
        // Scalars held in locals for the whole sweep (an implicit temporary may be finalised during the native call).
        using Scalar flip = (-rule.Sign).ToScalar(), sign = rule.Sign.ToScalar();
        var w = net.Weights;
        // PEPITA's first pre-synaptic factor is the modulated input itself, X̃ = X + E·Fᵀ.
        using var xMod = rule.ModulatedPresynaptic ? x.add(e.mm(feedback).mul_(sign), KeptScalars.One) : null;
        Tensor cur = x;          // the clean H_{i−1}
        Tensor? delta = null;    // D_{i−1} = H_{i−1} − H̃_{i−1}
        for (int i = 0; i < l; i++)
        {
            Tensor nextCur, nextDelta;
            using (var scope = torch.NewDisposeScope())
            {
                // The mask as a tensor only where it is needed. da is formed unmasked; the host kernels (tanh with stored
                // H, ReLU with stored Â) apply the mask in their own pass, from the keep bytes when given (no mask
                // tensor at all), and anything else masks da here.
                Tensor? m = null;
                bool haveMask = false;
                Tensor? Mask()
                {
                    if (!haveMask)
                        (m, haveMask) = (mask(i), true);
                    return m;
                }
                Tensor da;
                if (i == 0)
                {
                    // δÂ_0 = M_0 ⊙ (X − X̃)·W_0ᵀ = −sign·M_0 ⊙ E·(Fᵀ W_0ᵀ): the C rows of Fᵀ go through the first layer's map.
                    da = e.mm(net.Linear(0, feedback, w[0]));
                    if (rule.Sign != -1)
                        da.mul_(flip);
                }
                else
                    da = net.Linear(i, delta!, w[i]);
                bool relu = net.Architecture.Activation == FotonActivation.Relu && !keepH && stored[i] is not null;
                ReadOnlySpan<byte> kb = default;
                float ks = 0;
                bool bytes = (keepH || relu) && keep is not null && ActivationKernels.Applies(stored[i]!, da)
                    && keep.TryKeep(i, out kb, out ks);
                Tensor? h = null, d = null;
                if (bytes && keepH)
                {
                    d = ActivationKernels.Compute(stored[i]!, da, 1f, kb, ks); // null where some |δ| > 1: the general path
                    h = d is null ? null : stored[i];
                }
                else if (bytes)
                    (d, h) = ActivationKernels.ReluDifferenceAndOutput(stored[i]!, da, kb, ks);
                else if (keepH && Mask() is { } mi && ActivationKernels.Applies(stored[i]!, mi))
                {
                    d = StoredTanhDifference(stored[i]!, da, mi);
                    h = d is null ? null : stored[i];
                }
                if (d is null || h is null)
                {
                    if (Mask() is { } mm)
                        da.mul_(mm);
                    if (keepH && StoredTanhDifference(stored[i]!, da) is { } fromStored)
                    {
                        h = stored[i]!;
                        d = fromStored;
                    }
                    else
                    {
                        // The clean pre-activation: stored (Â_i), or recomputed from the clean H_{i−1} (W_i is not updated yet).
                        var a = stored[i] is Tensor si && !keepH ? si : MaskedLinear(net, i, cur, w[i], Mask());
                        h = keepH ? stored[i]! : net.Activate(a);
                        d = net.Difference(a, da, h);
                    }
                }
                Hand(i, d, Presynaptic(rule, i, x, xMod, cur, delta));
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
        using (var scope = torch.NewDisposeScope())
            Hand(l, e, Presynaptic(rule, l, x, xMod, cur, delta));
        if (!ReferenceEquals(cur, x))
            cur.Dispose();
        delta?.Dispose();
    }

    /// <summary>The pre-synaptic factor of layer i: the clean H_{i−1} (X for i = 0), or for PEPITA H̃_{i−1} = H_{i−1} − D_{i−1} (X̃ for i = 0).</summary>
    private static Tensor Presynaptic(ForwardOnlyRule rule, int i, Tensor x, Tensor? xMod, Tensor clean, Tensor? delta) =>
        !rule.ModulatedPresynaptic ? clean : i == 0 ? xMod! : clean.sub(delta!);

    private static Tensor MaskedLinear(OrthogonalMlp net, int i, Tensor input, Tensor w, Tensor? mask)
    {
        var a = net.Linear(i, input, w);
        return mask is null ? a : a.mul_(mask);
    }

    /// <summary>
    /// <see cref="OrthogonalMlp.TanhDifference"/> from the stored H, or <see langword="null"/> where it is not accurate: it
    /// is (absolute error below 1e-6 from H's own float32 rounding) while |δÂ| ≤ 1. Host float32 tensors check the bound
    /// inside the one-pass kernel; others with one host read per layer. With <paramref name="mask"/>, δÂ = mask ⊙ da is
    /// formed inside the kernel; where the kernel does not apply, null (the caller masks da and takes the general path).
    /// </summary>
    private static Tensor? StoredTanhDifference(Tensor h, Tensor da, Tensor? mask = null)
    {
        if (ActivationKernels.Applies(h, da) && (mask is null || ActivationKernels.Applies(h, mask)))
            return ActivationKernels.Compute(h, da, maxStep: 1f, mask);
        if (mask is not null)
            return null;
        using (var max = da.abs().max())
        {
            if (!(max.ToDouble() <= 1.0))
                return null;
        }
        return OrthogonalMlp.TanhDifference(h, da);
    }
}
