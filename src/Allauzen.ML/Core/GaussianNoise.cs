using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Allauzen.ML.Core;

/// <summary>The instruction set a noise fill runs on; every choice gives the same bits (tests force each).</summary>
internal enum NoiseIsa
{
    /// <summary>The widest available: AVX-512F, else AVX2 (both with AES-NI), else one lane.</summary>
    Auto,
    /// <summary>One lane at a time, AES rounds in software (any CPU; the reference the others are tested against).</summary>
    Software,
    /// <summary>One lane at a time, AES rounds in hardware when the CPU has them (x86 AES-NI or ARMv8 AES).</summary>
    Scalar,
    /// <summary>8 lanes (AVX2 and AES-NI).</summary>
    Avx2,
    /// <summary>16 lanes (AVX-512F and AES-NI).</summary>
    Avx512,
}

/// <summary>
/// Counter-based random streams at memory speed: ARS-5 (<see cref="Ars"/>, AES rounds with a Weyl key schedule; Salmon,
/// Moraes, Dror and Shaw, SC 2011) feeding a float32 Box–Muller transform, vectorised over 16, 8 or 1 lanes with
/// identical results (the stream is defined per element, not per vector).
/// </summary>
/// <remarks>
/// <para>A stream is named by (key, stream, domain). Its bits: block b is ARS-5 of the counter (b, low 32 bits of stream,
/// high 32 bits of stream, domain) under the key (low 32 bits of key, high 32 bits of key, 0, 0), four 32-bit words; bit
/// element e is word e mod 4 of block ⌊e/4⌋ (AES counter mode order).</para>
/// <para>Normals: element e belongs to group g = ⌊e/32⌋, lane l = e mod 16; its pair of words is a = bit element 32g + l,
/// b = bit element 32g + 16 + l, and it is the cosine output of the pair when e mod 32 &lt; 16, the sine output otherwise.
/// So the value of an element never depends on the vector width, the span's length, or where a fill is split. From
/// (a, b): u = ⌊a/2⌋·2⁻³¹ + 2⁻³² ∈ [2⁻³², 1], radius r = √(−2 ln u) (so |z| ≤ 6.66: the tail beyond has probability
/// 3·10⁻¹¹); an angle φ ∈ (0, π/4) from 24 bits of b, reflected to π/2 − φ by one bit and given independent signs by two
/// more: a uniform angle θ on the circle, and (r cos θ, r sin θ) are two independent standard normals. ln, sin and cos
/// are polynomials evaluated with exactly rounded float32 operations only (no fused multiply–add), hence the same bits
/// on every CPU; their error is below 2·10⁻⁷ relative.</para>
/// </remarks>
internal static class GaussianNoise
{
    /// <summary>Lanes of the reference layout (the widest vector: 16 float32 in 512 bits).</summary>
    public const int GroupLanes = 16;

    /// <summary>Elements per group: a cosine and a sine output per lane.</summary>
    public const int GroupSize = 2 * GroupLanes;

    /// <summary>ARS blocks per group (32 words).</summary>
    private const int GroupBlocks = GroupSize / 4;

    /// <summary>The instruction set <see cref="NoiseIsa.Auto"/> resolves to on this CPU.</summary>
    public static NoiseIsa Resolved =>
        !X86Aes.IsSupported ? NoiseIsa.Scalar : Avx512F.IsSupported ? NoiseIsa.Avx512 : Avx2.IsSupported ? NoiseIsa.Avx2 : NoiseIsa.Scalar;

    /// <summary>
    /// Fills <paramref name="destination"/> with elements 0, 1, ... of the normal stream (key, stream, domain), scaled by
    /// <paramref name="sigma"/>, plus <paramref name="centre"/> element-wise when it is not empty (same length).
    /// </summary>
    public static void Fill(Span<float> destination, ulong key, ulong stream, uint domain, float sigma, ReadOnlySpan<float> centre = default,
        NoiseIsa isa = NoiseIsa.Auto)
    {
        if (!centre.IsEmpty && centre.Length != destination.Length)
            throw new ArgumentException($"The centre has {centre.Length} values; the destination has {destination.Length}.", nameof(centre));
        Span<Vector128<byte>> keys = stackalloc Vector128<byte>[Ars.Rounds + 1];
        Ars.RoundKeys(Vector128.Create(key, 0UL), keys);
        var counter = Counter(stream, domain);
        switch (Check(isa))
        {
            case NoiseIsa.Avx512:
                Normals<Lanes512, Vector512<uint>, Vector512<float>>(destination, centre, keys, counter, sigma);
                break;
            case NoiseIsa.Avx2:
                Normals<Lanes256, Vector256<uint>, Vector256<float>>(destination, centre, keys, counter, sigma);
                break;
            default:
                ScalarNormals(destination, centre, keys, counter, sigma, isa == NoiseIsa.Software ? Ars.Engine.Software : Ars.Hardware);
                break;
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with elements 0, 1, ... of the uniform 32-bit stream (key, stream, domain): the
    /// ARS words in counter order (e.g. a Bernoulli(p) mask is <c>word &lt; p·2³²</c>).
    /// </summary>
    public static void FillBits(Span<uint> destination, ulong key, ulong stream, uint domain, NoiseIsa isa = NoiseIsa.Auto)
    {
        Span<Vector128<byte>> keys = stackalloc Vector128<byte>[Ars.Rounds + 1];
        Ars.RoundKeys(Vector128.Create(key, 0UL), keys);
        var counter = Counter(stream, domain);
        var engine = Check(isa) == NoiseIsa.Software ? Ars.Engine.Software : Ars.Hardware;
        int full = destination.Length / 4;
        for (int b = 0; b < full; b++)
            Ars.Encrypt(Block(counter, (uint)b), keys, engine).AsUInt32().CopyTo(destination.Slice(4 * b, 4));
        if (destination.Length > 4 * full)
        {
            Span<uint> tail = stackalloc uint[4];
            Ars.Encrypt(Block(counter, (uint)full), keys, engine).AsUInt32().CopyTo(tail);
            tail[..(destination.Length - 4 * full)].CopyTo(destination[(4 * full)..]);
        }
    }

    private static NoiseIsa Check(NoiseIsa isa)
    {
        isa = isa == NoiseIsa.Auto ? Resolved : isa;
        if ((isa == NoiseIsa.Avx512 && !(Avx512F.IsSupported && X86Aes.IsSupported)) || (isa == NoiseIsa.Avx2 && !(Avx2.IsSupported && X86Aes.IsSupported)))
            throw new PlatformNotSupportedException($"Noise instruction set {isa} is not available on this CPU.");
        return isa;
    }

    /// <summary>The ARS counter of block 0: (0, stream low, stream high, domain).</summary>
    private static Vector128<uint> Counter(ulong stream, uint domain) => Vector128.Create(0u, (uint)stream, (uint)(stream >> 32), domain);

    /// <summary>The counter of block <paramref name="b"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<byte> Block(Vector128<uint> counter, uint b) => (counter + Vector128.CreateScalar(b)).AsByte();

    private static void Normals<L, TU, TF>(Span<float> destination, ReadOnlySpan<float> centre, ReadOnlySpan<Vector128<byte>> keys, Vector128<uint> counter,
        float sigma)
        where L : struct, INoiseLanes<TU, TF>, INoiseWords<TU>
        where TU : struct
        where TF : struct
    {
        int full = destination.Length / GroupSize;
        for (int g = 0; g < full; g++)
        {
            var c = centre.IsEmpty ? default : centre.Slice(g * GroupSize, GroupSize);
            NormalGroup<L, TU, TF>(destination.Slice(g * GroupSize, GroupSize), c, keys, counter, (uint)g * GroupBlocks, sigma);
        }
        int rest = destination.Length - full * GroupSize;
        if (rest == 0)
            return;
        Span<float> tail = stackalloc float[GroupSize];
        NormalGroup<L, TU, TF>(tail, default, keys, counter, (uint)full * GroupBlocks, sigma);
        AddTail(tail, destination, centre, full * GroupSize);
    }

    private static void AddTail(ReadOnlySpan<float> tail, Span<float> destination, ReadOnlySpan<float> centre, int start)
    {
        var d = destination[start..];
        if (centre.IsEmpty)
            tail[..d.Length].CopyTo(d);
        else
        {
            var c = centre[start..];
            for (int i = 0; i < d.Length; i++)
                d[i] = c[i] + tail[i];
        }
    }

    /// <summary>The 32 elements of one group: 8 ARS blocks, L.Count lanes at a time.</summary>
    /// <remarks>Not inlined: the JIT keeps its vectors in registers only while the method stays small.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void NormalGroup<L, TU, TF>(Span<float> d, ReadOnlySpan<float> centre, ReadOnlySpan<Vector128<byte>> keys, Vector128<uint> counter,
        uint block0, float sigma)
        where L : struct, INoiseLanes<TU, TF>, INoiseWords<TU>
        where TU : struct
        where TF : struct
    {
        var scale = L.Broadcast(sigma);
        for (int lane = 0; lane < GroupLanes; lane += L.Count)
        {
            var (a, b) = L.Words(keys, counter, block0 + (uint)(lane / 4));
            var (z0, z1) = BoxMuller<L, TU, TF>(a, b, scale);
            Put<L, TU, TF>(d, centre, lane, z0);
            Put<L, TU, TF>(d, centre, GroupLanes + lane, z1);
        }
    }

    /// <summary>One lane at a time: the group's 8 blocks, then the transform of each lane.</summary>
    private static void ScalarNormals(Span<float> destination, ReadOnlySpan<float> centre, ReadOnlySpan<Vector128<byte>> keys, Vector128<uint> counter,
        float sigma, Ars.Engine engine)
    {
        Span<uint> words = stackalloc uint[GroupSize];
        Span<float> group = stackalloc float[GroupSize];
        for (int start = 0; start < destination.Length; start += GroupSize)
        {
            uint block0 = (uint)(start / GroupSize) * GroupBlocks;
            for (int j = 0; j < GroupBlocks; j++)
                Ars.Encrypt(Block(counter, block0 + (uint)j), keys, engine).AsUInt32().CopyTo(words[(4 * j)..]);
            for (int lane = 0; lane < GroupLanes; lane++)
            {
                (group[lane], group[GroupLanes + lane]) = BoxMuller<Lanes1, uint, float>(words[lane], words[GroupLanes + lane], sigma);
            }
            int n = Math.Min(GroupSize, destination.Length - start);
            AddTail(group, destination.Slice(start, n), centre.IsEmpty ? default : centre.Slice(start, n), 0);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put<L, TU, TF>(Span<float> d, ReadOnlySpan<float> centre, int at, TF x)
        where L : struct, INoiseLanes<TU, TF>
        where TU : struct
        where TF : struct
    {
        if (!centre.IsEmpty)
            x = L.Add(L.Load(centre[at..]), x);
        L.Store(x, d[at..]);
    }

    // ln on [√½, √2): 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.1716: s + s³·(A3 + A5·s² + A7·s⁴), minimax for the relative
    // error of atanh (8·10⁻¹⁰); the factor 2 of ln and the −2 of −2 ln u are one exact scaling by −4.
    private const float MinusTwoLn2Hi = -2 * 0.693145752f, MinusTwoLn2Lo = -2 * 1.42860677e-06f;
    private const float A3 = 3.333338785e-01f, A5 = 1.998881389e-01f, A7 = 1.493468111e-01f;
    // sin and cos on (0, π/4]: φ + φ³·(S3 + S5·φ² + S7·φ⁴) and 1 + φ²·(C2 + C4·φ² + C6·φ⁴), minimax for the relative error
    // (4·10⁻⁹ and 4·10⁻⁸, below float32's half ulp of 6·10⁻⁸).
    private const float S3 = -1.666665465e-01f, S5 = 8.332163520e-03f, S7 = -1.951566524e-04f;
    private const float C2 = -4.999988516e-01f, C4 = 4.165580323e-02f, C6 = -1.359220815e-03f;

    /// <summary>Two normals times <paramref name="sigma"/>, from two uniform words (see the remarks of the class): (σ·r)·cos θ and (σ·r)·sin θ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (TF, TF) BoxMuller<L, TU, TF>(TU a, TU b, TF sigma)
        where L : struct, INoiseLanes<TU, TF>
        where TU : struct
        where TF : struct
    {
        // u ∈ [2⁻³², 1]; ln u = k·ln 2 + ln m with m ∈ [√½, √2) (the exponent/mantissa split of u, shifted by √½).
        var u = L.Add(L.Multiply(L.ConvertSigned(L.ShiftRight(a, 1)), L.Broadcast(1f / 2147483648f)), L.Broadcast(1f / 4294967296f));
        var ix = L.Add(L.AsUInt(u), L.Broadcast(0x3F800000u - 0x3F3504F3u));
        var k = L.ConvertSigned(L.Add(L.ShiftRight(ix, 23), L.Broadcast(unchecked((uint)-127))));
        var m = L.AsFloat(L.Add(L.And(ix, L.Broadcast(0x007FFFFFu)), L.Broadcast(0x3F3504F3u)));
        var one = L.Broadcast(1f);
        var sv = L.Divide(L.Subtract(m, one), L.Add(m, one));
        var s2 = L.Multiply(sv, sv);
        var p = L.Multiply(s2, L.Add(L.Broadcast(A3), L.Multiply(s2, L.Add(L.Broadcast(A5), L.Multiply(s2, L.Broadcast(A7))))));
        var r2 = L.Add(L.Multiply(k, L.Broadcast(MinusTwoLn2Hi)),
            L.Add(L.Multiply(k, L.Broadcast(MinusTwoLn2Lo)), L.Multiply(L.Add(sv, L.Multiply(sv, p)), L.Broadcast(-4f))));
        var r = L.Multiply(L.Sqrt(r2), sigma);

        // φ = (j + ½)·2⁻²⁴·π/4 with j the 24 bits 5..28 of b; bit 29 reflects φ to π/2 − φ; bits 31 and 30 are the signs.
        var j = L.And(L.ShiftRight(b, 5), L.Broadcast(0x00FFFFFFu));
        var phi = L.Multiply(L.Add(L.ConvertSigned(j), L.Broadcast(0.5f)), L.Broadcast(4.681337853e-08f));
        var q = L.Multiply(phi, phi);
        var sin = L.Add(phi, L.Multiply(L.Multiply(phi, q), L.Add(L.Broadcast(S3), L.Multiply(q, L.Add(L.Broadcast(S5), L.Multiply(q, L.Broadcast(S7)))))));
        var cos = L.Add(one, L.Multiply(q, L.Add(L.Broadcast(C2), L.Multiply(q, L.Add(L.Broadcast(C4), L.Multiply(q, L.Broadcast(C6)))))));
        var swap = L.Xor(L.Add(L.And(L.ShiftRight(b, 29), L.Broadcast(1u)), L.Broadcast(0xFFFFFFFFu)), L.Broadcast(0xFFFFFFFFu)); // all ones iff bit 29
        var cs = L.Select(swap, L.AsUInt(sin), L.AsUInt(cos));
        var sn = L.Select(swap, L.AsUInt(cos), L.AsUInt(sin));
        var signBit = L.Broadcast(0x80000000u);
        return (L.AsFloat(L.Xor(L.AsUInt(L.Multiply(r, L.AsFloat(cs))), L.And(b, signBit))),
            L.AsFloat(L.Xor(L.AsUInt(L.Multiply(r, L.AsFloat(sn))), L.And(L.ShiftLeft(b, 1), signBit))));
    }
}
