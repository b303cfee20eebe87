namespace Allauzen.ML.Synthetic;

/// <content>The mechanism block: fixed (DPSWflow) or resampled (DPSWflow-r) projections and the latter's settings.</content>
public sealed partial class PrivateSyntheticDataOptions
{
    /// <summary>
    /// <see cref="PrivateSyntheticMechanism.FixedProjections"/> (default; one release at <c>Fit</c>) or
    /// <see cref="PrivateSyntheticMechanism.ResampledProjections"/> (DPSWflow-r: one release per flow step, all of them
    /// made at <c>Fit</c> and accounted with <see cref="RdpAccountant"/>; <see cref="SubProjections"/> is not used,
    /// every step uses its K fresh directions, as the reference does).
    /// </summary>
    public PrivateSyntheticMechanism Mechanism { get; set; } = PrivateSyntheticMechanism.FixedProjections;

    /// <summary>
    /// Resampled projections only: the Poisson sampling rate q in (0, 1] of the rows at each step (each row enters a
    /// step's release independently with probability q). Default 1 (every row at every step).
    /// </summary>
    public double SamplingRate { get; set; } = 1;

    /// <summary>
    /// Resampled projections only: the noise multiplier z = σ/Δ of every step, or null (default) to calibrate the
    /// smallest z whose accounted ε is at most <see cref="Epsilon"/>. When set, <see cref="Epsilon"/> is ignored and
    /// the accounted ε is reported.
    /// </summary>
    public double? NoiseMultiplier { get; set; }

    /// <summary>Checks the mechanism block.</summary>
    internal void ValidateMechanism()
    {
        if (!Enum.IsDefined(Mechanism))
            throw new ArgumentOutOfRangeException(nameof(Mechanism), Mechanism, $"Mechanism must be FixedProjections or ResampledProjections (got {Mechanism}).");
        if (!(SamplingRate > 0 && SamplingRate <= 1))
            throw new ArgumentOutOfRangeException(nameof(SamplingRate), SamplingRate, $"SamplingRate must be in (0, 1] (got {SamplingRate}).");
        if (NoiseMultiplier is double z && !(z > 0 && double.IsFinite(z)))
            throw new ArgumentOutOfRangeException(nameof(NoiseMultiplier), z, $"NoiseMultiplier must be null or a positive finite number (got {z}).");
        if (Mechanism == PrivateSyntheticMechanism.FixedProjections && (SamplingRate != 1 || NoiseMultiplier is not null))
            throw new ArgumentException(
                $"SamplingRate ({SamplingRate}) and NoiseMultiplier ({NoiseMultiplier?.ToString() ?? "null"}) apply to Mechanism = ResampledProjections only; leave them at 1 and null.",
                nameof(Mechanism));
        if (Mechanism == PrivateSyntheticMechanism.ResampledProjections && Steps < 1)
            throw new ArgumentOutOfRangeException(nameof(Steps), Steps, $"Steps must be at least 1 with ResampledProjections (each step is a release) (got {Steps}).");
    }

    /// <summary>A shallow copy (every option, including those of other blocks), for internal rewrites.</summary>
    internal PrivateSyntheticDataOptions Copy() => (PrivateSyntheticDataOptions)MemberwiseClone();
}
