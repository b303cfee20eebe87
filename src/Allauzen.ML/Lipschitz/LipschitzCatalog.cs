using Allauzen.ML.Core;
using Allauzen.ML.Lipschitz;

namespace Microsoft.ML;

/// <summary>Catalog entry points of the Allauzen Lipschitz (certifiably robust) classifier and its evaluator.</summary>
public static class LipschitzCatalog
{
    /// <summary>
    /// A classifier that is Lipschitz by construction (SLL, CPL, AOL or spectral-rescaling layers), with a certified L2
    /// radius per prediction (<c>CertifiedRadius</c>).
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="options">The options; <c>new LipschitzClassifierOptions()</c> trains a dense SLL network.</param>
    /// <example><code>
    /// var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    ///     .Append(ml.MulticlassClassification.Trainers.LipschitzClassifier(new LipschitzClassifierOptions
    ///     {
    ///         Architecture = LipschitzArchitecture.Sll, Convolutional = true,
    ///         ImageHeight = 28, ImageWidth = 28, ImageChannels = 1, Width = 16, Depth = 4,
    ///     }));
    /// </code></example>
    public static LipschitzClassifierTrainer LipschitzClassifier(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        LipschitzClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        var env = CatalogEnvironment.Get(catalog);
        Allauzen.ML.Persistence.NativeBridge.TryRegister(env);
        return new LipschitzClassifierTrainer(env, options);
    }

    /// <summary>
    /// Certified accuracy of scored data: the fraction of rows that are correctly classified <i>and</i> have a certified
    /// radius above ε, for each ε in <paramref name="radii"/> (default 0, 36/255, 72/255, 108/255, 255/255).
    /// </summary>
    /// <param name="catalog">The multiclass catalog.</param>
    /// <param name="scored">Data scored by a model with a radius column.</param>
    /// <param name="labelColumnName">Key-typed label column.</param>
    /// <param name="predictedLabelColumnName">Predicted-label key column.</param>
    /// <param name="radiusColumnName">Certified radius column.</param>
    /// <param name="radii">The radii ε (non-negative, finite).</param>
    public static CertifiedAccuracyMetrics EvaluateCertified(this MulticlassClassificationCatalog catalog, IDataView scored,
        string labelColumnName = "Label", string predictedLabelColumnName = "PredictedLabel",
        string radiusColumnName = LipschitzClassifierTrainer.CertifiedRadiusColumnName, IReadOnlyList<double>? radii = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return CertifiedAccuracyMetrics.Compute(scored, labelColumnName, predictedLabelColumnName, radiusColumnName,
            radii ?? CertifiedAccuracyMetrics.DefaultRadii);
    }
}
