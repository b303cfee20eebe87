using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>The architecture of a FOTON network (persisted as JSON).</summary>
internal sealed record FotonArchitecture(int InputSize, int[] HiddenSizes, int Classes, FotonActivation Activation)
{
    /// <summary>Layer names, input side first: fc0, fc1, …, out.</summary>
    public string[] LayerNames() => [.. Enumerable.Range(0, HiddenSizes.Length).Select(i => $"fc{i}"), "out"];

    /// <summary>[d_out, d_in] of every layer.</summary>
    public (int Out, int In)[] Shapes()
    {
        var dims = new[] { InputSize }.Concat(HiddenSizes).Append(Classes).ToArray();
        return [.. Enumerable.Range(0, dims.Length - 1).Select(i => (dims[i + 1], dims[i]))];
    }
}

/// <summary>How the weights start.</summary>
internal enum FotonInit
{
    /// <summary>FOTON: hidden layers orthogonal (QR of a Gaussian), output layer U(±1/√d_in) as PyTorch's Linear.</summary>
    Orthogonal,

    /// <summary>PEPITA: He-uniform U(±√(6/d_in)) everywhere.</summary>
    HeUniform,
}

/// <summary>
/// The MLP that FOTON trains: weights W_i ∈ R^{d_{i+1}×d_i} without biases, hidden block
/// H_i = σ(M_i ⊙ H_{i−1}W_iᵀ) (M_i the dropout mask scaled by 1/(1−p), or none), logits Y = H_{L−1}W_Lᵀ.
/// Plain tensors, not a module: every step updates them in place without autograd.
/// </summary>
internal sealed class OrthogonalMlp : IDisposable
{
    public OrthogonalMlp(FotonArchitecture architecture, Tensor[] weights)
    {
        Architecture = architecture;
        Names = architecture.LayerNames();
        var shapes = architecture.Shapes();
        if (weights.Length != shapes.Length)
            throw new ArgumentException($"Expected {shapes.Length} weight matrices, got {weights.Length}.", nameof(weights));
        for (int i = 0; i < shapes.Length; i++)
        {
            if (weights[i].shape.Length != 2 || weights[i].shape[0] != shapes[i].Out || weights[i].shape[1] != shapes[i].In)
                throw new ArgumentException($"Layer '{Names[i]}': weight shape [{string.Join(", ", weights[i].shape)}], expected [{shapes[i].Out}, {shapes[i].In}].", nameof(weights));
        }
        Weights = weights;
    }

    public FotonArchitecture Architecture { get; }

    /// <summary>Layer names (fc0, …, out), aligned with <see cref="Weights"/>.</summary>
    public string[] Names { get; }

    public Tensor[] Weights { get; }

    /// <summary>Index of the output layer (L).</summary>
    public int OutputIndex => Weights.Length - 1;

    /// <summary>Creates initial weights from <paramref name="generator"/>.</summary>
    public static OrthogonalMlp Create(FotonArchitecture a, FotonInit init, Generator generator, ScalarType dtype, Device device)
    {
        var shapes = a.Shapes();
        var weights = new Tensor[shapes.Length];
        for (int i = 0; i < shapes.Length; i++)
        {
            var (o, n) = shapes[i];
            bool output = i == shapes.Length - 1;
            weights[i] = init == FotonInit.HeUniform ? Uniform(o, n, Math.Sqrt(6.0 / n), generator, dtype, device)
                : output ? Uniform(o, n, 1.0 / Math.Sqrt(n), generator, dtype, device)
                : Orthogonal(o, n, generator, dtype, device);
        }
        return new OrthogonalMlp(a, weights);
    }

    /// <summary>A semi-orthogonal [rows, cols] matrix: QR of a Gaussian with the signs of diag(R) (as torch.nn.init.orthogonal_).</summary>
    public static Tensor Orthogonal(long rows, long cols, Generator generator, ScalarType dtype, Device device)
    {
        using var scope = torch.NewDisposeScope();
        var flat = torch.randn([rows, cols], dtype: ScalarType.Float64, generator: generator);
        if (rows < cols)
            flat = flat.t();
        var (q, r) = torch.linalg.qr(flat);
        q = q * r.diagonal().sign().unsqueeze(0);
        if (rows < cols)
            q = q.t();
        return q.contiguous().to(dtype, device).MoveToOuterDisposeScope();
    }

    private static Tensor Uniform(long rows, long cols, double bound, Generator generator, ScalarType dtype, Device device)
    {
        var w = torch.empty([rows, cols], dtype: dtype, device: device);
        nn.init.uniform_(w, -bound, bound, generator);
        return w;
    }

    /// <summary>The hidden activation σ.</summary>
    public Tensor Activate(Tensor a) => Architecture.Activation switch
    {
        FotonActivation.Tanh => a.tanh(),
        FotonActivation.Identity => a,
        FotonActivation.MaxMin => MaxMin(a),
        _ => a.relu(),
    };

    private static Tensor MaxMin(Tensor a)
    {
        long half = a.shape[1] / 2;
        var x = a.narrow(1, 0, half);
        var y = a.narrow(1, half, half);
        return torch.cat([x.maximum(y), x.minimum(y)], 1);
    }

    /// <summary>
    /// Forward pass: returns the hidden block outputs H_0..H_{L−1} (post-mask, post-activation) and the
    /// logits (null when <paramref name="withOutput"/> is false). <paramref name="weights"/> defaults to
    /// <see cref="Weights"/> (autograd probes pass copies).
    /// </summary>
    public (Tensor[] H, Tensor? Y) Forward(Tensor x, Tensor?[]? masks, bool withOutput = true, IReadOnlyList<Tensor>? weights = null)
    {
        var (h, _, y) = ForwardWithPreActivations(x, masks, withOutput, weights);
        return (h, y);
    }

    /// <summary>As <see cref="Forward"/>, also returning the masked pre-activations Â_i = M_i ⊙ H_{i−1}W_iᵀ.</summary>
    public (Tensor[] H, Tensor[] A, Tensor? Y) ForwardWithPreActivations(Tensor x, Tensor?[]? masks, bool withOutput = true, IReadOnlyList<Tensor>? weights = null)
    {
        var w = weights ?? Weights;
        int l = w.Count - 1;
        var h = new Tensor[l];
        var pre = new Tensor[l];
        var cur = x;
        for (int i = 0; i < l; i++)
        {
            var a = cur.mm(w[i].t());
            if (masks?[i] is Tensor m)
                a = a * m;
            pre[i] = a;
            cur = Activate(a);
            h[i] = cur;
        }
        return (h, pre, withOutput ? cur.mm(w[l].t()) : null);
    }

    /// <summary>
    /// The second (modulated) forward pass, evaluated as differences: given the clean pass (Â_i, H_i) and
    /// Δ_{−1} = X − X̃, returns Δ_i = H_i − H̃_i where H̃_i = σ(M_i ⊙ H̃_{i−1}W_iᵀ). In exact arithmetic this is
    /// the same pass; in float32 it avoids the cancellation of subtracting two nearly equal activations
    /// (|H| ≫ |H − H̃|), which at depth 50 would cost three digits: the pre-activation difference
    /// δÂ_i = M_i ⊙ Δ_{i−1}W_iᵀ is propagated exactly, and σ(Â) − σ(Â − δÂ) is taken piecewise (ReLU,
    /// MaxMin: δÂ where both passes take the same branch) or through tanh a − tanh b = tanh(a − b)(1 − tanh a tanh b).
    /// </summary>
    public Tensor[] ModulatedDifferences(Tensor[] h, Tensor[] pre, Tensor delta0, Tensor?[]? masks)
    {
        int l = OutputIndex;
        var d = new Tensor[l];
        var cur = delta0;
        for (int i = 0; i < l; i++)
        {
            var da = cur.mm(Weights[i].t());
            if (masks?[i] is Tensor m)
                da = da * m;
            var a = pre[i];
            var aMod = a - da;
            cur = Architecture.Activation switch
            {
                FotonActivation.Identity => da,
                FotonActivation.Tanh => da.tanh() * (1 - h[i] * aMod.tanh()),
                FotonActivation.MaxMin => MaxMinDifference(a, aMod, da, h[i]),
                _ => torch.where(a.gt(0).logical_and(aMod.gt(0)), da, a.relu() - aMod.relu()),
            };
            d[i] = cur;
        }
        return d;
    }

    private static Tensor MaxMinDifference(Tensor a, Tensor aMod, Tensor da, Tensor h)
    {
        long half = a.shape[1] / 2;
        Tensor First(Tensor t) => t.narrow(1, 0, half);
        Tensor Second(Tensor t) => t.narrow(1, half, half);
        var clean = First(a).ge(Second(a));
        var mod = First(aMod).ge(Second(aMod));
        var direct = h - MaxMin(aMod);
        var sameFirst = clean.logical_and(mod);
        var sameSecond = clean.logical_not().logical_and(mod.logical_not());
        // max half: δa where both passes pick a, δb where both pick b; min half: the other one.
        var dMax = torch.where(sameFirst, First(da), torch.where(sameSecond, Second(da), First(direct)));
        var dMin = torch.where(sameFirst, Second(da), torch.where(sameSecond, First(da), Second(direct)));
        return torch.cat([dMax, dMin], 1);
    }

    /// <summary>Fᵀ = W_L W_{L−1} ⋯ W_0 ∈ R^{C×d_0}, built from the output side (a C×d chain: C·Σ d_{i+1}d_i flops).</summary>
    public Tensor FTranspose()
    {
        var f = Weights[OutputIndex];
        for (int i = OutputIndex - 1; i >= 0; i--)
            f = f.mm(Weights[i]);
        return OutputIndex == 0 ? f.clone() : f;
    }

    public void Dispose()
    {
        foreach (var w in Weights)
            w.Dispose();
    }
}
