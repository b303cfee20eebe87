using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// The FOTON step's activations in one pass over host float32 memory: the ReLU difference, tanh and the tanh
/// difference. tanh and the tanh difference: tanh x = N/D with N = e^{2x} − 1, D = e^{2x} + 1
/// (or N the odd Taylor polynomial of tanh and D = 1 for |x| &lt; 1/8, where e^{2x} − 1 would cancel). The difference
/// d = tanh(a) − tanh(a − δ) = t(1 − h²)/(1 − ht), t = tanh δ, h = tanh a, in one pass over host
/// float32 memory: t is formed as N/D (N = e^{2δ} − 1, D = e^{2δ} + 1, or N = the odd Taylor polynomial of tanh and D = 1
/// for |δ| &lt; 1/8, where e^{2δ} − 1 would cancel), so that d = N(1 − h)(1 + h)/(D − hN) takes one division. libtorch
/// needs five element-wise passes and a transcendental pass for the same (<see cref="OrthogonalMlp.TanhDifference"/>).
/// </summary>
/// <remarks>
/// e^z (|z| ≤ 40 after clamping 2δ, where tanh δ is ±1 in float32) is 2^k·p(r) with k = round(z/ln 2), r = z − k·ln 2 in
/// two parts (|r| ≤ ln 2 / 2) and p the degree-7 Taylor polynomial (truncation below 6e-9 relative). The Taylor branch of
/// tanh to x⁹ leaves below 1e-11 relative for |x| &lt; 1/8. Every lane and the scalar tail run the same float32
/// operations (no fused multiply-adds), so the result does not depend on the vector width; the relative error of d is
/// a few float32 roundings (the accuracy test bounds it against float64).
/// </remarks>
internal static class ActivationKernels
{
    private const float SmallStep = 0.125f;
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;
    private const float ClampZ = 40f;
    private const float T3 = -1f / 3, T5 = 2f / 15, T7 = -17f / 315, T9 = 62f / 2835;
    private const float E2 = 1f / 2, E3 = 1f / 6, E4 = 1f / 24, E5 = 1f / 120, E6 = 1f / 720, E7 = 1f / 5040;

    /// <summary>Whether the kernels apply: host float32 tensors of the same shape, all contiguous (a null one is ignored).</summary>
    public static bool Applies(Tensor h, Tensor? da) =>
        h.device_type == DeviceType.CPU && h.dtype == ScalarType.Float32 && h.is_contiguous() && h.numel() <= int.MaxValue
        && (da is null || (da.device_type == DeviceType.CPU && da.dtype == ScalarType.Float32 && da.is_contiguous() && h.shape.SequenceEqual(da.shape)));

    /// <summary>
    /// d for every element, into a new tensor; with <paramref name="maxStep"/> set, returns <see langword="null"/> as soon
    /// as |δ| exceeds it (or is NaN) anywhere. The caller checks <see cref="Applies"/> first.
    /// </summary>
    /// <param name="h">tanh of the clean pre-activation.</param>
    /// <param name="da">The step δ, or with <paramref name="mask"/> the unmasked step (δ = mask ⊙ da, one rounding, as libtorch's product).</param>
    /// <param name="maxStep">The largest |δ| allowed.</param>
    /// <param name="mask">The dropout mask (null: none); the caller checks <see cref="Applies"/> for it too.</param>
    public static Tensor? Compute(Tensor h, Tensor da, float maxStep = float.PositiveInfinity, Tensor? mask = null)
    {
        var d = torch.empty_like(h);
        bool ok = Compute(MemoryMarshal.Cast<byte, float>(h.bytes), MemoryMarshal.Cast<byte, float>(da.bytes),
            MemoryMarshal.Cast<byte, float>(d.bytes), maxStep, mask is null ? default : MemoryMarshal.Cast<byte, float>(mask.bytes));
        if (ok)
            return d;
        d.Dispose();
        return null;
    }

    /// <summary>
    /// <see cref="Compute(Tensor, Tensor, float, Tensor?)"/> with the dropout mask given as keep bytes (1 kept, 0 dropped)
    /// and its scale 1/(1 − p): the same values as the float mask keep·scale, without forming it.
    /// </summary>
    public static Tensor? Compute(Tensor h, Tensor da, float maxStep, ReadOnlySpan<byte> keep, float scale)
    {
        var hs = MemoryMarshal.Cast<byte, float>(h.bytes);
        if (keep.Length != hs.Length)
            throw new ArgumentException($"The keep mask has {keep.Length} elements, h {hs.Length}.");
        var d = torch.empty_like(h);
        bool ok = ComputeCore(hs, MemoryMarshal.Cast<byte, float>(da.bytes), MemoryMarshal.Cast<byte, float>(d.bytes), maxStep,
            new KeepMask(keep, scale));
        if (ok)
            return d;
        d.Dispose();
        return null;
    }

    /// <summary>
    /// The kernel on spans (tests call it directly); false when some |δ| exceeds <paramref name="maxStep"/> or is NaN.
    /// With a non-empty <paramref name="mask"/>, δ = mask ⊙ da element by element first.
    /// </summary>
    public static bool Compute(ReadOnlySpan<float> h, ReadOnlySpan<float> da, Span<float> d, float maxStep = float.PositiveInfinity,
        ReadOnlySpan<float> mask = default)
    {
        if (h.Length != da.Length || d.Length != h.Length || (!mask.IsEmpty && mask.Length != h.Length))
            throw new ArgumentException($"The spans' lengths differ: h {h.Length}, δ {da.Length}, d {d.Length}, mask {mask.Length}.");
        return mask.IsEmpty ? ComputeCore(h, da, d, maxStep, default(NoMask)) : ComputeCore(h, da, d, maxStep, new FloatMask(mask));
    }

    /// <summary>The kernel with the keep bytes of a dropout mask and its scale (see <see cref="Compute(Tensor, Tensor, float, ReadOnlySpan{byte}, float)"/>).</summary>
    public static bool Compute(ReadOnlySpan<float> h, ReadOnlySpan<float> da, Span<float> d, float maxStep, ReadOnlySpan<byte> keep, float scale)
    {
        if (h.Length != da.Length || d.Length != h.Length || keep.Length != h.Length)
            throw new ArgumentException($"The spans' lengths differ: h {h.Length}, δ {da.Length}, d {d.Length}, keep {keep.Length}.");
        return ComputeCore(h, da, d, maxStep, new KeepMask(keep, scale));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    private static bool ComputeCore<TMask>(ReadOnlySpan<float> h, ReadOnlySpan<float> da, Span<float> d, float maxStep, TMask mask)
        where TMask : IMask, allows ref struct
    {
        int n = h.Length, i = 0;
        bool check = !float.IsPositiveInfinity(maxStep);
        if (Vector256.IsHardwareAccelerated)
        {
            var limit = Vector256.Create(maxStep);
            var violated = Vector256<float>.Zero;
            for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            {
                var x = Vector256.Create(da.Slice(i, Vector256<float>.Count));
                if (mask.Masked)
                    x *= mask.Vector(i);
                if (check)
                    violated |= ~Vector256.LessThanOrEqual(Vector256.Abs(x), limit); // NaN fails "≤ limit" too
                Difference(Vector256.Create(h.Slice(i, Vector256<float>.Count)), x).CopyTo(d.Slice(i, Vector256<float>.Count));
            }
            if (violated != Vector256<float>.Zero)
                return false;
        }
        for (; i < n; i++)
        {
            float x = mask.Masked ? da[i] * mask.Scalar(i) : da[i];
            if (check && !(Math.Abs(x) <= maxStep))
                return false;
            d[i] = Difference(h[i], x);
        }
        return true;
    }

    /// <summary>A dropout mask as the kernels read it: eight lanes at a time, or one element.</summary>
    private interface IMask
    {
        /// <summary>False: no mask (the kernels skip the product).</summary>
        bool Masked { get; }

        /// <summary>Elements i … i + 7.</summary>
        Vector256<float> Vector(int i);

        /// <summary>Element i.</summary>
        float Scalar(int i);
    }

    private readonly ref struct NoMask : IMask
    {
        public bool Masked => false;

        public Vector256<float> Vector(int i) => Vector256<float>.One;

        public float Scalar(int i) => 1f;
    }

    private readonly ref struct FloatMask : IMask
    {
        private readonly ReadOnlySpan<float> _mask;

        public FloatMask(ReadOnlySpan<float> mask) => _mask = mask;

        public bool Masked => true;

        public Vector256<float> Vector(int i) => Vector256.Create(_mask.Slice(i, Vector256<float>.Count));

        public float Scalar(int i) => _mask[i];
    }

    /// <summary>Keep bytes (0 or 1) times the scale: the values of <see cref="DropoutMasks"/>' float mask, formed in registers.</summary>
    private readonly ref struct KeepMask : IMask
    {
        private readonly ReadOnlySpan<byte> _keep;
        private readonly float _scale;

        public KeepMask(ReadOnlySpan<byte> keep, float scale)
        {
            _keep = keep;
            _scale = scale;
        }

        public bool Masked => true;

        public Vector256<float> Vector(int i)
        {
            Vector256<int> lanes;
            if (Avx2.IsSupported)
                lanes = Avx2.ConvertToVector256Int32(Vector128.CreateScalar(MemoryMarshal.Read<ulong>(_keep.Slice(i, 8))).AsByte());
            else
                lanes = Vector256.Create(_keep[i], _keep[i + 1], _keep[i + 2], _keep[i + 3], _keep[i + 4], _keep[i + 5], _keep[i + 6], (int)_keep[i + 7]);
            return Vector256.ConvertToSingle(lanes) * Vector256.Create(_scale);
        }

        public float Scalar(int i) => _keep[i] * _scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> N, Vector256<float> D) Fraction(Vector256<float> x)
    {
        var one = Vector256<float>.One;
        var small = Vector256.LessThan(Vector256.Abs(x), Vector256.Create(SmallStep));
        // A vector whose lanes all take one branch computes that branch alone (the same operations per lane, so the same
        // values): the modulated pass's steps δ are mostly small, the clean pass's pre-activations mostly not.
        uint lanes = Vector256.ExtractMostSignificantBits(small); // compared as bits (an all-ones float lane is a NaN)
        if (lanes == 0xFFu)
            return (TaylorTanh(x), one);
        var e = ExpTwice(x);
        if (lanes == 0)
            return (e - one, e + one);
        return (Vector256.ConditionalSelect(small, TaylorTanh(x), e - one), Vector256.ConditionalSelect(small, one, e + one));
    }

    /// <summary>The Taylor branch: tanh x = x(1 + x²(−1/3 + x²(2/15 + x²(−17/315 + x²·62/2835)))).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> TaylorTanh(Vector256<float> x)
    {
        var x2 = x * x;
        return x + x * x2 * (Vector256.Create(T3) + x2 * (Vector256.Create(T5) + x2 * (Vector256.Create(T7) + x2 * Vector256.Create(T9))));
    }

    /// <summary>e^z, z = 2x clamped to ±40.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ExpTwice(Vector256<float> x)
    {
        var one = Vector256<float>.One;
        var z = Vector256.Min(Vector256.Max(x + x, Vector256.Create(-ClampZ)), Vector256.Create(ClampZ));
        var k = Vector256.Round(z * Vector256.Create(Log2E));
        var r = (z - k * Vector256.Create(Ln2Hi)) - k * Vector256.Create(Ln2Lo);
        var p = one + r * (one + r * (Vector256.Create(E2) + r * (Vector256.Create(E3) + r * (Vector256.Create(E4)
            + r * (Vector256.Create(E5) + r * (Vector256.Create(E6) + r * Vector256.Create(E7)))))));
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32(k) + Vector256.Create(127), 23).AsSingle();
        return p * scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Difference(Vector256<float> h, Vector256<float> x)
    {
        var one = Vector256<float>.One;
        var (num, den) = Fraction(x);
        return num * ((one - h) * (one + h)) / (den - h * num);
    }

    private static (float N, float D) Fraction(float x)
    {
        float x2 = x * x;
        float poly = x + x * x2 * (T3 + x2 * (T5 + x2 * (T7 + x2 * T9)));
        float z = Math.Min(Math.Max(x + x, -ClampZ), ClampZ);
        float k = MathF.Round(z * Log2E);
        float r = (z - k * Ln2Hi) - k * Ln2Lo;
        float p = 1 + r * (1 + r * (E2 + r * (E3 + r * (E4 + r * (E5 + r * (E6 + r * E7))))));
        float e = p * BitConverter.Int32BitsToSingle(((int)k + 127) << 23);
        bool small = Math.Abs(x) < SmallStep;
        return small ? (poly, 1) : (e - 1, e + 1);
    }

    private static float Difference(float h, float x)
    {
        var (num, den) = Fraction(x);
        return num * ((1 - h) * (1 + h)) / (den - h * num);
    }

    /// <summary>tanh(a) (times <paramref name="mask"/> first, when given: tanh(m·a)) into a new tensor; see <see cref="Applies"/>.</summary>
    public static Tensor Tanh(Tensor a, Tensor? mask)
    {
        var h = torch.empty_like(a);
        Tanh(MemoryMarshal.Cast<byte, float>(a.bytes), mask is null ? default : MemoryMarshal.Cast<byte, float>(mask.bytes),
            MemoryMarshal.Cast<byte, float>(h.bytes));
        return h;
    }

    /// <summary>tanh(keep·scale·a) into a new tensor, the mask given as keep bytes (see <see cref="Compute(Tensor, Tensor, float, ReadOnlySpan{byte}, float)"/>).</summary>
    public static Tensor Tanh(Tensor a, ReadOnlySpan<byte> keep, float scale)
    {
        var h = torch.empty_like(a);
        Tanh(MemoryMarshal.Cast<byte, float>(a.bytes), keep, scale, MemoryMarshal.Cast<byte, float>(h.bytes));
        return h;
    }

    /// <summary>h = tanh(m·a) element by element (m = 1 when <paramref name="mask"/> is empty).</summary>
    public static void Tanh(ReadOnlySpan<float> a, ReadOnlySpan<float> mask, Span<float> h)
    {
        if (a.Length != h.Length || (!mask.IsEmpty && mask.Length != a.Length))
            throw new ArgumentException($"The spans' lengths differ: a {a.Length}, mask {mask.Length}, h {h.Length}.");
        if (mask.IsEmpty)
            TanhCore(a, h, default(NoMask));
        else
            TanhCore(a, h, new FloatMask(mask));
    }

    /// <summary>h = tanh(keep·scale·a) element by element (keep bytes 0 or 1).</summary>
    public static void Tanh(ReadOnlySpan<float> a, ReadOnlySpan<byte> keep, float scale, Span<float> h)
    {
        if (a.Length != h.Length || keep.Length != a.Length)
            throw new ArgumentException($"The spans' lengths differ: a {a.Length}, keep {keep.Length}, h {h.Length}.");
        TanhCore(a, h, new KeepMask(keep, scale));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    private static void TanhCore<TMask>(ReadOnlySpan<float> a, Span<float> h, TMask mask) where TMask : IMask, allows ref struct
    {
        int n = a.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            {
                var x = Vector256.Create(a.Slice(i, Vector256<float>.Count));
                if (mask.Masked)
                    x *= mask.Vector(i);
                var (num, den) = Fraction(x);
                (num / den).CopyTo(h.Slice(i, Vector256<float>.Count));
            }
        }
        for (; i < n; i++)
        {
            var (num, den) = Fraction(mask.Masked ? a[i] * mask.Scalar(i) : a[i]);
            h[i] = num / den;
        }
    }

    /// <summary>
    /// A ReLU layer's clean pass in one pass over host float32 memory: Â = M ⊙ A in place (M = keep·scale, the values of
    /// the float mask) and H = relu(Â) into a new tensor, as libtorch's <c>mul_</c> and <c>relu</c> (relu's vector form
    /// max(0, x): −0 and NaN pass through).
    /// </summary>
    public static Tensor MaskRelu(Tensor a, ReadOnlySpan<byte> keep, float scale)
    {
        var h = torch.empty_like(a);
        MaskRelu(MemoryMarshal.Cast<byte, float>(a.bytes), keep, scale, MemoryMarshal.Cast<byte, float>(h.bytes));
        return h;
    }

    /// <summary>a ← keep·scale·a and h = relu(a), element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    public static void MaskRelu(Span<float> a, ReadOnlySpan<byte> keep, float scale, Span<float> h)
    {
        if (keep.Length != a.Length || h.Length != a.Length)
            throw new ArgumentException($"The spans' lengths differ: a {a.Length}, keep {keep.Length}, h {h.Length}.");
        var mask = new KeepMask(keep, scale);
        int n = a.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            {
                var x = Vector256.Create(a.Slice(i, Vector256<float>.Count)) * mask.Vector(i);
                x.CopyTo(a.Slice(i, Vector256<float>.Count));
                Relu(x).CopyTo(h.Slice(i, Vector256<float>.Count));
            }
        }
        for (; i < n; i++)
        {
            float x = a[i] * mask.Scalar(i);
            a[i] = x;
            h[i] = 0f > x ? 0f : x;
        }
    }

    /// <summary>
    /// A ReLU layer's modulated pass in one pass: d = min(M ⊙ δ, Â) − min(Â, 0) (as <see cref="ReluDifference(Tensor, Tensor)"/>
    /// on the masked step) and the clean output H = relu(Â) (the next layer's pre-synaptic factor), into new tensors;
    /// M = keep·scale. <paramref name="a"/> is the stored masked pre-activation Â.
    /// </summary>
    public static (Tensor D, Tensor H) ReluDifferenceAndOutput(Tensor a, Tensor da, ReadOnlySpan<byte> keep, float scale)
    {
        var d = torch.empty_like(a);
        var h = torch.empty_like(a);
        ReluDifferenceAndOutput(MemoryMarshal.Cast<byte, float>(a.bytes), MemoryMarshal.Cast<byte, float>(da.bytes), keep, scale,
            MemoryMarshal.Cast<byte, float>(d.bytes), MemoryMarshal.Cast<byte, float>(h.bytes));
        return (d, h);
    }

    /// <summary>d = min(keep·scale·δ, a) − min(a, 0) and h = relu(a), element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    public static void ReluDifferenceAndOutput(ReadOnlySpan<float> a, ReadOnlySpan<float> da, ReadOnlySpan<byte> keep, float scale,
        Span<float> d, Span<float> h)
    {
        if (da.Length != a.Length || keep.Length != a.Length || d.Length != a.Length || h.Length != a.Length)
            throw new ArgumentException($"The spans' lengths differ: a {a.Length}, δ {da.Length}, keep {keep.Length}, d {d.Length}, h {h.Length}.");
        var mask = new KeepMask(keep, scale);
        int n = a.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            {
                var x = Vector256.Create(a.Slice(i, Vector256<float>.Count));
                var step = Vector256.Create(da.Slice(i, Vector256<float>.Count)) * mask.Vector(i);
                (Vector256.Min(step, x) - Vector256.Min(x, Vector256<float>.Zero)).CopyTo(d.Slice(i, Vector256<float>.Count));
                Relu(x).CopyTo(h.Slice(i, Vector256<float>.Count));
            }
        }
        for (; i < n; i++)
        {
            float x = a[i], step = da[i] * mask.Scalar(i);
            d[i] = MathF.Min(step, x) - MathF.Min(x, 0f);
            h[i] = 0f > x ? 0f : x;
        }
    }

    /// <summary>max(0, x) as libtorch's vector relu computes it: x unless 0 &gt; x (so −0 and NaN pass through).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Relu(Vector256<float> x) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256<float>.Zero, x), Vector256<float>.Zero, x);

    /// <summary>
    /// relu(a) − relu(a − δ) = min(δ, a) − min(a, 0) into a new tensor (δ where both passes are positive, a where only
    /// the clean one is, δ − a where only the modulated one is, 0 where neither is; the same values as libtorch's three
    /// passes). See <see cref="Applies"/>.
    /// </summary>
    public static Tensor ReluDifference(Tensor a, Tensor da)
    {
        var d = torch.empty_like(a);
        ReluDifference(MemoryMarshal.Cast<byte, float>(a.bytes), MemoryMarshal.Cast<byte, float>(da.bytes), MemoryMarshal.Cast<byte, float>(d.bytes));
        return d;
    }

    /// <summary>d = min(δ, a) − min(a, 0) element by element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    public static void ReluDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> da, Span<float> d)
    {
        if (a.Length != da.Length || d.Length != a.Length)
            throw new ArgumentException($"The spans' lengths differ: a {a.Length}, δ {da.Length}, d {d.Length}.");
        int n = a.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + Vector256<float>.Count <= n; i += Vector256<float>.Count)
            {
                var x = Vector256.Create(a.Slice(i, Vector256<float>.Count));
                var step = Vector256.Create(da.Slice(i, Vector256<float>.Count));
                (Vector256.Min(step, x) - Vector256.Min(x, Vector256<float>.Zero)).CopyTo(d.Slice(i, Vector256<float>.Count));
            }
        }
        for (; i < n; i++)
            d[i] = MathF.Min(da[i], a[i]) - MathF.Min(a[i], 0f);
    }
}
