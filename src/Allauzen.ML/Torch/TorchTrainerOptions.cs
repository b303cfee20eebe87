using System.Text.Json.Serialization;

namespace Allauzen.ML;

/// <summary>
/// Options shared by every Allauzen trainer backed by TorchSharp: columns, the training loop,
/// the device, determinism, progress and cancellation. Each trainer's options class derives from it.
/// </summary>
public abstract class TorchTrainerOptions
{
    /// <summary>Label column: a key type (apply <c>MapValueToKey</c> first). Default <c>"Label"</c>.</summary>
    public string LabelColumnName { get; set; } = AllauzenColumnNames.Label;

    /// <summary>Feature column: <c>Vector&lt;Single, n&gt;</c> of known size. Default <c>"Features"</c>.</summary>
    public string FeatureColumnName { get; set; } = AllauzenColumnNames.Features;

    /// <summary>Name of the output score column. Default <c>"Score"</c>.</summary>
    public string ScoreColumnName { get; set; } = AllauzenColumnNames.Score;

    /// <summary>Name of the output predicted-label column. Default <c>"PredictedLabel"</c>.</summary>
    public string PredictedLabelColumnName { get; set; } = AllauzenColumnNames.PredictedLabel;

    /// <summary>Number of passes over the training data. Default 20.</summary>
    public int Epochs { get; set; } = 20;

    /// <summary>Mini-batch size. Default 64.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Optimizer. Default <see cref="OptimizerKind.Adam"/>.</summary>
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.Adam;

    /// <summary>Initial learning rate. Default 1e-3.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Learning-rate schedule over epochs. Default <see cref="ML.LearningRateSchedule.Constant"/>.</summary>
    public LearningRateSchedule LearningRateSchedule { get; set; } = LearningRateSchedule.Constant;

    /// <summary>Epochs between decays for <see cref="ML.LearningRateSchedule.Step"/>. Default 10.</summary>
    public int StepSize { get; set; } = 10;

    /// <summary>Decay factor for <see cref="ML.LearningRateSchedule.Step"/>. Default 0.1.</summary>
    public double StepGamma { get; set; } = 0.1;

    /// <summary>Weight decay (L2 for SGD/Adam, decoupled for AdamW). Default 0.</summary>
    public double WeightDecay { get; set; }

    /// <summary>Momentum for SGD. Default 0.9.</summary>
    public double Momentum { get; set; } = 0.9;

    /// <summary>Fraction of the training rows held out for validation (by a hash of the row id). Default 0 (none).</summary>
    public double ValidationFraction { get; set; }

    /// <summary>Separate validation data with the same schema; takes precedence over <see cref="ValidationFraction"/>.</summary>
    [JsonIgnore]
    public IDataView? ValidationData { get; set; }

    /// <summary>Stop when validation loss has not improved for this many epochs, and keep the best epoch's weights. 0 = off (default).</summary>
    public int EarlyStoppingPatience { get; set; }

    /// <summary>Random seed; null (default) takes one from the <c>MLContext</c> seed.</summary>
    public int? Seed { get; set; }

    /// <summary>Device: <c>"auto"</c> (default: CUDA when available, else CPU), <c>"cpu"</c>, <c>"cuda"</c> or <c>"cuda:N"</c>.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Intra-op threads for libtorch; 0 (default) leaves libtorch's choice.</summary>
    public int NumberOfThreads { get; set; }

    /// <summary>How training data is read. Default <see cref="ML.DataCaching.Auto"/>.</summary>
    public DataCaching DataCaching { get; set; } = DataCaching.Auto;

    /// <summary>Largest feature matrix (bytes) that <see cref="ML.DataCaching.Auto"/> keeps in memory. Default 1 GiB.</summary>
    public long MaxInMemoryBytes { get; set; } = 1L << 30;

    /// <summary>Rows kept in the shuffle pool when streaming a view that cannot shuffle itself. Default 10,000.</summary>
    public int ShufflePoolSize { get; set; } = 10_000;

    /// <summary>Rows with NaN/infinite features or a missing label: throw (default) or skip.</summary>
    public InvalidRowPolicy InvalidRows { get; set; } = InvalidRowPolicy.Throw;

    /// <summary>Rows scored per forward pass by the trained transformer. Default 256.</summary>
    public int ScoringBatchSize { get; set; } = 256;

    /// <summary>Receives one <see cref="TrainingProgress"/> per epoch.</summary>
    [JsonIgnore]
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels training between mini-batches (an <see cref="OperationCanceledException"/> is thrown).</summary>
    [JsonIgnore]
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option.</summary>
    internal virtual void Validate()
    {
        static void Check(bool ok, string name, object value, string rule)
        {
            if (!ok)
                throw new ArgumentOutOfRangeException(name, value, $"{name} {rule} (got {value}).");
        }
        ArgumentException.ThrowIfNullOrWhiteSpace(LabelColumnName, nameof(LabelColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(FeatureColumnName, nameof(FeatureColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(ScoreColumnName, nameof(ScoreColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(PredictedLabelColumnName, nameof(PredictedLabelColumnName));
        Check(Epochs >= 1, nameof(Epochs), Epochs, "must be at least 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be at least 1");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "must be a positive finite number");
        Check(StepSize >= 1, nameof(StepSize), StepSize, "must be at least 1");
        Check(StepGamma > 0 && StepGamma <= 1, nameof(StepGamma), StepGamma, "must be in (0, 1]");
        Check(WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "must be non-negative");
        Check(Momentum >= 0 && Momentum < 1, nameof(Momentum), Momentum, "must be in [0, 1)");
        Check(ValidationFraction >= 0 && ValidationFraction < 1, nameof(ValidationFraction), ValidationFraction, "must be in [0, 1)");
        Check(EarlyStoppingPatience >= 0, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "must be non-negative");
        Check(NumberOfThreads >= 0, nameof(NumberOfThreads), NumberOfThreads, "must be non-negative");
        Check(MaxInMemoryBytes >= 0, nameof(MaxInMemoryBytes), MaxInMemoryBytes, "must be non-negative");
        Check(ShufflePoolSize >= 1, nameof(ShufflePoolSize), ShufflePoolSize, "must be at least 1");
        Check(ScoringBatchSize >= 1, nameof(ScoringBatchSize), ScoringBatchSize, "must be at least 1");
        if (EarlyStoppingPatience > 0 && ValidationData is null && ValidationFraction == 0)
            throw new ArgumentException("EarlyStoppingPatience needs validation data: set ValidationData or ValidationFraction.", nameof(EarlyStoppingPatience));
    }
}
