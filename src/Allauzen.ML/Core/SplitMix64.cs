using System.Runtime.CompilerServices;

namespace Allauzen.ML;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014): a tiny, fast, seedable 64-bit generator, used to derive seeds and as a
/// stream for small sequential draws (one stream per concern or job). Output i of the stream seeded with s is
/// <see cref="Scramble"/>(s + (i + 1)·γ), γ = <see cref="Gamma"/>; <see cref="Mix"/> is the first output of the stream
/// seeded with its argument. Every caller in the library derives its seeds and streams from this one type.
/// </summary>
internal struct SplitMix64(ulong seed)
{
    /// <summary>The stream increment γ = 2⁶⁴/φ (odd).</summary>
    public const ulong Gamma = 0x9E3779B97F4A7C15UL;

    private ulong _state = seed;

    /// <summary>SplitMix64's output function (variant 13 of Stafford's mixers): a bijection of 64-bit words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Scramble(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The first output of the stream seeded with <paramref name="z"/>: <see cref="Scramble"/>(z + γ), a bijection.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Mix(ulong z) => Scramble(z + Gamma);

    /// <summary>The next 64-bit output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Next() => Scramble(_state += Gamma);

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A standard normal (Box–Muller, cosine branch; two outputs per call).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>An integer in [0, <paramref name="maxExclusive"/>) (modulo reduction: bias below 2⁻³² for small bounds).</summary>
    public int NextInt(int maxExclusive) => (int)(Next() % (ulong)maxExclusive);
}
