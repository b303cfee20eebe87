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

    /// <summary>Lane i holds <paramref name="start"/> + i.</summary>
    static abstract TU Sequence(uint start);

    static abstract TU Add(TU a, TU b);

    static abstract TU Xor(TU a, TU b);

    static abstract TU And(TU a, TU b);

    static abstract TU ShiftRight(TU a, [ConstantExpected] byte n);

    static abstract TU ShiftLeft(TU a, [ConstantExpected] byte n);

    /// <summary>Bitwise select: bits of <paramref name="a"/> where <paramref name="mask"/> is set, else of <paramref name="b"/>.</summary>
    static abstract TU Select(TU mask, TU a, TU b);

    /// <summary>The high 32 bits of the 64-bit product a·m of each lane.</summary>
    static abstract TU MulHigh(TU a, uint m);

    /// <summary>The low 32 bits of the product a·m of each lane.</summary>
    static abstract TU MulLow(TU a, uint m);

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

/// <summary>16 lanes (AVX-512F).</summary>
internal readonly struct Lanes512 : INoiseLanes<Vector512<uint>, Vector512<float>>
{
    private static readonly Vector512<uint> OddLanes = Vector512.Create(0xFFFFFFFF_00000000UL).AsUInt32();

    public static int Count => 16;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> Broadcast(uint x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> Sequence(uint start) => Vector512.Create(start) + Vector512<uint>.Indices;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> Add(Vector512<uint> a, Vector512<uint> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> Xor(Vector512<uint> a, Vector512<uint> b) => a ^ b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> And(Vector512<uint> a, Vector512<uint> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> ShiftRight(Vector512<uint> a, [ConstantExpected] byte n) => a >>> n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> ShiftLeft(Vector512<uint> a, [ConstantExpected] byte n) => a << n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> Select(Vector512<uint> mask, Vector512<uint> a, Vector512<uint> b) => Vector512.ConditionalSelect(mask, a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> MulHigh(Vector512<uint> a, uint m)
    {
        var mv = Vector512.Create(m);
        var even = Avx512F.Multiply(a, mv); // lanes 0, 2, 4, ...: 64-bit products
        var odd = Avx512F.Multiply((a.AsUInt64() >>> 32).AsUInt32(), mv); // lanes 1, 3, 5, ...
        return Vector512.ConditionalSelect(OddLanes, odd.AsUInt32(), (even >>> 32).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<uint> MulLow(Vector512<uint> a, uint m) => a * m;

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
internal readonly struct Lanes256 : INoiseLanes<Vector256<uint>, Vector256<float>>
{
    private static readonly Vector256<uint> OddLanes = Vector256.Create(0xFFFFFFFF_00000000UL).AsUInt32();

    public static int Count => 8;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> Broadcast(uint x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> Sequence(uint start) => Vector256.Create(start) + Vector256<uint>.Indices;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> Add(Vector256<uint> a, Vector256<uint> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> Xor(Vector256<uint> a, Vector256<uint> b) => a ^ b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> And(Vector256<uint> a, Vector256<uint> b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> ShiftRight(Vector256<uint> a, [ConstantExpected] byte n) => a >>> n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> ShiftLeft(Vector256<uint> a, [ConstantExpected] byte n) => a << n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> Select(Vector256<uint> mask, Vector256<uint> a, Vector256<uint> b) => Vector256.ConditionalSelect(mask, a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> MulHigh(Vector256<uint> a, uint m)
    {
        var mv = Vector256.Create(m);
        var even = Avx2.Multiply(a, mv); // lanes 0, 2, 4, ...: 64-bit products
        var odd = Avx2.Multiply((a.AsUInt64() >>> 32).AsUInt32(), mv); // lanes 1, 3, 5, ...
        return Vector256.ConditionalSelect(OddLanes, odd.AsUInt32(), (even >>> 32).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<uint> MulLow(Vector256<uint> a, uint m) => a * m;

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
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint Sequence(uint start) => start;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint Add(uint a, uint b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint Xor(uint a, uint b) => a ^ b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint And(uint a, uint b) => a & b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint ShiftRight(uint a, [ConstantExpected] byte n) => a >> n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint ShiftLeft(uint a, [ConstantExpected] byte n) => a << n;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint Select(uint mask, uint a, uint b) => (a & mask) | (b & ~mask);

    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint MulHigh(uint a, uint m) => (uint)((ulong)a * m >> 32);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static uint MulLow(uint a, uint m) => a * m;

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
