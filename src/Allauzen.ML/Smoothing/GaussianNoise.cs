using System.Numerics.Tensors;

namespace Allauzen.ML.Smoothing;

/// <summary>
/// The sampler's Gaussian noise on the CPU: i.i.d. N(0, σ²) values from a xoshiro256** stream seeded with
/// SplitMix64 (Blackman and Vigna 2018), turned into normals with the Box–Muller transform in float64 on 53-bit
/// uniforms (u₁ ∈ (0, 1], so the largest |z| is √(2·53·ln 2) ≈ 8.57: a tail of probability ~1e-17 is cut, against
/// ~5.8σ for float32 uniforms), then rounded to float32. Logarithms, square roots and the trigonometry run in
/// vectorised blocks (System.Numerics.Tensors), several times faster than libtorch's CPU <c>normal_</c>.
/// </summary>
/// <remarks>
/// One instance is one stream: <see cref="Fill"/> with the same seed gives the same values, whatever the caller's
/// batching. Not thread-safe (scratch buffers); use one per sampling pass.
/// </remarks>
internal sealed class GaussianNoise
{
    private const int Block = 2048;
    private readonly double[] _radius = new double[Block];
    private readonly double[] _angle = new double[Block];
    private readonly double[] _cos = new double[Block];
    private readonly double[] _sin = new double[Block];

    /// <summary>Fills <paramref name="destination"/> with σ·z, z ~ N(0, 1) i.i.d., from the stream of <paramref name="seed"/>.</summary>
    public void Fill(ulong seed, Span<float> destination, double sigma)
    {
        ulong s0 = SmoothingSampler.SplitMix(seed), s1 = SmoothingSampler.SplitMix(s0), s2 = SmoothingSampler.SplitMix(s1), s3 = SmoothingSampler.SplitMix(s2);
        int done = 0;
        while (done < destination.Length)
        {
            int pairs = Math.Min(Block, (destination.Length - done + 1) / 2);
            for (int i = 0; i < pairs; i++)
            {
                // 53-bit uniforms: u1 in (0, 1] (never 0, so the logarithm is finite), u2 in [0, 1).
                _radius[i] = ((Next(ref s0, ref s1, ref s2, ref s3) >> 11) + 1) * (1.0 / (1UL << 53));
                _angle[i] = (Next(ref s0, ref s1, ref s2, ref s3) >> 11) * (2 * Math.PI / (1UL << 53));
            }
            var r = _radius.AsSpan(0, pairs);
            var a = _angle.AsSpan(0, pairs);
            TensorPrimitives.Log(r, r);
            TensorPrimitives.Multiply(r, -2.0 * sigma * sigma, r);
            TensorPrimitives.Sqrt(r, r);
            TensorPrimitives.Cos(a, _cos.AsSpan(0, pairs));
            TensorPrimitives.Sin(a, _sin.AsSpan(0, pairs));
            var dst = destination[done..];
            int full = Math.Min(pairs, dst.Length / 2);
            for (int i = 0; i < full; i++)
            {
                dst[2 * i] = (float)(r[i] * _cos[i]);
                dst[2 * i + 1] = (float)(r[i] * _sin[i]);
            }
            if (full < pairs)
                dst[2 * full] = (float)(r[full] * _cos[full]); // odd length: the last pair's second value is dropped
            done += Math.Min(2 * pairs, dst.Length);
        }
    }

    private static ulong Next(ref ulong s0, ref ulong s1, ref ulong s2, ref ulong s3)
    {
        ulong result = ulong.RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = ulong.RotateLeft(s3, 45);
        return result;
    }
}
