namespace Allauzen.ML.Synthetic;

/// <summary>
/// What a <see cref="PrivateSyntheticDataTransformer"/> guarantees: the data entered the generator only through
/// <see cref="Classes"/> releases of the Gaussian mechanism, each (<see cref="EpsilonPerRelease"/>,
/// <see cref="DeltaPerRelease"/>)-differentially private for the replacement of one row (rows clipped into the unit
/// ball), composing to (<see cref="Epsilon"/>, <see cref="Delta"/>). Everything generated afterwards is post-processing.
/// </summary>
public sealed record PrivacyReport
{
    /// <summary>Total ε of the release (+∞ when the noise is off: no privacy).</summary>
    public required double Epsilon { get; init; }

    /// <summary>Total δ of the release.</summary>
    public required double Delta { get; init; }

    /// <summary>σ of the Gaussian noise added to each projected coordinate (0 when ε = +∞).</summary>
    public required double Sigma { get; init; }

    /// <summary>K: the number of released directions.</summary>
    public required int Projections { get; init; }

    /// <summary>The mechanism and its accounting, in words.</summary>
    public required string Mechanism { get; init; }

    /// <summary>Number of releases (classes; 1 when not class-conditional).</summary>
    public required int Classes { get; init; }

    /// <summary>ε of each release (ε/C).</summary>
    public double EpsilonPerRelease => Epsilon / Classes;

    /// <summary>δ of each release (δ/C).</summary>
    public double DeltaPerRelease => Delta / Classes;

    /// <summary>
    /// True when the guarantee covers the whole generator: its saved file and every row it generates. False in latent
    /// mode with an autoencoder trained on the private rows (no <c>Latent.PublicData</c>): then only the release of the
    /// codes is (ε, δ)-private, and the decoder, fitted on the private rows without noise, is not.
    /// </summary>
    public bool CoversWholeGenerator { get; init; } = true;

    /// <summary>The Gaussian mechanism's high-probability ℓ₂ sensitivity Δ of one release (<see cref="DpSlicedWasserstein.Sensitivity"/>).</summary>
    public required double Sensitivity { get; init; }

    /// <summary>Releases composed per class: 1 for fixed projections, T (one per flow step) for resampled projections.</summary>
    public int Steps { get; init; } = 1;

    /// <summary>The Poisson sampling rate q of each release (1: every row).</summary>
    public double SamplingRate { get; init; } = 1;

    /// <summary>
    /// True when the min-max bounds of a tabular generator were fitted on the private data: they are stored in the
    /// generator, released without protection, and not covered by (<see cref="Epsilon"/>, <see cref="Delta"/>).
    /// </summary>
    public bool BoundsFittedOnData { get; init; }
}
