namespace Allauzen.ML.Quantization;

/// <summary>
/// Options of the <see cref="ConditionalQuantizationTrainer"/> (conditional distribution quantization, CCLVQ): a shared
/// network with <see cref="NumberOfPoints"/> heads f₁..fₙ trained by competitive learning (only the head nearest to the
/// label gets the gradient), plus a classifier p(i|x) trained with cross-entropy on the winning head. The label is a
/// <c>Single</c> (or a <c>Vector&lt;Single, d&gt;</c> of known size), not a key: <see cref="TorchTrainerOptions.LabelColumnName"/>
/// names it, and <see cref="TorchTrainerOptions.PredictedLabelColumnName"/> is not used. Every option has a working default.
/// </summary>
public sealed class ConditionalQuantizationOptions : TorchTrainerOptions
{
    /// <summary>Number n of quantization points (heads) per row. Default 4. With 1 the trainer is plain MSE regression.</summary>
    public int NumberOfPoints { get; set; } = 4;

    /// <summary>Widths of the hidden ReLU layers of the shared trunk, input side first. Default { 64, 64 }. Empty = linear heads.</summary>
    public int[] HiddenSizes { get; set; } = [64, 64];

    /// <summary>
    /// Parameterise the points of a scalar label as f₁ = a, f_{i+1} = f_i + softplus(b_i), so they are sorted by construction
    /// and cannot swap (plain winner-takes-all can settle in a head-swap local minimum). Default true. Ignored (treated as
    /// false) for a vector label, whose points are not ordered.
    /// </summary>
    public bool SortedHeads { get; set; } = true;

    /// <summary>
    /// A head that wins fewer than <see cref="DeadHeadThreshold"/> of the training rows in an epoch is re-seeded during the
    /// next epoch: an extra squared-distance term pulls it toward the labels of the most populated cell. Default true.
    /// </summary>
    public bool ReinitializeDeadHeads { get; set; } = true;

    /// <summary>Fraction of the training rows under which a head counts as dead (see <see cref="ReinitializeDeadHeads"/>). Default 0.01.</summary>
    public double DeadHeadThreshold { get; set; } = 0.01;

    /// <summary>
    /// Train the mean first: during the first <see cref="WarmStartEpochs"/> epochs the loss is the squared error of the
    /// mean of the points (n = 1 regression), then competitive learning splits the points around it. Default false.
    /// </summary>
    public bool WarmStartFromMean { get; set; }

    /// <summary>Epochs of the warm start when <see cref="WarmStartFromMean"/> is set; must be below <see cref="TorchTrainerOptions.Epochs"/>. Default 5.</summary>
    public int WarmStartEpochs { get; set; } = 5;

    /// <summary>Name of the output column of the points (<c>Vector&lt;Single, n·d&gt;</c>, row-major n × d). Default <c>"QuantizationPoints"</c>.</summary>
    public string PointsColumnName { get; set; } = QuantizationColumnNames.Points;

    /// <summary>Name of the output column of the weights (<c>Vector&lt;Single, n&gt;</c>, summing to 1). Default <c>"QuantizationWeights"</c>.</summary>
    public string WeightsColumnName { get; set; } = QuantizationColumnNames.Weights;

    /// <summary>Name of the output column of the point of largest weight. Default <c>"ModePoint"</c>.</summary>
    public string ModePointColumnName { get; set; } = QuantizationColumnNames.ModePoint;

    /// <summary>
    /// Baseline for tests and benchmarks: train the same network (one point) with the plain mean squared error, without the
    /// argmin, the classifier or the win counts. Requires <see cref="NumberOfPoints"/> = 1.
    /// </summary>
    internal bool PlainMseBaseline { get; set; }

    internal override void Validate()
    {
        base.Validate();
        if (PlainMseBaseline && NumberOfPoints != 1)
            throw new ArgumentOutOfRangeException(nameof(NumberOfPoints), NumberOfPoints, "The plain MSE baseline has one point.");
        if (NumberOfPoints < 1 || NumberOfPoints > 4096)
            throw new ArgumentOutOfRangeException(nameof(NumberOfPoints), NumberOfPoints, $"NumberOfPoints must be in [1, 4096] (got {NumberOfPoints}).");
        ArgumentNullException.ThrowIfNull(HiddenSizes, nameof(HiddenSizes));
        for (int i = 0; i < HiddenSizes.Length; i++)
        {
            if (HiddenSizes[i] < 1)
                throw new ArgumentOutOfRangeException(nameof(HiddenSizes), HiddenSizes[i], $"HiddenSizes[{i}] must be at least 1 (got {HiddenSizes[i]}).");
        }
        if (!(DeadHeadThreshold >= 0 && DeadHeadThreshold < 1))
            throw new ArgumentOutOfRangeException(nameof(DeadHeadThreshold), DeadHeadThreshold, $"DeadHeadThreshold must be in [0, 1) (got {DeadHeadThreshold}).");
        if (WarmStartFromMean && (WarmStartEpochs < 1 || WarmStartEpochs >= Epochs))
            throw new ArgumentOutOfRangeException(nameof(WarmStartEpochs), WarmStartEpochs,
                $"WarmStartEpochs must be in [1, Epochs − 1] = [1, {Epochs - 1}] when WarmStartFromMean is set (got {WarmStartEpochs}).");
        ArgumentException.ThrowIfNullOrWhiteSpace(PointsColumnName, nameof(PointsColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(WeightsColumnName, nameof(WeightsColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(ModePointColumnName, nameof(ModePointColumnName));
        string[] names = [ScoreColumnName, PointsColumnName, WeightsColumnName, ModePointColumnName];
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
            throw new ArgumentException($"The output column names must differ (got {string.Join(", ", names)}).", nameof(PointsColumnName));
    }
}

/// <summary>Default names of the columns appended by the conditional quantization trainer.</summary>
public static class QuantizationColumnNames
{
    /// <summary>The quantization points: <c>Vector&lt;Single, n·d&gt;</c>, sorted ascending for a scalar label.</summary>
    public const string Points = "QuantizationPoints";

    /// <summary>The weights p(i|x) of the points: <c>Vector&lt;Single, n&gt;</c>, non-negative, summing to 1.</summary>
    public const string Weights = "QuantizationWeights";

    /// <summary>The point of largest weight.</summary>
    public const string ModePoint = "ModePoint";
}
