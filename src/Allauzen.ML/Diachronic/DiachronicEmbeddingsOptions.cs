namespace Allauzen.ML.Diachronic;

/// <summary>The diachronic embedding model trained by <see cref="DiachronicEmbeddingsEstimator"/>.</summary>
public enum DiachronicModel
{
    /// <summary>
    /// Dynamic Bernoulli embeddings (Rudolph &amp; Blei 2018): a CBOW-style Bernoulli likelihood with negative
    /// sampling, one context matrix shared over time and one embedding matrix per slice tied by a drift
    /// penalty (<see cref="DiachronicEmbeddingsOptions.DriftRegularizer"/>); MAP fit with dense Adam (hand-written on the CPU, TorchSharp on another <see cref="DiachronicEmbeddingsOptions.Device"/>),
    /// static pre-fit then dynamic fit with the context matrix frozen.
    /// </summary>
    DynamicBernoulli,

    /// <summary>
    /// Incremental skip-gram with negative sampling (Kim et al. 2014): one model carried from slice to slice
    /// (both matrices), the learning rate restarted per slice, new words initialised when they first occur.
    /// </summary>
    IncrementalSkipGram,

    /// <summary>
    /// Independent skip-gram per slice, aligned by a chain of orthogonal Procrustes rotations (Hamilton et al.
    /// 2016): slice t is rotated onto aligned slice t−1 on the words both slices share.
    /// </summary>
    AlignedSkipGram,
}

/// <summary>
/// The drift penalty on Δ_t = ρ_t − ρ_{t−1} of the dynamic Bernoulli model (Montariol &amp; Allauzen 2019
/// regularise the drift; their exact form is not public, so the variants are pluggable).
/// </summary>
public enum DriftRegularizer
{
    /// <summary>Gaussian random walk (Rudolph &amp; Blei): λ/2 · Σ_t ‖Δ_t‖².</summary>
    RandomWalk,

    /// <summary>Random walk plus an anchor to the first slice: + μ · Σ_t ‖ρ_t − ρ_0‖².</summary>
    Anchored,

    /// <summary>Random walk plus a group lasso on each word's drift: + μ · Σ_{t,w} ‖Δ_{t,w}‖₂ (most words become static).</summary>
    GroupLasso,

    /// <summary>Random walk, then after every step the per-coordinate drifts with |Δ| &lt; θ are set to zero (hard shrink, θ = <see cref="DiachronicEmbeddingsOptions.HardShrinkThreshold"/>).</summary>
    HardShrink,

    /// <summary>Frequency-aware random walk: λ_{t,w} = λ · (1 + μ / (1 + n_{t,w})), so words seen rarely in a slice are held closer to their previous position.</summary>
    FrequencyAware,
}

/// <summary>How the skip-gram models (and the dynamic Bernoulli static pre-fit) are initialised.</summary>
public enum DiachronicInitialization
{
    /// <summary>Random input vectors (uniform ±0.5/K), zero output vectors, as word2vec.</summary>
    Random,

    /// <summary>
    /// Pre-train on the whole corpus (all slices together) for <see cref="DiachronicEmbeddingsOptions.InitEpochs"/> epochs,
    /// then train the slices ("internal" initialisation; the largest single gain on scarce data).
    /// </summary>
    WholeCorpus,

    /// <summary>
    /// Each slice starts from the previous slice's model. This is what the incremental model always does; for the
    /// aligned model it replaces independent training (no pre-training), for the dynamic model ρ_t starts from ρ_{t−1}
    /// instead of the static fit (the same thing at the start of the dynamic phase).
    /// </summary>
    PreviousSlice,
}

/// <summary>How a DateTime time column is binned into integer time values.</summary>
public enum TimeGranularity
{
    /// <summary>Calendar year (2019).</summary>
    Year,

    /// <summary>Months since year 0 (year·12 + month − 1).</summary>
    Month,

    /// <summary>Days since 0001-01-01.</summary>
    Day,
}

/// <summary>Drift measure of a word between slices.</summary>
public enum DriftMeasure
{
    /// <summary>Cosine distance 1 − cos(v_from, v_to) (Kim, Hamilton).</summary>
    Cosine,

    /// <summary>Sum of the adjacent-slice cosine distances from <c>fromSlice</c> to <c>toSlice</c> ("path").</summary>
    CosinePath,

    /// <summary>Squared Euclidean distance ‖v_to − v_from‖² (Rudolph &amp; Blei's <c>detect_drift</c>).</summary>
    SquaredEuclidean,

    /// <summary>
    /// Squared Euclidean distance scaled by the word's evidence, ‖v_to − v_from‖² / H^{1/4} with H = n_from·n_to / (n_from + n_to)
    /// (at least 1) from the word's counts in the two slices: a frequent word's vectors wander further by optimiser noise alone.
    /// </summary>
    ScaledSquaredEuclidean,
}

/// <summary>
/// Options of <c>ml.Transforms.Text.DiachronicEmbeddings</c>. Defaults follow gensim for the skip-gram models
/// (K = 100, window 5, 5 negatives, subsampling 1e-3, min count 5, 5 epochs per slice); for the dynamic Bernoulli
/// model, the notes' working setting (λ₀ = 1, 4 context words, 10 negatives, subsampling 1e-3) with λ = 30, Adam
/// lr 1e-2 for 150 static pre-fit steps then 1e-3 for 800 dynamic steps, chosen on the shipped CI corpus.
/// </summary>
public sealed class DiachronicEmbeddingsOptions
{
    /// <summary>Input tokens: a vector of strings (tokens), or a text column split on white space. Default "Tokens".</summary>
    public string TokensColumnName { get; set; } = "Tokens";

    /// <summary>Time column: an integer type (any width; the value, e.g. a year) or DateTime (binned by <see cref="TimeGranularity"/>). Default "Time".</summary>
    public string TimeColumnName { get; set; } = "Time";

    /// <summary>
    /// Optional order column: an integer (or DateTime) value that orders the sentences inside a slice, such as the line
    /// or document number of the corpus. The dynamic model's contexts and minibatch windows run over a slice's sentences
    /// in this order, so neighbouring lines of one document stay neighbours. Default null: within a slice, sentences are
    /// ordered by time value, then by a hash of (<see cref="Seed"/>, tokens), whatever the order of the rows.
    /// </summary>
    public string? OrderColumnName { get; set; }

    /// <summary>Output column: the mean of the row's token vectors in the row's slice, Vector&lt;Single, K&gt; (zeros when the row's time lies outside the trained slices or none of its tokens has a vector there). Default "Embedding".</summary>
    public string OutputColumnName { get; set; } = "Embedding";

    /// <summary>Optional second output: the vectors of every token of the row, concatenated (variable-length Vector&lt;Single&gt; of n·K; zeros for a token without a vector). Default null (not produced).</summary>
    public string? TokenEmbeddingsColumnName { get; set; }

    /// <summary>Model. Default <see cref="DiachronicModel.IncrementalSkipGram"/>.</summary>
    public DiachronicModel Model { get; set; } = DiachronicModel.IncrementalSkipGram;

    /// <summary>Embedding size K. Default 100.</summary>
    public int Dimensions { get; set; } = 100;

    /// <summary>Seed of every random stream (initialisation, subsampling, windows, negatives). Default 1.</summary>
    public int Seed { get; set; } = 1;

    /// <summary>Width of a slice in time units (e.g. 4 with a year column gives 4-year slices). Default 1.</summary>
    public int SliceWidth { get; set; } = 1;

    /// <summary>Time value where slice 0 starts; null = the smallest time value of the training data. Slice of time t = ⌊(t − origin) / width⌋.</summary>
    public long? SliceOrigin { get; set; }

    /// <summary>Binning of a DateTime time column. Default <see cref="TimeGranularity.Year"/>.</summary>
    public TimeGranularity Granularity { get; set; } = TimeGranularity.Year;

    /// <summary>
    /// Rows may come in any order: while reading, sentences are bucketed by slice as token ids, in memory up to this many
    /// bytes (4 per token plus 28 per sentence), in a temporary file beyond (deleted after). Within a slice the sentences
    /// are ordered by time value, then by <see cref="OrderColumnName"/> when given, then by a hash of (<see cref="Seed"/>,
    /// tokens), so sorted and shuffled rows give the same model. Default 1 GiB.
    /// </summary>
    public long MaxInMemoryBytes { get; set; } = 1L << 30;

    /// <summary>When false (default), a slice between the first and the last without any in-vocabulary token is an error. When true it is kept: the skip-gram models carry the previous slice over, the dynamic model interpolates through its prior.</summary>
    public bool AllowEmptySlices { get; set; }

    /// <summary>Words with fewer occurrences over the whole corpus are dropped (removed from the token streams). Default 5.</summary>
    public int MinCount { get; set; } = 5;

    /// <summary>Keep at most this many words (the most frequent); 0 = no limit. Default 0.</summary>
    public int MaxVocabularySize { get; set; }

    /// <summary>Skip-gram: maximal window (a random effective window 1..Window is drawn per position, as word2vec). The dynamic model uses <see cref="ContextSize"/> instead. Default 5.</summary>
    public int Window { get; set; } = 5;

    /// <summary>Dynamic model: number of context words (half on each side), cs in Rudolph's code. Default 4.</summary>
    public int ContextSize { get; set; } = 4;

    /// <summary>Negative samples per positive pair (skip-gram, default 5) or per target (dynamic model uses <see cref="DynamicNegatives"/>).</summary>
    public int Negatives { get; set; } = 5;

    /// <summary>Dynamic model: negatives per target drawn from the global unigram^0.75. Default 10.</summary>
    public int DynamicNegatives { get; set; } = 10;

    /// <summary>Subsampling threshold of frequent words (word2vec formula); 0 disables. Default 1e-3 (the dynamic model fails on scarce data with Rudolph's 1e-5).</summary>
    public double Subsampling { get; set; } = 1e-3;

    /// <summary>Skip-gram epochs per slice. Default 5.</summary>
    public int Epochs { get; set; } = 5;

    /// <summary>Epochs of whole-corpus pre-training (<see cref="DiachronicInitialization.WholeCorpus"/>). Default 5.</summary>
    public int InitEpochs { get; set; } = 5;

    /// <summary>Initialisation. Default <see cref="DiachronicInitialization.WholeCorpus"/>.</summary>
    public DiachronicInitialization Initialization { get; set; } = DiachronicInitialization.WholeCorpus;

    /// <summary>Skip-gram starting learning rate (linear decay to <see cref="MinLearningRate"/>, restarted per slice). Default 0.025.</summary>
    public double LearningRate { get; set; } = 0.025;

    /// <summary>Skip-gram final learning rate. Default 1e-4.</summary>
    public double MinLearningRate { get; set; } = 1e-4;

    /// <summary>Skip-gram worker threads (Hogwild; 1 gives bit-reproducible runs), and the dynamic model's threads over words on the CPU (any count gives the same result). Default 2.</summary>
    public int Threads { get; set; } = 2;

    /// <summary>Aligned model: the Procrustes rotation of slice t onto slice t−1 is fitted on the words with at least this many occurrences in both slices (all shared words when fewer than K qualify). Default 20.</summary>
    public int AlignmentMinCount { get; set; } = 20;

    /// <summary>Dynamic model: random-walk precision λ = 1/σ². Must scale with slice size; 10–100 suits slices of 0.2–0.7 M tokens (Rudolph's code uses 1e4, far too stiff there). Default 30.</summary>
    public double DriftPrecision { get; set; } = 30;

    /// <summary>Dynamic model: prior precision λ₀ of ρ_0 and of the context vectors. Default 1.</summary>
    public double PriorPrecision { get; set; } = 1;

    /// <summary>Dynamic model: drift penalty strategy. Default <see cref="DriftRegularizer.RandomWalk"/>.</summary>
    public DriftRegularizer DriftRegularizer { get; set; } = DriftRegularizer.RandomWalk;

    /// <summary>Weight μ of the extra drift penalty (anchored, group lasso, frequency-aware). Default 10.</summary>
    public double DriftPenaltyWeight { get; set; } = 10;

    /// <summary>Threshold θ of <see cref="DriftRegularizer.HardShrink"/>. Default 1e-2.</summary>
    public double HardShrinkThreshold { get; set; } = 1e-2;

    /// <summary>Dynamic model: Adam steps of the static pre-fit (context vectors and one ρ). Default 150.</summary>
    public int StaticSteps { get; set; } = 150;

    /// <summary>
    /// Dynamic model: Adam steps of the dynamic fit (context vectors frozen). Default 800: at the small
    /// <see cref="DynamicLearningRate"/> the ρ_t of a word that really changes needs this many steps to move away from the
    /// static fit (docs/results/diachronic-dbe.md).
    /// </summary>
    public int DynamicSteps { get; set; } = 800;

    /// <summary>Dynamic model: fraction of every slice's token stream used per step (a contiguous window at a random offset). Default 0.01.</summary>
    public double BatchFraction { get; set; } = 0.01;

    /// <summary>Dynamic model: Adam learning rate of the static pre-fit. Default 1e-2.</summary>
    public double StaticLearningRate { get; set; } = 1e-2;

    /// <summary>
    /// Dynamic model: Adam learning rate of the dynamic fit. Default 1e-3: dense Adam moves every word's ρ_t by about
    /// the learning rate per step whatever its evidence, so a smaller step than the pre-fit's keeps that noise below
    /// the drift of words that really change (docs/results/diachronic.md, 2026-12-06 sweep).
    /// </summary>
    public double DynamicLearningRate { get; set; } = 1e-3;

    /// <summary>Dynamic model: "cpu" (hand-written gradients, <see cref="Threads"/> threads) or a TorchSharp device ("cuda", "cuda:1", "auto"). Default "cpu".</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Refuse configurations whose model state needs more bytes than this; 0 = 80 % of the memory available to the process. Default 0.</summary>
    public long MemoryLimitBytes { get; set; }

    /// <summary>Progress reports (phase, slice, fraction done, words/s), or null.</summary>
    public IProgress<DiachronicProgress>? Progress { get; set; }

    /// <summary>Cancels training (checked between chunks of work).</summary>
    public CancellationToken CancellationToken { get; set; }

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(TokensColumnName, nameof(TokensColumnName));
        ArgumentException.ThrowIfNullOrEmpty(TimeColumnName, nameof(TimeColumnName));
        ArgumentException.ThrowIfNullOrEmpty(OutputColumnName, nameof(OutputColumnName));
        if (OrderColumnName is not null && OrderColumnName.Length == 0)
            throw new ArgumentException("OrderColumnName must be null (no order column) or a column name, not empty.", nameof(OrderColumnName));
        if (!Enum.IsDefined(Model))
            throw new ArgumentOutOfRangeException(nameof(Model), Model, "Model is not a defined DiachronicModel.");
        if (!Enum.IsDefined(DriftRegularizer))
            throw new ArgumentOutOfRangeException(nameof(DriftRegularizer), DriftRegularizer, "DriftRegularizer is not a defined value.");
        if (!Enum.IsDefined(Initialization))
            throw new ArgumentOutOfRangeException(nameof(Initialization), Initialization, "Initialization is not a defined value.");
        if (!Enum.IsDefined(Granularity))
            throw new ArgumentOutOfRangeException(nameof(Granularity), Granularity, "Granularity is not a defined value.");
        Positive(Dimensions, nameof(Dimensions), 1, 4096);
        Positive(SliceWidth, nameof(SliceWidth), 1, int.MaxValue);
        Positive(MinCount, nameof(MinCount), 1, int.MaxValue);
        Positive(MaxVocabularySize, nameof(MaxVocabularySize), 0, int.MaxValue);
        Positive(Window, nameof(Window), 1, 100);
        Positive(AlignmentMinCount, nameof(AlignmentMinCount), 1, int.MaxValue);
        Positive(ContextSize, nameof(ContextSize), 2, 100);
        if (ContextSize % 2 != 0)
            throw new ArgumentOutOfRangeException(nameof(ContextSize), ContextSize, "ContextSize must be even (half on each side).");
        Positive(Negatives, nameof(Negatives), 1, 100);
        Positive(DynamicNegatives, nameof(DynamicNegatives), 1, 100);
        Positive(Epochs, nameof(Epochs), 1, 10000);
        Positive(InitEpochs, nameof(InitEpochs), 1, 10000);
        Positive(Threads, nameof(Threads), 1, 256);
        Positive(StaticSteps, nameof(StaticSteps), 0, int.MaxValue);
        Positive(DynamicSteps, nameof(DynamicSteps), 0, int.MaxValue);
        if (!(Subsampling >= 0 && Subsampling < 1))
            throw new ArgumentOutOfRangeException(nameof(Subsampling), Subsampling, "Subsampling must be in [0, 1).");
        if (!(LearningRate > 0 && LearningRate < 10))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be in (0, 10).");
        if (!(MinLearningRate >= 0 && MinLearningRate <= LearningRate))
            throw new ArgumentOutOfRangeException(nameof(MinLearningRate), MinLearningRate, "MinLearningRate must be in [0, LearningRate].");
        if (!(DriftPrecision >= 0 && double.IsFinite(DriftPrecision)))
            throw new ArgumentOutOfRangeException(nameof(DriftPrecision), DriftPrecision, "DriftPrecision must be finite and ≥ 0.");
        if (!(PriorPrecision >= 0 && double.IsFinite(PriorPrecision)))
            throw new ArgumentOutOfRangeException(nameof(PriorPrecision), PriorPrecision, "PriorPrecision must be finite and ≥ 0.");
        if (!(DriftPenaltyWeight >= 0 && double.IsFinite(DriftPenaltyWeight)))
            throw new ArgumentOutOfRangeException(nameof(DriftPenaltyWeight), DriftPenaltyWeight, "DriftPenaltyWeight must be finite and ≥ 0.");
        if (!(HardShrinkThreshold >= 0 && double.IsFinite(HardShrinkThreshold)))
            throw new ArgumentOutOfRangeException(nameof(HardShrinkThreshold), HardShrinkThreshold, "HardShrinkThreshold must be finite and ≥ 0.");
        if (!(BatchFraction > 0 && BatchFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(BatchFraction), BatchFraction, "BatchFraction must be in (0, 1].");
        if (!(StaticLearningRate > 0 && StaticLearningRate < 10))
            throw new ArgumentOutOfRangeException(nameof(StaticLearningRate), StaticLearningRate, "StaticLearningRate must be in (0, 10).");
        if (!(DynamicLearningRate > 0 && DynamicLearningRate < 10))
            throw new ArgumentOutOfRangeException(nameof(DynamicLearningRate), DynamicLearningRate, "DynamicLearningRate must be in (0, 10).");
        if (MaxInMemoryBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(MaxInMemoryBytes), MaxInMemoryBytes, "MaxInMemoryBytes must be ≥ 0.");
        if (MemoryLimitBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(MemoryLimitBytes), MemoryLimitBytes, "MemoryLimitBytes must be ≥ 0 (0 = automatic).");
        ArgumentException.ThrowIfNullOrEmpty(Device, nameof(Device));
    }

    private static void Positive(long value, string name, long min, long max)
    {
        if (value < min || value > max)
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [{min}, {max}] (got {value}).");
    }

    internal DiachronicEmbeddingsOptions Clone() => (DiachronicEmbeddingsOptions)MemberwiseClone();
}

/// <summary>A progress report of diachronic training.</summary>
/// <param name="Phase">"vocabulary", "corpus", "init", "slice", "static", "dynamic" or "align".</param>
/// <param name="Slice">The slice being trained, or −1.</param>
/// <param name="Fraction">Fraction of the phase done, 0..1.</param>
/// <param name="WordsPerSecond">Skip-gram raw words per second so far in the phase (0 for the dynamic model).</param>
/// <param name="Loss">Dynamic model: last negative log-posterior per target; NaN otherwise.</param>
public sealed record DiachronicProgress(string Phase, int Slice, double Fraction, double WordsPerSecond, double Loss);
