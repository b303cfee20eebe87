using Allauzen.ML.Core;
using Allauzen.ML.Quantization;

namespace Microsoft.ML;

/// <summary>Catalog entry points of conditional distribution quantization.</summary>
public static class ConditionalQuantizationCatalog
{
    /// <summary>
    /// A regression trainer that predicts n weighted points per row (a quantization of the law of the label given the
    /// features) instead of one mean: output columns <c>Score</c> (the weighted mean), <c>QuantizationPoints</c>,
    /// <c>QuantizationWeights</c> and <c>ModePoint</c>. The label is a <c>Single</c> or a <c>Vector&lt;Single, d&gt;</c>.
    /// </summary>
    /// <param name="catalog">The regression trainers catalog.</param>
    /// <param name="options">The options; <c>new ConditionalQuantizationOptions()</c> has working defaults.</param>
    /// <example><code>
    /// var pipeline = ml.Transforms.NormalizeMinMax("Features")
    ///     .Append(ml.Regression.Trainers.ConditionalQuantization(new ConditionalQuantizationOptions { NumberOfPoints = 2, Epochs = 50 }));
    /// </code></example>
    public static ConditionalQuantizationTrainer ConditionalQuantization(this RegressionCatalog.RegressionTrainers catalog,
        ConditionalQuantizationOptions options) =>
        new ConditionalQuantizationTrainer(CatalogEntry.Environment(catalog), options);

    /// <summary>
    /// Evaluates predicted quantizations (the output of the conditional quantization trainer) against the labels:
    /// distortion, RMSE of the score, coverage and width of the interval built from the points, and, when each row carries
    /// reference samples of its label's law (several y observed at the same x, or draws from a ground-truth sampler),
    /// W₂ and energy distance between the predicted law and those samples.
    /// </summary>
    /// <param name="catalog">The regression catalog.</param>
    /// <param name="data">Scored data.</param>
    /// <param name="labelColumnName">The label: <c>Single</c> or <c>Vector&lt;Single, d&gt;</c>. Rows with a non-finite label are skipped.</param>
    /// <param name="referenceSamplesColumnName">Optional <c>Vector&lt;Single&gt;</c> of reference draws of a scalar label per row (non-finite values ignored).</param>
    /// <param name="pointsColumnName">The points column.</param>
    /// <param name="weightsColumnName">The weights column.</param>
    /// <param name="scoreColumnName">The score (predicted mean) column.</param>
    /// <param name="intervalLevel">Nominal level of the interval, in (0, 1). Default 0.9.</param>
    public static QuantizationMetrics EvaluateQuantization(this RegressionCatalog catalog, IDataView data, string labelColumnName = "Label",
        string? referenceSamplesColumnName = null, string pointsColumnName = QuantizationColumnNames.Points,
        string weightsColumnName = QuantizationColumnNames.Weights, string scoreColumnName = "Score", double intervalLevel = 0.9)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return QuantizationEvaluator.Evaluate(data, labelColumnName, referenceSamplesColumnName, pointsColumnName, weightsColumnName,
            scoreColumnName, intervalLevel);
    }
}
