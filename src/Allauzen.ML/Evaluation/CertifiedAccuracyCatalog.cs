using Allauzen.ML;
using Allauzen.ML.Evaluation;

namespace Microsoft.ML;

/// <summary>The certified-accuracy evaluator of every Allauzen certificate (Lipschitz classifiers, randomized smoothing).</summary>
public static class CertifiedAccuracyCatalog
{
    /// <summary>
    /// Certified accuracy of scored data: the clean accuracy and, for each ε in <paramref name="radii"/>, the fraction of rows
    /// <b>certified at ε</b>, i.e. whose certified radius is ≥ ε <b>and</b> whose prediction is correct (an abstention, a missing
    /// predicted key, is never correct). The radius column may be <c>Single</c> (Lipschitz classifiers) or <c>Double</c>
    /// (randomized smoothing); both are compared as <c>Double</c>.
    /// </summary>
    /// <param name="catalog">The multiclass catalog.</param>
    /// <param name="scored">Data scored by a certifying model (e.g. <c>LipschitzClassifier</c>, <c>CertifyRandomizedSmoothing</c>).</param>
    /// <param name="radiusColumnName">The certified radius column (<c>Single</c> or <c>Double</c>).</param>
    /// <param name="labelColumnName">Key-typed label column, in the model's key order (apply MapValueToKey first).</param>
    /// <param name="predictedLabelColumnName">Predicted-label key column (0 = abstain).</param>
    /// <param name="radii">The radii ε (non-negative, finite); default <see cref="CertifiedAccuracyMetrics.DefaultRadii"/>.</param>
    /// <param name="saturationRadius">The largest radius the certifier can give, reported with the curve and drawn by the plot
    /// (e.g. <c>RandomizedSmoothingTransformer.SaturationRadius</c>); NaN (the default) when none.</param>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type (the message names it, the expected and
    /// the actual type), or a radius is negative or not finite.</exception>
    /// <example><code>
    /// var cert = ml.MulticlassClassification.EvaluateCertified(model.Transform(test));
    /// Console.Write(cert.ToTable());     // certified accuracy at ε = 0, 36, 72, 108, 255 /255
    /// </code></example>
    public static CertifiedAccuracyMetrics EvaluateCertified(this MulticlassClassificationCatalog catalog, IDataView scored,
        string radiusColumnName = AllauzenColumnNames.CertifiedRadius, string labelColumnName = AllauzenColumnNames.Label,
        string predictedLabelColumnName = AllauzenColumnNames.PredictedLabel, IReadOnlyList<double>? radii = null, double saturationRadius = double.NaN)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return CertifiedAccuracyCounts.Count(scored, radiusColumnName, labelColumnName, predictedLabelColumnName,
            radii ?? CertifiedAccuracyMetrics.DefaultRadii, saturationRadius).ToMetrics();
    }
}
