using Allauzen.ML.Core;
using Allauzen.ML.Smoothing;
using System.Runtime.Intrinsics.X86;

namespace Allauzen.ML.Tests.Core;

/// <summary>
/// The counter-based noise generator: ARS against Random123's published answers, AES instructions against the software
/// rounds, the element layout, bit equality of every vector width with the one-lane software reference (so AVX-512, AVX2
/// and CPUs without AES draw the same noise), the
/// float32 Box–Muller against the same transform in float64, and the statistics of the output (moments, tails, a
/// Kolmogorov–Smirnov test on 10⁷ draws, independence within and across streams).
/// </summary>
[TestClass]
public sealed class GaussianNoiseTests
{
    /// <summary>The vector kernels this CPU can run, and one lane with hardware AES; each must give <see cref="NoiseIsa.Software"/>'s bits.</summary>
    private static IEnumerable<NoiseIsa> AvailableWidths()
    {
        yield return NoiseIsa.Scalar;
        if (Avx2.IsSupported && Aes.IsSupported)
            yield return NoiseIsa.Avx2;
        if (Avx512F.IsSupported && Aes.IsSupported)
            yield return NoiseIsa.Avx512;
    }

    private static IEnumerable<Ars.Engine> Engines() => Ars.Hardware == Ars.Engine.Software ? [Ars.Engine.Software] : [Ars.Engine.Software, Ars.Hardware];

    [TestMethod]
    public void ArsMatchesRandom123KnownAnswers()
    {
        // Random123 kat_vectors, ars4x32 with 10 rounds (counter words, key words → output words); the streams use 7 rounds of the same function.
        foreach (var engine in Engines())
        {
            Assert.AreEqual((0x8d73ee19u, 0x506401efu, 0x13c2dbe4u, 0x0cbe9c0du), Ars.Block(0, 0, 0, 0, 0, 0, 0, 0, 10, engine), $"{engine}: zeros");
            Assert.AreEqual((0xa516e7d6u, 0x8357ad74u, 0x5b59b3ecu, 0x8763fff3u),
                Ars.Block(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89, 10, engine), $"{engine}: π digits");
            Assert.AreEqual((0xbb3743b1u, 0x9f635551u, 0xecbc87fcu, 0xa19478a9u),
                Ars.Block(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0, 0, 10, engine), $"{engine}: ones");
        }
    }

    /// <summary>The AES instructions and the software rounds agree on 4096 random blocks, at every round count the streams could use.</summary>
    [TestMethod]
    public void HardwareAesGivesTheSoftwareBits()
    {
        if (Ars.Hardware == Ars.Engine.Software)
            Assert.Inconclusive("This CPU has no AES instructions: the software rounds are the only engine.");
        var random = new Random(5);
        for (int i = 0; i < 4096; i++)
        {
            var w = Enumerable.Range(0, 8).Select(_ => (uint)random.NextInt64(0, 1L << 32)).ToArray();
            int rounds = 2 + i % 9;
            Assert.AreEqual(Ars.Block(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], rounds, Ars.Engine.Software),
                Ars.Block(w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], rounds, Ars.Hardware), $"block {i}, {rounds} rounds");
        }
    }

    [TestMethod]
    public void BitsFollowTheDocumentedLayout()
    {
        ulong key = 0x0123456789ABCDEFUL, stream = 0xFEDCBA9876543210UL;
        const uint domain = 7;
        foreach (var isa in new[] { NoiseIsa.Software, NoiseIsa.Auto })
        {
            var bits = new uint[333];
            GaussianNoise.FillBits(bits, key, stream, domain, isa);
            for (int e = 0; e < bits.Length; e++)
            {
                var w = Ars.Block((uint)(e / 4), (uint)stream, (uint)(stream >> 32), domain, (uint)key, (uint)(key >> 32), 0, 0, Ars.Rounds, Ars.Engine.Software);
                uint expected = (e % 4) switch { 0 => w.Item1, 1 => w.Item2, 2 => w.Item3, _ => w.Item4 };
                Assert.AreEqual(expected, bits[e], $"{isa}: element {e}");
            }
        }
    }

    [TestMethod]
    public void EveryVectorWidthGivesTheSoftwareBits()
    {
        var widths = AvailableWidths().ToArray();
        Console.WriteLine($"widths tested: {string.Join(", ", widths)} (Auto = {GaussianNoise.Resolved}, AES: {Ars.Hardware})");
        foreach (int n in new[] { 1, 15, 16, 31, 32, 33, 63, 64, 65, 100, 784, 4096 + 17 })
        {
            var centre = Enumerable.Range(0, n).Select(i => (float)Math.Sin(i)).ToArray();
            foreach (bool withCentre in new[] { false, true })
            {
                var reference = new float[n];
                GaussianNoise.Fill(reference, 42, (ulong)n, 1, 0.37f, withCentre ? centre : default, NoiseIsa.Software);
                foreach (var isa in widths)
                {
                    var x = new float[n];
                    GaussianNoise.Fill(x, 42, (ulong)n, 1, 0.37f, withCentre ? centre : default, isa);
                    for (int i = 0; i < n; i++)
                        Assert.AreEqual(BitConverter.SingleToUInt32Bits(reference[i]), BitConverter.SingleToUInt32Bits(x[i]), $"{isa}, n = {n}, centre = {withCentre}, element {i}");
                }
            }
        }
    }

    [TestMethod]
    public void ShorterFillsArePrefixesAndTheCentreIsAddedAfterScaling()
    {
        var full = new float[1000];
        GaussianNoise.Fill(full, 9, 3, 0, 1f);
        foreach (int n in new[] { 1, 37, 64, 640, 999 })
        {
            var part = new float[n];
            GaussianNoise.Fill(part, 9, 3, 0, 1f);
            CollectionAssert.AreEqual(full[..n], part, $"prefix {n}");
        }
        var centre = Enumerable.Range(0, 1000).Select(i => i * 0.01f).ToArray();
        var scaled = new float[1000];
        var shifted = new float[1000];
        GaussianNoise.Fill(scaled, 9, 3, 0, 0.5f);
        GaussianNoise.Fill(shifted, 9, 3, 0, 0.5f, centre);
        for (int i = 0; i < 1000; i++)
        {
            Assert.AreEqual(full[i] * 0.5f, scaled[i], $"σ·z at {i}");
            Assert.AreEqual(centre[i] + scaled[i], shifted[i], $"c + σ·z at {i}");
        }
    }

    /// <summary>
    /// The float32 transform against Box–Muller in float64 on the same words and the same float32 u: |Δz| ≤ 1.5·10⁻⁶·max(1, r).
    /// Float32 rounding of ln u, √ and the products contributes a few 10⁻⁷ relative; the minimax polynomials are within 4·10⁻⁸.
    /// </summary>
    [TestMethod]
    public void Float32TransformMatchesFloat64BoxMuller()
    {
        const int n = 32 * 8000;
        var z = new float[n];
        var bits = new uint[n];
        GaussianNoise.Fill(z, 5, 6, 2, 1f);
        GaussianNoise.FillBits(bits, 5, 6, 2);
        double worst = 0;
        for (int e = 0; e < n; e++)
        {
            int g = e / 32, lane = e % 16;
            bool cosine = e % 32 < 16;
            uint a = bits[32 * g + lane], b = bits[32 * g + 16 + lane]; // a gives u, b the angle
            double u = (float)(int)(a >> 1) * (1f / 2147483648f) + (1f / 4294967296f); // u is a float32 (see the class remarks)
            double r = Math.Sqrt(-2 * Math.Log(u));
            double phi = (((b >> 5) & 0xFFFFFF) + 0.5) * Math.ScaleB(1, -24) * Math.PI / 4;
            if ((b >> 29 & 1) == 1)
                phi = Math.PI / 2 - phi;
            double expected = cosine ? r * Math.Cos(phi) * ((b >> 31) == 1 ? -1 : 1) : r * Math.Sin(phi) * ((b >> 30 & 1) == 1 ? -1 : 1);
            double err = Math.Abs(z[e] - expected) / Math.Max(1, r);
            worst = Math.Max(worst, err);
            Assert.IsLessThanOrEqualTo(1.5e-6, err, $"element {e}: float32 {z[e]:R}, float64 {expected:R}");
        }
        Console.WriteLine($"largest |Δz|/max(1, r): {worst:E2}");
    }

    [TestMethod]
    public void MomentsAndTailsAreThoseOfTheStandardNormal()
    {
        const int n = 4_000_000;
        var z = new float[n];
        GaussianNoise.Fill(z, 11, 0, 0, 1f);
        double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
        long over2 = 0, over3 = 0, over4 = 0;
        float max = 0;
        foreach (float v in z)
        {
            double x = v, x2 = x * x;
            s1 += x; s2 += x2; s3 += x2 * x; s4 += x2 * x2;
            double a = Math.Abs(x);
            over2 += a > 2 ? 1 : 0; over3 += a > 3 ? 1 : 0; over4 += a > 4 ? 1 : 0;
            max = Math.Max(max, (float)a);
        }
        // Standard errors of the sample moments of N(0, 1): √(1/n), √(2/n), √(15/n), √(96/n); bounds at 5 of them.
        Assert.IsLessThanOrEqualTo(5 * Math.Sqrt(1.0 / n), Math.Abs(s1 / n), "mean");
        Assert.IsLessThanOrEqualTo(5 * Math.Sqrt(2.0 / n), Math.Abs(s2 / n - 1), "variance");
        Assert.IsLessThanOrEqualTo(5 * Math.Sqrt(15.0 / n), Math.Abs(s3 / n), "third moment");
        Assert.IsLessThanOrEqualTo(5 * Math.Sqrt(96.0 / n), Math.Abs(s4 / n - 3), "fourth moment");
        foreach (var (count, t) in new[] { (over2, 2.0), (over3, 3.0), (over4, 4.0) })
        {
            double p = 2 * Normal.Cdf(-t), mean = n * p, sd = Math.Sqrt(n * p * (1 - p));
            Assert.IsLessThanOrEqualTo(5 * sd, Math.Abs(count - mean), $"P(|z| > {t}): {count} draws, expected {mean:F0}");
        }
        Assert.IsLessThanOrEqualTo(6.67f, max, "|z| ≤ √(64 ln 2)");
    }

    /// <summary>Kolmogorov–Smirnov against Φ on 10⁷ draws from 1000 streams: D·√n below 1.95 (the 0.1 % critical value).</summary>
    [TestMethod]
    public void KolmogorovSmirnovOnTenMillionDraws()
    {
        const int streams = 1000, per = 10_000, n = streams * per;
        var z = new float[n];
        for (int s = 0; s < streams; s++)
            GaussianNoise.Fill(z.AsSpan(s * per, per), 0xC0FFEE, (ulong)s, 1, 1f);
        Array.Sort(z);
        double d = 0;
        for (int i = 0; i < n; i++)
        {
            double f = Normal.Cdf(z[i]);
            d = Math.Max(d, Math.Max((i + 1.0) / n - f, f - (double)i / n));
        }
        Console.WriteLine($"KS: D = {d:E3}, D·√n = {d * Math.Sqrt(n):F3}");
        Assert.IsLessThanOrEqualTo(1.95, d * Math.Sqrt(n), $"D = {d:E3} on {n} draws");
    }

    /// <summary>
    /// Correlations of z and of z² (which catches dependence a zero correlation of z would hide, such as a shared
    /// radius) between neighbouring elements, the two outputs of one Box–Muller pair, neighbouring stream counters,
    /// keys and domains: each within 5/√n of 0.
    /// </summary>
    [TestMethod]
    public void StreamsKeysAndNeighboursAreUncorrelated()
    {
        const int n = 1 << 20;
        float[] Draw(ulong key, ulong stream, uint domain)
        {
            var x = new float[n];
            GaussianNoise.Fill(x, key, stream, domain, 1f);
            return x;
        }
        var a = Draw(1, 0, 0);
        var pairs = new (string What, float[] X, float[] Y)[]
        {
            ("next counter", a, Draw(1, 1, 0)),
            ("next key", a, Draw(2, 0, 0)),
            ("next domain", a, Draw(1, 0, 1)),
            ("high key bit", a, Draw(1UL << 32 | 1, 0, 0)),
            ("high counter bit", a, Draw(1, 1UL << 32, 0)),
            ("lag 1", a[..^1], a[1..]),
            ("Box–Muller pair", Partners(a, 0), Partners(a, 16)),
            ("next lane", a[..^16], a[16..]),
        };
        double bound = 5 / Math.Sqrt(n / 2.0);
        foreach (var (what, x, y) in pairs)
        {
            double r = Correlation(x, y, square: false), r2 = Correlation(x, y, square: true);
            Console.WriteLine($"{what}: ρ(z) = {r:E2}, ρ(z²) = {r2:E2}");
            Assert.IsLessThanOrEqualTo(bound, Math.Abs(r), $"{what}: correlation of z");
            Assert.IsLessThanOrEqualTo(bound, Math.Abs(r2), $"{what}: correlation of z²");
        }
    }

    [TestMethod]
    public void BitsAreUniform()
    {
        var bits = new uint[1 << 20];
        GaussianNoise.FillBits(bits, 3, 4, 5);
        var counts = new long[256];
        foreach (uint b in bits)
            counts[b >> 24]++;
        double expected = bits.Length / 256.0, chi2 = counts.Sum(c => (c - expected) * (c - expected) / expected);
        // χ² with 255 degrees of freedom: mean 255, sd √510 ≈ 22.6; the bound is 6 sd.
        Assert.IsLessThanOrEqualTo(255 + 6 * Math.Sqrt(510), chi2, "χ² of the top byte");
    }

    private static float[] Partners(float[] x, int offset)
    {
        var result = new List<float>(x.Length / 4);
        for (int g = 0; g + 64 <= x.Length; g += 64)
        {
            for (int i = 0; i < 16; i++)
            {
                result.Add(x[g + offset + i]);
                result.Add(x[g + 32 + offset + i]);
            }
        }
        return [.. result];
    }

    private static double Correlation(float[] x, float[] y, bool square)
    {
        int n = Math.Min(x.Length, y.Length);
        double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        for (int i = 0; i < n; i++)
        {
            double a = square ? (double)x[i] * x[i] : x[i], b = square ? (double)y[i] * y[i] : y[i];
            sx += a; sy += b; sxx += a * a; syy += b * b; sxy += a * b;
        }
        double cov = sxy / n - sx / n * (sy / n);
        return cov / Math.Sqrt((sxx / n - sx / n * (sx / n)) * (syy / n - sy / n * (sy / n)));
    }
}
