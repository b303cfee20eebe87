namespace Allauzen.ML.Speech;

/// <summary>Progress of a featurization, reported after every scored batch of rows.</summary>
/// <param name="Rows">Rows featurized so far by this transformer.</param>
/// <param name="AudioSeconds">Seconds of audio (at the model's rate, before padding) featurized so far.</param>
/// <param name="Elapsed">Wall-clock time spent featurizing (decode, resample, encoder, pooling).</param>
public sealed record SslFeaturizerProgress(long Rows, double AudioSeconds, TimeSpan Elapsed)
{
    /// <summary>Audio seconds per wall-clock second (above 1 = faster than real time).</summary>
    public double RealTimeFactor => Elapsed.TotalSeconds > 0 ? AudioSeconds / Elapsed.TotalSeconds : 0;
}
