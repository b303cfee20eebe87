namespace Allauzen.ML.Benchmarks.Synthetic;

/// <summary>
/// The synthetic-data probes (measurements, not BenchmarkDotNet runs):
/// <c>-- --synthetic-speed latent|tabular [percentiles] [steps] [rows] [private-rows] [warmup] [threads]</c> (steps/s of
/// the flow, against reference_driver.py), <c>-- --synthetic-digits [reference-only]</c> (docs/results/synthetic-data.md),
/// <c>-- --synthetic-privacy [accounting|utility]</c> (docs/results/synthetic-privacy.md).
/// </summary>
internal static class SyntheticProbes
{
    public static void Run(string[] args)
    {
        switch (args[0])
        {
            case "--synthetic-speed":
                SyntheticSpeedProbe.Run(args);
                break;
            case "--synthetic-digits":
                SyntheticDigitsProbe.Run(args);
                break;
            case "--synthetic-privacy":
                SyntheticPrivacyProbe.Run(args);
                break;
            default:
                throw new ArgumentException($"unknown probe '{args[0]}': expected --synthetic-speed, --synthetic-digits or --synthetic-privacy");
        }
    }
}
