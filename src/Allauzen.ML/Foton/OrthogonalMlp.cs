using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// The architecture of a FOTON network (persisted as JSON): optional patch-orthogonal convolutions on an
/// input of shape <see cref="InputShape"/> (C, H, W), then dense hidden layers, then the output layer.
/// </summary>
internal sealed record FotonArchitecture(int InputSize, int[] HiddenSizes, int Classes, FotonActivation Activation,
    int[]? InputShape = null, int[]? ConvChannels = null, int ConvKernel = 2)
{
    /// <summary>Number of convolution layers.</summary>
    public int ConvCount => ConvChannels?.Length ?? 0;

    /// <summary>Layer names, input side first: conv0, …, fc0, fc1, …, out.</summary>
    public string[] LayerNames() =>
        [.. Enumerable.Range(0, ConvCount).Select(i => $"conv{i}"), .. Enumerable.Range(0, HiddenSizes.Length).Select(i => $"fc{i}"), "out"];

    /// <summary>Geometry of convolution layer <paramref name="j"/>: input (C, H, W), kernel (= stride), output channels.</summary>
    public ConvGeometry Conv(int j)
    {
        int c = InputShape![0], h = InputShape[1], w = InputShape[2];
        for (int i = 0; i < j; i++)
        {
            c = ConvChannels![i];
            h /= ConvKernel;
            w /= ConvKernel;
        }
        return new ConvGeometry(c, h, w, ConvKernel, ConvChannels![j]);
    }

    /// <summary>[rows, cols] of every weight matrix: a convolution's kernel is [C_out, C_in·k·k].</summary>
    public (int Out, int In)[] Shapes()
    {
        var result = new List<(int, int)>();
        int width = InputSize;
        for (int j = 0; j < ConvCount; j++)
        {
            var g = Conv(j);
            result.Add((g.OutChannels, g.InChannels * g.Kernel * g.Kernel));
            width = g.OutputSize;
        }
        foreach (int hdim in HiddenSizes.Append(Classes))
        {
            result.Add((hdim, width));
            width = hdim;
        }
        return [.. result];
    }

    /// <summary>Flat widths: the input, then the output of every layer.</summary>
    public int[] FlatWidths()
    {
        var widths = new List<int> { InputSize };
        for (int j = 0; j < ConvCount; j++)
            widths.Add(Conv(j).OutputSize);
        widths.AddRange(HiddenSizes);
        widths.Add(Classes);
        return [.. widths];
    }
}

/// <summary>
/// A patch-orthogonal convolution: kernel k, stride k, no padding, so that as a linear map on the flattened
/// (C, H, W) input it is block-diagonal over the non-overlapping patches with the same [C_out, C_in·k·k]
/// block — orthonormal rows of the block give orthonormal rows of the whole map, and FOTON's equivalence
/// with backprop holds as for a dense layer (when C_out ≤ C_in·k·k).
/// </summary>
internal sealed record ConvGeometry(int InChannels, int Height, int Width, int Kernel, int OutChannels)
{
    public int OutHeight => Height / Kernel;

    public int OutWidth => Width / Kernel;

    public int OutputSize => OutChannels * OutHeight * OutWidth;

    /// <summary>Flat [B, C·H·W] → patch rows [B·H'·W', C·k·k] (each row ordered C, kh, kw as a Conv weight).</summary>
    public Tensor Patches(Tensor x)
    {
        long b = x.shape[0];
        return x.reshape(b, InChannels, OutHeight, Kernel, OutWidth, Kernel).permute(0, 2, 4, 1, 3, 5)
            .reshape(b * OutHeight * OutWidth, InChannels * Kernel * Kernel);
    }

    /// <summary>Inverse of <see cref="Patches"/>: patch rows → flat [B, C·H·W].</summary>
    public Tensor FromPatches(Tensor rows)
    {
        long b = rows.shape[0] / (OutHeight * OutWidth);
        return rows.reshape(b, OutHeight, OutWidth, InChannels, Kernel, Kernel).permute(0, 3, 1, 4, 2, 5).reshape(b, InChannels * Height * Width);
    }

    /// <summary>Flat output [B, C_out·H'·W'] (channel-major, as a Conv output) → rows [B·H'·W', C_out].</summary>
    public Tensor OutputRows(Tensor y)
    {
        long b = y.shape[0];
        return y.reshape(b, OutChannels, OutHeight * OutWidth).permute(0, 2, 1).reshape(b * OutHeight * OutWidth, OutChannels);
    }

    /// <summary>Inverse of <see cref="OutputRows"/>.</summary>
    public Tensor FromOutputRows(Tensor rows)
    {
        long b = rows.shape[0] / (OutHeight * OutWidth);
        return rows.reshape(b, OutHeight * OutWidth, OutChannels).permute(0, 2, 1).reshape(b, OutputSize);
    }
}

/// <summary>How the weights start.</summary>
internal enum FotonInit
{
    /// <summary>FOTON: hidden layers orthogonal (QR of a Gaussian), output layer U(±1/√d_in) as PyTorch's Linear.</summary>
    Orthogonal,

    /// <summary>PEPITA: He-uniform U(±√(6/d_in)) everywhere.</summary>
    HeUniform,

    /// <summary>
    /// Plain backprop, as the reference measurements' baseline (an nn.Sequential with orthogonal init on every layer):
    /// the output layer orthogonal too (an output layer at U(±1/√d) starts with smaller logits and trains backprop to a
    /// lower accuracy at the same budget; see docs/results/foton.md).
    /// </summary>
    OrthogonalAll,
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
                : output && init == FotonInit.Orthogonal ? Uniform(o, n, 1.0 / Math.Sqrt(n), generator, dtype, device)
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
            var a = Linear(i, cur, w[i]);
            if (masks?[i] is Tensor m)
                a = a * m;
            pre[i] = a;
            cur = Activate(a);
            h[i] = cur;
        }
        return (h, pre, withOutput ? Linear(l, cur, w[l]) : null);
    }

    /// <summary>
    /// σ(a) − σ(a − da) given h = σ(a): one layer of the modulated pass taken as a difference, D_i = H_i − H̃_i with
    /// H̃_i = σ(Â_i − δÂ_i). In exact arithmetic this is σ(Â) − σ(Â − δÂ); in float32 it avoids the cancellation of
    /// subtracting two nearly equal activations (|H| ≫ |H − H̃|), which at depth 50 would cost three digits: ReLU and
    /// MaxMin give δÂ where both passes take the same branch, tanh uses tanh a − tanh b = tanh(a − b)(1 − tanh a tanh b).
    /// </summary>
    public Tensor Difference(Tensor a, Tensor da, Tensor h)
    {
        using var k = new KeptScalars(); // explicit Scalars, alive during the calls (same values, same bits)
        return Architecture.Activation switch
        {
            FotonActivation.Identity => da,
            FotonActivation.Tanh => da.tanh() * (k.Of(1) - h * (a - da).tanh()),
            FotonActivation.MaxMin => MaxMinDifference(a, a - da, da, h),
            // relu(a) − relu(a − δ) = min(δ, a) − min(a, 0): δ exactly where both passes are positive, a where only the
            // clean one is, δ − a where only the modulated one is, 0 where neither is (three element-wise passes).
            _ when ActivationKernels.Applies(a, da) => ActivationKernels.ReluDifference(a, da),
            _ => torch.minimum(da, a).sub_(a.clamp_max(k.Of(0))),
        };
    }

    /// <summary>
    /// tanh(a) − tanh(a − δ) from h = tanh(a) and δ alone, with one transcendental instead of two: with t = tanh δ,
    /// tanh(a − δ) = (h − t)/(1 − ht), so the difference is t(1 − h²)/(1 − ht) (an identity, no cancellation; tanh
    /// keeps full relative precision for small δ). Five element-wise passes (tanh, two fused multiply-adds, a product,
    /// a quotient). H's own float32 rounding (≤ 6e-8) enters through 1 − h² and 1 − ht, amplified by at most
    /// 2/(1 − |t|): below 1e-6 for |δ| ≤ 1, the range the caller allows. Host float32 tensors take the one-pass kernel
    /// (<see cref="ActivationKernels"/>: (1 − h)(1 + h) instead of 1 − h², the same bound).
    /// </summary>
    public static Tensor TanhDifference(Tensor h, Tensor da)
    {
        if (ActivationKernels.Applies(h, da))
            return ActivationKernels.Compute(h, da)!;
        using var one = torch.ones([], dtype: h.dtype, device: h.device);
        var t = da.tanh();
        using var k = new KeptScalars();
        using var oneMinusH2 = torch.addcmul(one, h, h, value: k.Of(-1.0));
        using var den = torch.addcmul(one, h, t, value: k.Of(-1.0));
        return t.mul_(oneMinusH2).div_(den);
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

    /// <summary>
    /// Fᵀ = M_L M_{L−1} ⋯ M_0 ∈ R^{C×d_0} (M_i the flat linear map of layer i: W_i, or the patch convolution),
    /// built from the output side: C rows pushed through the transposed maps (a C×d chain: C·Σ d_{i+1}d_i flops).
    /// </summary>
    public Tensor FTranspose()
    {
        var f = Weights[OutputIndex];
        for (int i = OutputIndex - 1; i >= 0; i--)
            f = LinearTranspose(i, f, Weights[i]);
        return OutputIndex == 0 ? f.clone() : f;
    }

    /// <summary>Layer <paramref name="i"/>'s linear map on flat activations: x·Wᵀ, or the patch convolution.</summary>
    public Tensor Linear(int i, Tensor x, Tensor w)
    {
        if (i >= Architecture.ConvCount)
            return x.mm(w.t());
        var g = Architecture.Conv(i);
        return g.FromOutputRows(g.Patches(x).mm(w.t()));
    }

    /// <summary>The transposed map: flat output-side rows y ↦ y·M_i (M_i the flat matrix of layer <paramref name="i"/>).</summary>
    public Tensor LinearTranspose(int i, Tensor y, Tensor w)
    {
        if (i >= Architecture.ConvCount)
            return y.mm(w);
        var g = Architecture.Conv(i);
        return g.FromPatches(g.OutputRows(y).mm(w));
    }

    /// <summary>The local update Dᵀ·pre of layer <paramref name="i"/> (summed over patches for a convolution).</summary>
    public Tensor OuterProduct(int i, Tensor d, Tensor pre)
    {
        if (i >= Architecture.ConvCount)
            return d.t().mm(pre);
        var g = Architecture.Conv(i);
        return g.OutputRows(d).t().mm(g.Patches(pre));
    }

    /// <summary>
    /// <see cref="OuterProduct(int, Tensor, Tensor)"/> times <paramref name="scale"/>: for a dense float32 layer the scale is the product's
    /// own factor (one pass over the result fewer than multiplying it afterwards; libtorch applies a double factor to
    /// float32 in float32 either way).
    /// </summary>
    public Tensor OuterProduct(int i, Tensor d, Tensor pre, double scale)
    {
        if (i >= Architecture.ConvCount && d.dtype == ScalarType.Float32)
        {
            var result = torch.empty([d.shape[1], pre.shape[1]], d.dtype, d.device);
            return result.addmm_(d.t(), pre, beta: 0, alpha: (float)scale);
        }
        using Scalar factor = scale.ToScalar();
        return OuterProduct(i, d, pre).mul_(factor);
    }

    /// <summary>
    /// W_i += <paramref name="scale"/>·Dᵀ·pre in place, as one product-accumulate, for a dense float32 layer (returns
    /// false, and changes nothing, for any other layer).
    /// </summary>
    public bool TryAddOuterProduct(int i, Tensor d, Tensor pre, double scale)
    {
        var w = Weights[i];
        if (i < Architecture.ConvCount || w.dtype != ScalarType.Float32 || d.dtype != ScalarType.Float32 || pre.dtype != ScalarType.Float32)
            return false;
        w.addmm_(d.t(), pre, beta: 1, alpha: (float)scale);
        return true;
    }

    public void Dispose()
    {
        foreach (var w in Weights)
            w.Dispose();
    }
}
