using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ArmAes = System.Runtime.Intrinsics.Arm.Aes;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Allauzen.ML.Core;

/// <summary>
/// ARS-R (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a counter-based
/// generator made of R rounds of AES with a Weyl key schedule. One block maps a 128-bit counter and a 128-bit key to
/// 128 random bits: k₀ = key, kᵢ = kᵢ₋₁ + W (two 64-bit additions, W = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)),
/// v = counter ⊕ k₀, then R − 1 full AES rounds (ShiftRows, SubBytes, MixColumns, ⊕ kᵢ) and a last round without
/// MixColumns. Words are little-endian 32-bit lanes of the 128-bit value (word 0 = bytes 0–3).
/// </summary>
/// <remarks>
/// AES is an exactly specified function of bytes, so the hardware instructions (x86 AES-NI, ARMv8 AES) and the
/// software rounds below give the same bits; the software path is the reference the tests compare the others to.
/// </remarks>
internal static class Ars
{
    /// <summary>
    /// Rounds used by the noise streams: ARS-5, which the paper reports Crush-resistant (no failure in TestU01's BigCrush
    /// over many keys and counters); each further round costs 20 % more generator time.
    /// </summary>
    public const int Rounds = 5;

    private const ulong WeylLow = 0x9E3779B97F4A7C15, WeylHigh = 0xBB67AE8584CAA73B;

    /// <summary>How blocks are computed.</summary>
    public enum Engine
    {
        /// <summary>The AES rounds in software (any CPU; the reference).</summary>
        Software,
        /// <summary>x86 AES-NI.</summary>
        X86,
        /// <summary>ARMv8 AES.</summary>
        Arm,
    }

    /// <summary>The fastest engine on this CPU.</summary>
    public static Engine Hardware => X86Aes.IsSupported ? Engine.X86 : ArmAes.IsSupported ? Engine.Arm : Engine.Software;

    /// <summary>The round keys k₀..k_R of <paramref name="key"/> (R + 1 values).</summary>
    public static void RoundKeys(Vector128<ulong> key, Span<Vector128<byte>> keys)
    {
        var weyl = Vector128.Create(WeylLow, WeylHigh);
        for (int i = 0; i < keys.Length; i++, key += weyl)
            keys[i] = key.AsByte();
    }

    /// <summary>One ARS-<paramref name="rounds"/> block (words c0..c3 of the counter, k0..k3 of the key).</summary>
    public static (uint, uint, uint, uint) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint k2, uint k3, int rounds, Engine engine)
    {
        Span<Vector128<byte>> keys = stackalloc Vector128<byte>[rounds + 1];
        RoundKeys(Vector128.Create(k0, k1, k2, k3).AsUInt64(), keys);
        var v = Encrypt(Vector128.Create(c0, c1, c2, c3).AsByte(), keys, engine).AsUInt32();
        return (v[0], v[1], v[2], v[3]);
    }

    /// <summary>ARS of one counter with round keys <paramref name="keys"/> (R + 1 of them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Encrypt(Vector128<byte> counter, ReadOnlySpan<Vector128<byte>> keys, Engine engine)
    {
        int last = keys.Length - 1;
        if (engine == Engine.X86)
        {
            var v = counter ^ keys[0];
            for (int i = 1; i < last; i++)
                v = X86Aes.Encrypt(v, keys[i]);
            return X86Aes.EncryptLast(v, keys[last]);
        }
        if (engine == Engine.Arm)
        {
            // AESE(v, k) = ShiftRows(SubBytes(v ⊕ k)) and AESMC = MixColumns: the x86 round is AESMC(AESE(v, 0)) ⊕ k.
            var v = counter;
            for (int i = 0; i < last - 1; i++)
                v = ArmAes.MixColumns(ArmAes.Encrypt(v, keys[i]));
            return ArmAes.Encrypt(v, keys[last - 1]) ^ keys[last];
        }
        return SoftwareEncrypt(counter, keys);
    }

    private static Vector128<byte> SoftwareEncrypt(Vector128<byte> counter, ReadOnlySpan<Vector128<byte>> keys)
    {
        Span<byte> s = stackalloc byte[16];
        Span<byte> t = stackalloc byte[16];
        (counter ^ keys[0]).CopyTo(s);
        for (int i = 1; i < keys.Length; i++)
        {
            // ShiftRows and SubBytes: row r of column c comes from column c + r (bytes are column-major: index r + 4c).
            for (int c = 0; c < 4; c++)
            {
                for (int r = 0; r < 4; r++)
                    t[r + 4 * c] = SBox[s[r + 4 * ((c + r) & 3)]];
            }
            if (i < keys.Length - 1)
            {
                for (int c = 0; c < 4; c++)
                {
                    byte a0 = t[4 * c], a1 = t[4 * c + 1], a2 = t[4 * c + 2], a3 = t[4 * c + 3];
                    // MixColumns: the column times (2 3 1 1; 1 2 3 1; 1 1 2 3; 3 1 1 2) in GF(2⁸).
                    s[4 * c] = (byte)(Times2(a0) ^ Times2(a1) ^ a1 ^ a2 ^ a3);
                    s[4 * c + 1] = (byte)(a0 ^ Times2(a1) ^ Times2(a2) ^ a2 ^ a3);
                    s[4 * c + 2] = (byte)(a0 ^ a1 ^ Times2(a2) ^ Times2(a3) ^ a3);
                    s[4 * c + 3] = (byte)(Times2(a0) ^ a0 ^ a1 ^ a2 ^ Times2(a3));
                }
            }
            else
                t.CopyTo(s);
            var k = keys[i];
            for (int j = 0; j < 16; j++)
                s[j] ^= k[j];
        }
        return Vector128.Create((ReadOnlySpan<byte>)s);
    }

    /// <summary>x·2 in GF(2⁸) modulo x⁸ + x⁴ + x³ + x + 1.</summary>
    private static byte Times2(byte a) => (byte)((a << 1) ^ ((a >> 7) * 0x1B));

    /// <summary>The AES S-box, computed from its definition: the inverse in GF(2⁸) (0 ↦ 0), then the affine map.</summary>
    private static readonly byte[] SBox = BuildSBox();

    private static byte[] BuildSBox()
    {
        var box = new byte[256];
        for (int x = 0; x < 256; x++)
        {
            // x⁻¹ = x²⁵⁴ (square and multiply).
            byte inverse = 1, power = (byte)x;
            for (int e = 254; e > 0; e >>= 1)
            {
                if ((e & 1) != 0)
                    inverse = Multiply(inverse, power);
                power = Multiply(power, power);
            }
            if (x == 0)
                inverse = 0;
            int b = inverse;
            int rotated = b ^ Rotl(b, 1) ^ Rotl(b, 2) ^ Rotl(b, 3) ^ Rotl(b, 4);
            box[x] = (byte)(rotated ^ 0x63);
        }
        return box;
    }

    private static int Rotl(int b, int n) => ((b << n) | (b >> (8 - n))) & 0xFF;

    private static byte Multiply(byte a, byte b)
    {
        byte p = 0;
        for (int i = 0; i < 8; i++, b >>= 1, a = Times2(a))
        {
            if ((b & 1) != 0)
                p ^= a;
        }
        return p;
    }
}
