using System.Security.Cryptography;

namespace Allauzen.ML.Synthetic;

/// <summary>How <c>PrivateSyntheticData</c> releases the private rows (see docs/components/synthetic-data.md).</summary>
public enum PrivateSyntheticMechanism
{
    /// <summary>
    /// DPSWflow: the rows are projected on K fixed random directions and noised once, at <c>Fit</c>; σ from the
    /// analytic Gaussian mechanism (<see cref="DpSlicedWasserstein.AnalyticNoiseScale"/>). The flow then reuses that
    /// single release.
    /// </summary>
    FixedProjections,

    /// <summary>
    /// DPSWflow-r: at each of the <c>Steps</c> flow steps, K fresh random directions and a Poisson sample of the rows
    /// (rate <c>SamplingRate</c>) are projected and noised; the T releases are composed by the Rényi-DP accountant
    /// (<see cref="RdpAccountant.AddSampledRowRelease"/>) and σ is calibrated to the budget.
    /// </summary>
    ResampledProjections,
}

/// <summary>Seeds of the noise that protects the private rows: never derived from a user seed or persisted.</summary>
internal static class SecretSeed
{
    /// <summary>A 64-bit seed from the operating system's cryptographic generator.</summary>
    public static ulong Next()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes);
    }
}
