using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Allauzen.ML.Core;

/// <summary>The instruction set a noise fill runs on; every choice gives the same bits (tests force each).</summary>
internal enum NoiseIsa
{
    /// <summary>The widest available: AVX-512F, else AVX2, else one lane.</summary>
    Auto,
    /// <summary>One lane at a time (any CPU).</summary>
    Scalar,
    /// <summary>8 lanes (AVX2).</summary>
    Avx2,
    /// <summary>16 lanes (AVX-512F).</summary>
    Avx512,
}

/// <summary>
/// Counter-based random streams at memory speed: Philox4x32-10 (Salmon, Moraes, Dror and Shaw, SC 2011) feeding a
/// float32 Box–Muller transform, vectorised over 16, 8 or 1 lanes with identical results (the stream is defined per
/// element, not per vector).
/// </summary>
/// <remarks>
/// <para>A stream is named by (key, stream, domain): Philox's 64-bit key is <c>key</c>, and block b of the stream is
/// Philox(key; counter = (b, low 32 bits of stream, high 32 bits of stream, domain)) = four 32-bit words w0..w3.
/// Element e of the stream lives in group g = ⌊e/64⌋, word k = ⌊(e mod 64)/16⌋ of block b = 16·g + (e mod 16): the
/// layout of 16 lanes, which narrower widths cover in order, so the value of an element never depends on the vector
/// width, the span's length, or where a fill starts being split.</para>
/// <para>Normals: (w0, w1) give the elements of words 0 and 1, (w2, w3) those of words 2 and 3. From a pair (a, b):
/// u = ⌊a/2⌋·2⁻³¹ + 2⁻³² ∈ [2⁻³², 1], radius r = √(−2 ln u) (so |z| ≤ 6.66: the tail beyond has probability 3·10⁻¹¹);
/// an angle φ ∈ (0, π/4) from 24 bits of b, reflected to π/2 − φ by one bit and given independent signs by two more:
/// a uniform angle θ on the circle, and (r cos θ, r sin θ) are two independent standard normals. ln, sin and cos are
/// polynomials evaluated with exactly rounded float32 operations only (no fused multiply–add), hence the same bits on
/// every CPU; their error is below 2·10⁻⁷ relative.</para>
/// </remarks>
internal static class GaussianNoise
{
    /// <summary>Lanes of the reference layout (the widest vector: 16 float32 in 512 bits).</summary>
    public const int GroupLanes = 16;

    /// <summary>Elements per group: four Philox words per lane.</summary>
    public const int GroupSize = 4 * GroupLanes;

    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>The instruction set <see cref="NoiseIsa.Auto"/> resolves to on this CPU.</summary>
    public static NoiseIsa Resolved => Avx512F.IsSupported ? NoiseIsa.Avx512 : Avx2.IsSupported ? NoiseIsa.Avx2 : NoiseIsa.Scalar;

    /// <summary>One Philox4x32-10 block: the four words of (counter c0..c3, key k0, k1).</summary>
    public static (uint, uint, uint, uint) Philox(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int r = 0; r < 10; r++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            (c0, c1, c2, c3) = ((uint)(p1 >> 32) ^ c1 ^ k0, (uint)p1, (uint)(p0 >> 32) ^ c3 ^ k1, (uint)p0);
            k0 += W0;
            k1 += W1;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with elements 0, 1, ... of the normal stream (key, stream, domain), scaled by
    /// <paramref name="sigma"/>, plus <paramref name="centre"/> element-wise when it is not empty (same length).
    /// </summary>
    public static void Fill(Span<float> destination, ulong key, ulong stream, uint domain, float sigma, ReadOnlySpan<float> centre = default,
        NoiseIsa isa = NoiseIsa.Auto)
    {
        if (!centre.IsEmpty && centre.Length != destination.Length)
            throw new ArgumentException($"The centre has {centre.Length} values; the destination has {destination.Length}.", nameof(centre));
        var s = new Stream(key, stream, domain);
        switch (isa == NoiseIsa.Auto ? Resolved : isa)
        {
            case NoiseIsa.Avx512:
                Normals<Lanes512, System.Runtime.Intrinsics.Vector512<uint>, System.Runtime.Intrinsics.Vector512<float>>(destination, centre, s, sigma);
                break;
            case NoiseIsa.Avx2:
                Normals<Lanes256, System.Runtime.Intrinsics.Vector256<uint>, System.Runtime.Intrinsics.Vector256<float>>(destination, centre, s, sigma);
                break;
            default:
                Normals<Lanes1, uint, float>(destination, centre, s, sigma);
                break;
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with elements 0, 1, ... of the uniform 32-bit stream (key, stream, domain): the
    /// raw Philox words in the same layout (e.g. a Bernoulli(p) mask is <c>word &lt; p·2³²</c>).
    /// </summary>
    public static void FillBits(Span<uint> destination, ulong key, ulong stream, uint domain, NoiseIsa isa = NoiseIsa.Auto)
    {
        var s = new Stream(key, stream, domain);
        switch (isa == NoiseIsa.Auto ? Resolved : isa)
        {
            case NoiseIsa.Avx512:
                Bits<Lanes512, System.Runtime.Intrinsics.Vector512<uint>, System.Runtime.Intrinsics.Vector512<float>>(destination, s);
                break;
            case NoiseIsa.Avx2:
                Bits<Lanes256, System.Runtime.Intrinsics.Vector256<uint>, System.Runtime.Intrinsics.Vector256<float>>(destination, s);
                break;
            default:
                Bits<Lanes1, uint, float>(destination, s);
                break;
        }
    }

    private readonly record struct Stream(ulong Key, ulong Counter, uint Domain)
    {
        public uint K0 => (uint)Key;
        public uint K1 => (uint)(Key >> 32);
        public uint C1 => (uint)Counter;
        public uint C2 => (uint)(Counter >> 32);
    }

    private static void Normals<L, TU, TF>(Span<float> destination, ReadOnlySpan<float> centre, Stream s, float sigma)
        where L : struct, INoiseLanes<TU, TF>
        where TU : struct
        where TF : struct
    {
        int full = destination.Length / GroupSize;
        for (int g = 0; g < full; g++)
        {
            var c = centre.IsEmpty ? default : centre.Slice(g * GroupSize, GroupSize);
            NormalGroup<L, TU, TF>(destination.Slice(g * GroupSize, GroupSize), c, (uint)g * GroupLanes, s, sigma);
        }
        int rest = destination.Length - full * GroupSize;
        if (rest == 0)
            return;
        Span<float> tail = stackalloc float[GroupSize];
        NormalGroup<L, TU, TF>(tail, default, (uint)full * GroupLanes, s, sigma);
        var d = destination[(full * GroupSize)..];
        if (centre.IsEmpty)
            tail[..rest].CopyTo(d);
        else
        {
            var c = centre[(full * GroupSize)..];
            for (int i = 0; i < rest; i++)
                d[i] = c[i] + tail[i];
        }
    }

    private static void Bits<L, TU, TF>(Span<uint> destination, Stream s)
        where L : struct, INoiseLanes<TU, TF>
        where TU : struct
        where TF : struct
    {
        Span<uint> tail = stackalloc uint[GroupSize];
        for (int start = 0; start < destination.Length; start += GroupSize)
        {
            int n = Math.Min(GroupSize, destination.Length - start);
            var d = n == GroupSize ? destination.Slice(start, GroupSize) : tail;
            uint block0 = (uint)(start / GroupSize) * GroupLanes;
            for (int lane = 0; lane < GroupLanes; lane += L.Count)
            {
                var w = Philox<L, TU, TF>(L.Sequence(block0 + (uint)lane), s);
                L.Store(w.W0, d[lane..]);
                L.Store(w.W1, d[(GroupLanes + lane)..]);
                L.Store(w.W2, d[(2 * GroupLanes + lane)..]);
                L.Store(w.W3, d[(3 * GroupLanes + lane)..]);
            }
            if (n < GroupSize)
                tail[..n].CopyTo(destination[start..]);
        }
    }

    /// <summary>The 64 elements of one group: 16 Philox blocks, L.Count at a time.</summary>
    /// <remarks>Not inlined: the JIT keeps its vectors in registers only while the method stays small.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void NormalGroup<L, TU, TF>(Span<float> d, ReadOnlySpan<float> centre, uint block0, Stream s, float sigma)
        where L : struct, INoiseLanes<TU, TF>
        where TU : struct
        where TF : struct
    {
        var scale = L.Broadcast(sigma);
        for (int lane = 0; lane < GroupLanes; lane += L.Count)
        {
            var w = Philox<L, TU, TF>(L.Sequence(block0 + (uint)lane), s);
            var (z0, z1) = BoxMuller<L, TU, TF>(w.W0, w.W1);
            var (z2, z3) = BoxMuller<L, TU, TF>(w.W2, w.W3);
            Put<L, TU, TF>(d, centre, lane, L.Multiply(scale, z0));
            Put<L, TU, TF>(d, centre, GroupLanes + lane, L.Multiply(scale, z1));
            Put<L, TU, TF>(d, centre, 2 * GroupLanes + lane, L.Multiply(scale, z2));
            Put<L, TU, TF>(d, centre, 3 * GroupLanes + lane, L.Multiply(scale, z3));
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

    /// <summary>Philox4x32-10 on L.Count counters (c0 per lane; c1, c2, c3 and the key shared).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Block<TU> Philox<L, TU, TF>(TU c0, Stream s)
        where L : struct, INoiseLanes<TU, TF>
        where TU : struct
        where TF : struct
    {
        TU x0 = c0, x1 = L.Broadcast(s.C1), x2 = L.Broadcast(s.C2), x3 = L.Broadcast(s.Domain);
        uint k0 = s.K0, k1 = s.K1;
        for (int r = 0; r < 10; r++)
        {
            TU hi0 = L.MulHigh(x0, M0), lo0 = L.MulLow(x0, M0), hi1 = L.MulHigh(x2, M1), lo1 = L.MulLow(x2, M1);
            x0 = L.Xor(L.Xor(hi1, x1), L.Broadcast(k0));
            x1 = lo1;
            x2 = L.Xor(L.Xor(hi0, x3), L.Broadcast(k1));
            x3 = lo0;
            k0 += W0;
            k1 += W1;
        }
        return new Block<TU>(x0, x1, x2, x3);
    }

    private readonly record struct Block<TU>(TU W0, TU W1, TU W2, TU W3);

    // ln on [√½, √2): 2·atanh(s), s = (m − 1)/(m + 1), |s| ≤ 0.1716 (odd series to s⁹; the next term is below 10⁻⁹).
    private const float Ln2Hi = 0.693145752f, Ln2Lo = 1.42860677e-06f;
    private const float A3 = 1f / 3, A5 = 1f / 5, A7 = 1f / 7, A9 = 1f / 9;
    // sin and cos on (0, π/4]: Taylor series to φ⁹ and φ¹⁰ (next terms below 2·10⁻⁹ and 10⁻¹⁰).
    private const float S3 = -1f / 6, S5 = 1f / 120, S7 = -1f / 5040, S9 = 1f / 362880;
    private const float C2 = -0.5f, C4 = 1f / 24, C6 = -1f / 720, C8 = 1f / 40320, C10 = -1f / 3628800;

    /// <summary>Two standard normals from two uniform words (see the remarks of the class).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (TF, TF) BoxMuller<L, TU, TF>(TU a, TU b)
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
        var p = L.Multiply(s2, L.Add(L.Broadcast(A3), L.Multiply(s2, L.Add(L.Broadcast(A5), L.Multiply(s2, L.Add(L.Broadcast(A7), L.Multiply(s2, L.Broadcast(A9))))))));
        var lnm = L.Multiply(L.Add(sv, L.Multiply(sv, p)), L.Broadcast(2f));
        var lnu = L.Add(L.Multiply(k, L.Broadcast(Ln2Hi)), L.Add(L.Multiply(k, L.Broadcast(Ln2Lo)), lnm));
        var r = L.Sqrt(L.Multiply(lnu, L.Broadcast(-2f)));

        // φ = (j + ½)·2⁻²⁴·π/4 with j the 24 bits 5..28 of b; bit 29 reflects φ to π/2 − φ; bits 31 and 30 are the signs.
        var j = L.And(L.ShiftRight(b, 5), L.Broadcast(0x00FFFFFFu));
        var phi = L.Multiply(L.Add(L.ConvertSigned(j), L.Broadcast(0.5f)), L.Broadcast(4.681337853e-08f));
        var q = L.Multiply(phi, phi);
        var sin = L.Add(phi, L.Multiply(L.Multiply(phi, q),
            L.Add(L.Broadcast(S3), L.Multiply(q, L.Add(L.Broadcast(S5), L.Multiply(q, L.Add(L.Broadcast(S7), L.Multiply(q, L.Broadcast(S9)))))))));
        var cos = L.Add(one, L.Multiply(q, L.Add(L.Broadcast(C2), L.Multiply(q,
            L.Add(L.Broadcast(C4), L.Multiply(q, L.Add(L.Broadcast(C6), L.Multiply(q, L.Add(L.Broadcast(C8), L.Multiply(q, L.Broadcast(C10)))))))))));
        var swap = L.Xor(L.Add(L.And(L.ShiftRight(b, 29), L.Broadcast(1u)), L.Broadcast(0xFFFFFFFFu)), L.Broadcast(0xFFFFFFFFu)); // all ones iff bit 29
        var cs = L.Select(swap, L.AsUInt(sin), L.AsUInt(cos));
        var sn = L.Select(swap, L.AsUInt(cos), L.AsUInt(sin));
        var signBit = L.Broadcast(0x80000000u);
        return (L.AsFloat(L.Xor(L.AsUInt(L.Multiply(r, L.AsFloat(cs))), L.And(b, signBit))),
            L.AsFloat(L.Xor(L.AsUInt(L.Multiply(r, L.AsFloat(sn))), L.And(L.ShiftLeft(b, 1), signBit))));
    }
}
