namespace Allauzen.ML.Tests.TestSupport;

/// <summary>
/// Compares numbers computed here with numbers computed elsewhere (a fixture written on another CPU, by another
/// library or in another precision). libtorch, MKL, oneDNN and ONNX Runtime pick their kernels by instruction set
/// (AVX2, AVX-512, ...), so a float32 GEMM, convolution or tanh/exp may round differently in the last bits on another
/// x86-64 CPU: such comparisons need a tolerance derived from float32 rounding of the computation, not bit equality.
/// Results compared within one process (save → load, same seed twice) stay bit-exact in the tests that check them.
/// </summary>
public static class FloatTolerance
{
    /// <summary>float32 machine epsilon, 2^-23 (one ulp of 1.0; the unit roundoff is half of it).</summary>
    public const double Float32Epsilon = 1.0 / (1 << 23);

    /// <summary>
    /// Asserts |actual − expected| ≤ <paramref name="relUlps"/> · 2^-23 · |expected| + <paramref name="abs"/> for every
    /// element; the failure names the first index outside, both values, the difference and the difference in float32
    /// ulps of the expected value.
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relUlps, double abs, string message)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{message}: length");
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i], diff = Math.Abs(a - e);
            double allowed = relUlps * Float32Epsilon * Math.Abs(e) + abs;
            if (!(diff <= allowed))
            {
                Assert.Fail($"{message}: [{i}] expected {expected[i]:R}, actual {actual[i]:R}, difference {diff:E3} = {Ulps(expected[i], diff):F1} ulp " +
                    $"(allowed {relUlps} ulp relative + {abs:E1} absolute = {allowed:E3})");
            }
            worst = Math.Max(worst, Ulps(expected[i], diff));
        }
        Console.WriteLine($"{message}: largest difference {worst:F1} ulp over {expected.Length} values");
    }

    /// <summary>Distance from <paramref name="x"/> to the next float32 away from zero.</summary>
    public static double Ulp(float x)
    {
        float m = Math.Abs(x);
        return float.IsFinite(m) ? (double)MathF.BitIncrement(m) - m : double.NaN;
    }

    private static double Ulps(float expected, double diff) => diff / Ulp(expected);
}
