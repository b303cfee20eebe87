using Allauzen.ML.Core;
using Allauzen.ML.Lipschitz;

namespace Microsoft.ML;

/// <summary>
/// Catalog entry point of the Allauzen Lipschitz (certifiably robust) classifier; its certified accuracy is evaluated with
/// <see cref="CertifiedAccuracyCatalog.EvaluateCertified"/>.
/// </summary>
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
        LipschitzClassifierOptions options) =>
        new LipschitzClassifierTrainer(CatalogEntry.Environment(catalog), options);
}
