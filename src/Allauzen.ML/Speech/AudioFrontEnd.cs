using System.Collections.Concurrent;

namespace Allauzen.ML.Speech;

/// <summary>
/// Turns decoded audio into the encoder's input: resampling to the model rate, scaling, per-utterance
/// normalisation and zero-padding to the receptive field. The resampled length is checked against
/// <paramref name="maxSamples"/> (the duration limit at the model rate) before the resampler allocates anything.
/// </summary>
internal sealed class AudioFrontEnd(int modelRate, float scale, bool normalize, int minimumSamples, long maxSamples = long.MaxValue)
{
    /// <summary>HF <c>Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm</c> epsilon (recent versions).</summary>
    public const double NormalizeEpsilon = 1e-7;

    private readonly ConcurrentDictionary<int, Resampler> _resamplers = new();

    /// <summary>The model's sample rate.</summary>
    public int ModelRate => modelRate;

    /// <summary>Minimum length in samples (shorter input is zero-padded).</summary>
    public int MinimumSamples => minimumSamples;

    /// <summary>Prepares one utterance. <paramref name="validSamples"/> is its length before padding.</summary>
    public float[] Prepare(float[] samples, int rate, out int validSamples)
    {
        float[] x = rate == modelRate ? samples : _resamplers.GetOrAdd(rate, r => new Resampler(r, modelRate)).Process(samples, maxSamples);
        if (ReferenceEquals(x, samples) && (scale != 1f || normalize || x.Length < minimumSamples))
            x = (float[])x.Clone();
        if (scale != 1f)
        {
            for (int i = 0; i < x.Length; i++)
                x[i] *= scale;
        }
        if (normalize)
            Normalize(x);
        validSamples = x.Length;
        if (x.Length < minimumSamples)
            Array.Resize(ref x, minimumSamples);
        return x;
    }

    /// <summary>(x − mean)/√(var + 1e-7) in place, with mean and population variance accumulated in double.</summary>
    public static void Normalize(Span<float> x)
    {
        if (x.Length == 0)
            return;
        double sum = 0;
        foreach (float v in x)
            sum += v;
        double mean = sum / x.Length;
        double ss = 0;
        foreach (float v in x)
            ss += (v - mean) * (v - mean);
        double inv = 1.0 / Math.Sqrt(ss / x.Length + NormalizeEpsilon);
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)((x[i] - mean) * inv);
    }
}
