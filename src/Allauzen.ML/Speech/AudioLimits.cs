using System.Globalization;

namespace Allauzen.ML.Speech;

/// <summary>
/// Resource limits of one row of audio, checked from the header (sample rate, sample count) before any sample is
/// decoded or resampled. The defaults are those of <see cref="SslFeaturizerOptions"/>.
/// </summary>
/// <param name="MinSampleRate">Lowest accepted rate in Hz (default 1 kHz).</param>
/// <param name="MaxSampleRate">Highest accepted rate in Hz (default 384 kHz).</param>
/// <param name="MaxSeconds">Longest accepted duration in seconds (default 600).</param>
internal sealed record AudioLimits(int MinSampleRate, int MaxSampleRate, double MaxSeconds)
{
    /// <summary>1 kHz to 384 kHz, at most 10 minutes.</summary>
    public static AudioLimits Default { get; } = new(1000, 384000, 600);

    /// <summary>
    /// Throws an <see cref="InvalidDataException"/> (message without a source prefix) when <paramref name="rate"/> is
    /// outside [<see cref="MinSampleRate"/>, <see cref="MaxSampleRate"/>], there are no samples, or
    /// <paramref name="samples"/> at <paramref name="rate"/> last longer than <see cref="MaxSeconds"/>.
    /// </summary>
    public void Check(long samples, int rate)
    {
        if (rate < MinSampleRate || rate > MaxSampleRate)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"sample rate {rate} Hz is outside the accepted range [{MinSampleRate}, {MaxSampleRate}] Hz (SslFeaturizerOptions.MinSampleRate/MaxSampleRate)."));
        }
        if (samples == 0)
            throw new InvalidDataException("no samples (0 samples; a header-only or empty recording).");
        double seconds = (double)samples / rate;
        if (seconds > MaxSeconds)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"{samples} samples at {rate} Hz last {seconds:0.###} s, more than the limit of {MaxSeconds} s (SslFeaturizerOptions.MaxAudioSeconds)."));
        }
    }

    /// <summary>Throws an <see cref="InvalidDataException"/> naming the first sample that is NaN or infinite.</summary>
    public static void RequireFinite(ReadOnlySpan<float> x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            if (!float.IsFinite(x[i]))
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"sample {i} is {x[i]}; samples must be finite."));
        }
    }
}
