namespace Allauzen.ML.Synthetic;

/// <summary>Progress of <see cref="PrivateSyntheticDataTransformer.Generate"/>: one report per flow step.</summary>
/// <param name="Class">The class being generated (0-based; 0 when the flow is not class-conditional).</param>
/// <param name="Classes">The number of classes (1 when the flow is not class-conditional).</param>
/// <param name="Step">The step just finished (1-based).</param>
/// <param name="Steps">The number of steps per class.</param>
public sealed record SyntheticDataProgress(int Class, int Classes, int Step, int Steps);

/// <summary>
/// Options of <c>ml.Transforms.PrivateSyntheticData</c>: the differentially private sliced-Wasserstein flow
/// (DPSWflow, fixed projections). Defaults are the reference configuration (K = 70, S = 25, 1500 steps, dt = 3,
/// λ = 0, ε = 5, δ = 1e-5); <see cref="Percentiles"/> defaults to 100 (the reference uses 30 000 on 60 000 rows).
/// </summary>
public sealed partial class PrivateSyntheticDataOptions
{
    /// <summary>The private rows: a <c>Vector&lt;Single, d&gt;</c> column of known size. Default <c>"Features"</c>.</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>Total privacy budget ε &gt; 0 of the release; <see cref="double.PositiveInfinity"/> turns the noise off
    /// (no privacy, for utility baselines). Default 5.</summary>
    public double Epsilon { get; set; } = 5;

    /// <summary>Total δ in (0, 1): half goes to the failure probability of the sensitivity bound, half to the Gaussian
    /// mechanism. Keep it well below 1/rows. Default 1e-5.</summary>
    public double Delta { get; set; } = 1e-5;

    /// <summary>K: the fixed random unit directions the data are released through. The sensitivity grows like √K.
    /// Default 70.</summary>
    public int NumberOfProjections { get; set; } = 70;

    /// <summary>S: directions drawn with replacement among the K at each flow step (post-processing). Default 25.</summary>
    public int SubProjections { get; set; } = 25;

    /// <summary>M: quantiles kept per released direction (at linspace(0, 1, M)); the only thing the generator keeps of
    /// the data. Default 100.</summary>
    public int Percentiles { get; set; } = 100;

    /// <summary>Flow steps per generated set. Default 1500.</summary>
    public int Steps { get; set; } = 1500;

    /// <summary>dt: the Euler step of the flow. Default 3.</summary>
    public double StepSize { get; set; } = 3;

    /// <summary>λ ≥ 0: the entropic (Langevin) term √(2·dt·λ)·z of each step. Default 0.</summary>
    public double Lambda { get; set; }

    /// <summary>
    /// Every row is divided by ClipNorm, and a row whose norm then exceeds 1 is scaled back onto the unit sphere, so all
    /// rows lie in the unit ball, as the sensitivity bound requires (enforced, never optional). Generated rows are
    /// multiplied back by ClipNorm. Choose it from public knowledge (e.g. the range of the features), never from the
    /// private data. Default 1.
    /// </summary>
    public double ClipNorm { get; set; } = 1;

    /// <summary>
    /// Public lower bounds of the d features (with <see cref="UpperBounds"/>), or null (default). When set, each value is
    /// clamped to [lower, upper] and mapped to [−½, ½] before <see cref="ClipNorm"/> applies (set ClipNorm = √d/2 to
    /// clip nothing), and generated values are mapped back and clamped to the bounds. The bounds must not be computed
    /// from the private data (that would leak outside the accounted budget).
    /// </summary>
    public float[]? LowerBounds { get; set; }

    /// <summary>Public upper bounds of the d features (with <see cref="LowerBounds"/>), or null (default).</summary>
    public float[]? UpperBounds { get; set; }

    /// <summary>
    /// Groups of slot indices that hold one-hot encoded categoricals (e.g. from <c>OneHotEncoding</c> then
    /// <c>Concatenate</c>), or null (default). Each generated group is rounded back to a one-hot vector at its largest
    /// value (post-processing). Groups have at least 2 slots and are disjoint.
    /// </summary>
    public int[][]? CategoricalSlots { get; set; }

    /// <summary>
    /// A key-typed label column, or null (default). When set, one release and one flow per class. The releases read
    /// disjoint rows, so each spends the whole (ε, δ) (parallel composition, reported in <see cref="PrivacyReport"/>):
    /// the guarantee covers the features of each row given its class; the class of a row is not protected. Generation
    /// splits rows evenly across classes (class sizes are not released by the generator).
    /// </summary>
    public string? ClassConditional { get; set; }

    // ---- Latent mode (LatentAutoencoderOptions.cs) ----

    /// <summary>
    /// The latent mode, or null (default: the flow runs on the features themselves). When set, an autoencoder is
    /// trained (on <see cref="LatentAutoencoderOptions.PublicData"/>, else on the private rows, which the privacy report
    /// then excludes from its guarantee), the flow runs on unit-norm codes of <see cref="LatentAutoencoderOptions.LatentDimension"/>
    /// values, and generated codes are decoded back to the feature column. <see cref="ClipNorm"/> must stay 1 (codes
    /// are unit vectors by construction), <see cref="LowerBounds"/>/<see cref="UpperBounds"/> only clamp the decoded
    /// values, and <see cref="CategoricalSlots"/> is not supported.
    /// </summary>
    public LatentAutoencoderOptions? Latent { get; set; }

    /// <summary>Seed of the directions and of the release noise. Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>Receives one <see cref="SyntheticDataProgress"/> per flow step of <c>Generate</c>. Not persisted.</summary>
    public IProgress<SyntheticDataProgress>? Progress { get; set; }

    /// <summary>Cancels <c>Fit</c> and <c>Generate</c>. Not persisted.</summary>
    public CancellationToken CancellationToken { get; set; }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(FeatureColumnName))
            throw new ArgumentException("FeatureColumnName must name a column.", nameof(FeatureColumnName));
        if (ClassConditional is not null && string.IsNullOrWhiteSpace(ClassConditional))
            throw new ArgumentException("ClassConditional must be null or name a key-typed column.", nameof(ClassConditional));
        if (!(Epsilon > 0))
            throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, $"Epsilon must be positive or +∞ (got {Epsilon}).");
        if (!(Delta > 0 && Delta < 1))
            throw new ArgumentOutOfRangeException(nameof(Delta), Delta, $"Delta must be in (0, 1) (got {Delta}).");
        Check(NumberOfProjections, 1, 100_000, nameof(NumberOfProjections));
        Check(SubProjections, 1, 100_000, nameof(SubProjections));
        Check(Percentiles, 2, 1_000_000, nameof(Percentiles));
        Check(Steps, 0, 10_000_000, nameof(Steps));
        if (!(StepSize > 0 && double.IsFinite(StepSize)))
            throw new ArgumentOutOfRangeException(nameof(StepSize), StepSize, $"StepSize must be a positive finite number (got {StepSize}).");
        if (!(Lambda >= 0 && double.IsFinite(Lambda)))
            throw new ArgumentOutOfRangeException(nameof(Lambda), Lambda, $"Lambda must be a non-negative finite number (got {Lambda}).");
        if (!(ClipNorm > 0 && double.IsFinite(ClipNorm)))
            throw new ArgumentOutOfRangeException(nameof(ClipNorm), ClipNorm, $"ClipNorm must be a positive finite number (got {ClipNorm}).");
        ValidateMechanism();
        ValidateTabularColumns();
        if (Latent is { } latent)
        {
            latent.Validate();
            if (ClipNorm != 1)
                throw new ArgumentOutOfRangeException(nameof(ClipNorm), ClipNorm, $"ClipNorm must be 1 with Latent set: the codes are unit vectors (got {ClipNorm}).");
            if (CategoricalSlots is not null)
                throw new ArgumentException("CategoricalSlots is not supported with Latent set.", nameof(CategoricalSlots));
            if (InputColumnNames is not null)
                throw new ArgumentException("InputColumnNames (tabular mode) is not supported with Latent set: give one feature vector column.", nameof(InputColumnNames));
            if (Mechanism != PrivateSyntheticMechanism.FixedProjections)
                throw new ArgumentException($"Mechanism must be FixedProjections with Latent set (got {Mechanism}).", nameof(Mechanism));
        }
    }

    /// <summary>Checks the tabular settings against the feature dimension d (known at Fit, or from a saved file).</summary>
    internal void ValidateTabular(int d)
    {
        if ((LowerBounds is null) != (UpperBounds is null))
            throw new ArgumentException("LowerBounds and UpperBounds must be set together.", nameof(LowerBounds));
        if (LowerBounds is { } lo && UpperBounds is { } hi)
        {
            if (lo.Length != d || hi.Length != d)
                throw new ArgumentException($"LowerBounds and UpperBounds must have the feature dimension {d} (got {lo.Length} and {hi.Length}).", nameof(LowerBounds));
            for (int t = 0; t < d; t++)
            {
                if (!(float.IsFinite(lo[t]) && float.IsFinite(hi[t]) && lo[t] < hi[t]))
                    throw new ArgumentException($"Feature {t}: bounds [{lo[t]}, {hi[t]}] must be finite with lower < upper.", nameof(LowerBounds));
            }
        }
        if (CategoricalSlots is { } groups)
        {
            var seen = new HashSet<int>();
            for (int g = 0; g < groups.Length; g++)
            {
                if (groups[g] is not { Length: >= 2 } slots)
                    throw new ArgumentException($"CategoricalSlots[{g}] must list at least 2 slots.", nameof(CategoricalSlots));
                foreach (int slot in slots)
                {
                    if (slot < 0 || slot >= d || !seen.Add(slot))
                        throw new ArgumentException($"CategoricalSlots[{g}]: slot {slot} is out of [0, {d}) or in another group.", nameof(CategoricalSlots));
                }
            }
        }
    }

    private static void Check(int value, int min, int max, string name)
    {
        if (value < min || value > max)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [{min}, {max}] (got {value}).");
    }
}
