using Microsoft.ML.Data;

namespace Allauzen.ML.Quantization;

/// <summary>One row of <see cref="TwoBranchToy"/>: a 1-feature vector, a label and fresh draws of the label at the same x.</summary>
public sealed class TwoBranchToyRow
{
    /// <summary>The feature x ∈ [−1, 1], as a one-element vector.</summary>
    [VectorType(1)]
    public float[] Features { get; set; } = [];

    /// <summary>The label y = s·|x| + σ·ε with s = ±1 equiprobable and ε standard normal.</summary>
    public float Label { get; set; }

    /// <summary>Independent draws of the label given the same x (empty unless requested): the ground truth the evaluator compares the predicted law with.</summary>
    [VectorType]
    public float[] ReferenceSamples { get; set; } = [];
}

/// <summary>
/// The toy of the conditional quantization paper: y = ±|x| + σ·ε, x uniform on [−1, 1]. Its conditional law has two
/// branches of weight 1/2 at ±|x|; with two points the best distortion is the noise floor σ² (0.0025 for σ = 0.05).
/// Rows are a function of (seed, row index) only.
/// </summary>
public static class TwoBranchToy
{
    /// <summary>The toy's default noise standard deviation σ = 0.05.</summary>
    public const double DefaultNoise = 0.05;

    /// <summary>Generates <paramref name="rows"/> rows.</summary>
    /// <param name="rows">Number of rows (≥ 0).</param>
    /// <param name="seed">Seed; the same seed gives the same rows.</param>
    /// <param name="referenceSamples">Fresh label draws per row put in <see cref="TwoBranchToyRow.ReferenceSamples"/> (default 0).</param>
    /// <param name="noise">Noise standard deviation σ (≥ 0).</param>
    public static TwoBranchToyRow[] Generate(int rows, int seed, int referenceSamples = 0, double noise = DefaultNoise)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(referenceSamples);
        if (!(noise >= 0 && double.IsFinite(noise)))
            throw new ArgumentOutOfRangeException(nameof(noise), noise, "noise must be a non-negative finite number.");
        var result = new TwoBranchToyRow[rows];
        for (int i = 0; i < rows; i++)
        {
            var rng = new Random(unchecked((int)((((ulong)(uint)seed << 32) | (uint)i) * 0x9E3779B97F4A7C15UL >> 33)));
            double x = 2 * rng.NextDouble() - 1;
            var refs = new float[referenceSamples];
            for (int j = 0; j < refs.Length; j++)
                refs[j] = Sample(x, rng, noise);
            result[i] = new TwoBranchToyRow { Features = [(float)x], Label = Sample(x, rng, noise), ReferenceSamples = refs };
        }
        return result;
    }

    /// <summary>One draw of y given x: s·|x| + σ·ε.</summary>
    /// <param name="x">The feature.</param>
    /// <param name="rng">The random source.</param>
    /// <param name="noise">σ.</param>
    public static float Sample(double x, Random rng, double noise = DefaultNoise)
    {
        ArgumentNullException.ThrowIfNull(rng);
        double s = rng.NextDouble() < 0.5 ? -1 : 1;
        double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
        double eps = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        return (float)(s * Math.Abs(x) + noise * eps);
    }
}
