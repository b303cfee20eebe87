using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Allauzen.ML.Core;

/// <summary>
/// The lane operations the noise kernel (<see cref="GaussianNoise"/>) is written against, once: each member is an exactly
/// rounded IEEE operation or an integer operation, so every implementation (16, 8 or 1 lane) computes the same bits per
/// lane. No fused multiply–add, no built-in transcendental function: those differ between instruction sets.
/// </summary>
/// <typeparam name="TU">A vector of 32-bit unsigned lanes.</typeparam>
/// <typeparam name="TF">A vector of float32 lanes of the same count.</typeparam>
internal interface INoiseLanes<TU, TF>
    where TU : struct
    where TF : struct
{
    /// <summary>Lanes per vector; a divisor of <see cref="GaussianNoise.GroupLanes"/>.</summary>
    static abstract int Count { get; }

    static abstract TU Broadcast(uint x);

    static abstract TF Broadcast(float x);

    static abstract TU Add(TU a, TU b);

    static abstract TU Xor(TU a, TU b);

    static abstract TU And(TU a, TU b);

    static abstract TU ShiftRight(TU a, [ConstantExpected] byte n);

    static abstract TU ShiftLeft(TU a, [ConstantExpected] byte n);

    /// <summary>Bitwise select: bits of <paramref name="a"/> where <paramref name="mask"/> is set, else of <paramref name="b"/>.</summary>
    static abstract TU Select(TU mask, TU a, TU b);

    /// <summary>Each lane read as a signed 32-bit integer, converted to float32 (round to nearest even).</summary>
    static abstract TF ConvertSigned(TU a);

    static abstract TF AsFloat(TU a);

    static abstract TU AsUInt(TF a);

    static abstract TF Add(TF a, TF b);

    static abstract TF Subtract(TF a, TF b);

    static abstract TF Multiply(TF a, TF b);

    static abstract TF Divide(TF a, TF b);

    static abstract TF Sqrt(TF a);

    static abstract TF Load(ReadOnlySpan<float> source);

    static abstract void Store(TF value, Span<float> destination);

    static abstract void Store(TU value, Span<uint> destination);
}

/// <summary>The random words of a vector kernel: its lanes' (a, b) pairs of a group, from AES-NI (<see cref="Ars"/>).</summary>
internal interface INoiseWords<TU>
    where TU : struct
{
    /// <summary>
    /// Blocks <paramref name="block"/>, ... (Count/4 of them) as the a words and the blocks 4 further as the b words of
    /// lanes 4·(block mod 8), ... of their group (see <see cref="GaussianNoise"/>'s layout).
    /// </summary>
    static abstract (TU A, TU B) Words(ReadOnlySpan<Vector128<byte>> keys, Vector128<uint> counter, uint block);
}

/// <summary>16 lanes (AVX-512F).</summary>
internal readonly struct Lanes512 : INoiseLanes<Vector512<uint>, Vector512<float>>, INoiseWords<Vector512<uint>>
{
    /// <summary>Eight ARS chains interleaved (AES-NI works on 128 bits: two instructions in flight per cycle hide its latency).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector512<uint> A, Vector512<uint> B) Words(ReadOnlySpan<Vector128<byte>> keys, Vector128<uint> counter, uint block)
    {
        var k = keys[0];
        Vector128<byte> v0 = GaussianNoise.Block(counter, block) ^ k, v1 = GaussianNoise.Block(counter, block + 1) ^ k,
            v2 = GaussianNoise.Block(counter, block + 2) ^ k, v3 = GaussianNoise.Block(counter, block + 3) ^ k,
            v4 = GaussianNoise.Block(counter, block + 4) ^ k, v5 = GaussianNoise.Block(counter, block + 5) ^ k,
            v6 = GaussianNoise.Block(counter, block + 6) ^ k, v7 = GaussianNoise.Block(counter, block + 7) ^ k;
        for (int i = 1; i < keys.Length - 1; i++)
        {
            k = keys[i];
            v0 = Aes.Encrypt(v0, k); v1 = Aes.Encrypt(v1, k); v2 = Aes.Encrypt(v2, k); v3 = Aes.Encrypt(v3, k);
            v4 = Aes.Encrypt(v4, k); v5 = Aes.Encrypt(v5, k); v6 = Aes.Encrypt(v6, k); v7 = Aes.Encrypt(v7, k);
        }
        k = keys[^1];
        v0 = Aes.EncryptLast(v0, k); v1 = Aes.EncryptLast(v1, k); v2 = Aes.EncryptLast(v2, k); v3 = Aes.EncryptLast(v3, k);
        v4 = Aes.EncryptLast(v4, k); v5 = Aes.EncryptLast(v5, k); v6 = Aes.EncryptLast(v6, k); v7 = Aes.EncryptLast(v7, k);
        return (Vector512.Create(Vector256.Create(v0, v1), Vector256.Create(v2, v3)).AsUInt32(),
            Vector512.Create(Vector256.Create(v4, v5), Vector256.Create(v6, v7)).AsUInt32());
    }

    public static int Count => 16;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> Broadcast(uint x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> Add(Vector512<uint> a, Vector512<uint> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> Xor(Vector512<uint> a, Vector512<uint> b) => a ^ b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> And(Vector512<uint> a, Vector512<uint> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> ShiftRight(Vector512<uint> a, [ConstantExpected] byte n) => a >>> n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> ShiftLeft(Vector512<uint> a, [ConstantExpected] byte n) => a << n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> Select(Vector512<uint> mask, Vector512<uint> a, Vector512<uint> b) => Vector512.ConditionalSelect(mask, a, b);



    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> ConvertSigned(Vector512<uint> a) => Vector512.ConvertToSingle(a.AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> AsFloat(Vector512<uint> a) => a.AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> AsUInt(Vector512<float> a) => a.AsUInt32();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sqrt(Vector512<float> a) => Vector512.Sqrt(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ReadOnlySpan<float> source) => Vector512.Create(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> value, Span<float> destination) => value.CopyTo(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<uint> value, Span<uint> destination) => value.CopyTo(destination);
}

/// <summary>8 lanes (AVX2).</summary>
internal readonly struct Lanes256 : INoiseLanes<Vector256<uint>, Vector256<float>>, INoiseWords<Vector256<uint>>
{
    /// <summary>Four ARS chains interleaved.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<uint> A, Vector256<uint> B) Words(ReadOnlySpan<Vector128<byte>> keys, Vector128<uint> counter, uint block)
    {
        var k = keys[0];
        Vector128<byte> v0 = GaussianNoise.Block(counter, block) ^ k, v1 = GaussianNoise.Block(counter, block + 1) ^ k,
            v4 = GaussianNoise.Block(counter, block + 4) ^ k, v5 = GaussianNoise.Block(counter, block + 5) ^ k;
        for (int i = 1; i < keys.Length - 1; i++)
        {
            k = keys[i];
            v0 = Aes.Encrypt(v0, k); v1 = Aes.Encrypt(v1, k); v4 = Aes.Encrypt(v4, k); v5 = Aes.Encrypt(v5, k);
        }
        k = keys[^1];
        v0 = Aes.EncryptLast(v0, k); v1 = Aes.EncryptLast(v1, k); v4 = Aes.EncryptLast(v4, k); v5 = Aes.EncryptLast(v5, k);
        return (Vector256.Create(v0, v1).AsUInt32(), Vector256.Create(v4, v5).AsUInt32());
    }

    public static int Count => 8;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> Broadcast(uint x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> Add(Vector256<uint> a, Vector256<uint> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> Xor(Vector256<uint> a, Vector256<uint> b) => a ^ b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> And(Vector256<uint> a, Vector256<uint> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> ShiftRight(Vector256<uint> a, [ConstantExpected] byte n) => a >>> n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> ShiftLeft(Vector256<uint> a, [ConstantExpected] byte n) => a << n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> Select(Vector256<uint> mask, Vector256<uint> a, Vector256<uint> b) => Vector256.ConditionalSelect(mask, a, b);



    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> ConvertSigned(Vector256<uint> a) => Vector256.ConvertToSingle(a.AsInt32());
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> AsFloat(Vector256<uint> a) => a.AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> AsUInt(Vector256<float> a) => a.AsUInt32();
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sqrt(Vector256<float> a) => Vector256.Sqrt(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(ReadOnlySpan<float> source) => Vector256.Create(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> value, Span<float> destination) => value.CopyTo(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<uint> value, Span<uint> destination) => value.CopyTo(destination);
}

/// <summary>One lane (any CPU): the reference the vector widths are tested against.</summary>
internal readonly struct Lanes1 : INoiseLanes<uint, float>
{
    public static int Count => 1;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint Broadcast(uint x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Broadcast(float x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint Add(uint a, uint b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint Xor(uint a, uint b) => a ^ b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint And(uint a, uint b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint ShiftRight(uint a, [ConstantExpected] byte n) => a >> n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint ShiftLeft(uint a, [ConstantExpected] byte n) => a << n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint Select(uint mask, uint a, uint b) => (a & mask) | (b & ~mask);


    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float ConvertSigned(uint a) => (int)a;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float AsFloat(uint a) => BitConverter.UInt32BitsToSingle(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint AsUInt(float a) => BitConverter.SingleToUInt32Bits(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float a, float b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Subtract(float a, float b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Multiply(float a, float b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Divide(float a, float b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sqrt(float a) => MathF.Sqrt(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(ReadOnlySpan<float> source) => source[0];
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float value, Span<float> destination) => destination[0] = value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(uint value, Span<uint> destination) => destination[0] = value;
}
