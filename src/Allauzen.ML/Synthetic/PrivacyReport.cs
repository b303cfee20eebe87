namespace Allauzen.ML.Synthetic;

/// <summary>
/// What a <see cref="PrivateSyntheticDataTransformer"/> guarantees: the data entered the generator only through
/// <see cref="Classes"/> releases of the Gaussian mechanism, each (<see cref="EpsilonPerRelease"/>,
/// <see cref="DeltaPerRelease"/>)-differentially private for the replacement of one row (rows clipped into the unit
/// ball), composing to (<see cref="Epsilon"/>, <see cref="Delta"/>). Everything generated afterwards is post-processing.
/// </summary>
/// <remarks>
/// Class-conditional generators: each class release reads only the rows of its class, so two neighbouring data sets
/// (one row's features replaced, its class unchanged) differ in one release only, and the C releases together are
/// (ε, δ)-DP when each is (parallel composition): every class spends the whole budget. The class of a row, hence the
/// class sizes, is not protected (a row changing class changes the number of rows of two releases, which no release
/// here accounts for); put the label into the features instead when it must be protected.
/// </remarks>
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

    /// <summary>Number of releases on disjoint rows (classes; 1 when not class-conditional).</summary>
    public required int Classes { get; init; }

    /// <summary>ε of each class release: ε itself (the releases read disjoint rows: parallel composition).</summary>
    public double EpsilonPerRelease => Epsilon;

    /// <summary>δ of each class release: δ itself (parallel composition).</summary>
    public double DeltaPerRelease => Delta;

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
