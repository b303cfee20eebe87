using Allauzen.ML.Core;
using Allauzen.ML.Foton;

namespace Microsoft.ML;

/// <summary>Catalog entry point of the FOTON trainer.</summary>
public static class FotonCatalog
{
    /// <summary>
    /// An orthogonal, bias-free MLP classifier trained forward-only with FOTON (or with PEPITA or backprop
    /// on the same network, for comparison), with all options.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="options">The options; <c>new FotonOptions()</c> is the reference configuration (784-256-256-10 style, ReLU, dropout 0.1, SGD lr 0.5, batch 256).</param>
    /// <example><code>
    /// var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    ///     .Append(ml.Transforms.NormalizeMeanVariance("Features"))
    ///     .Append(ml.MulticlassClassification.Trainers.Foton(new FotonOptions { HiddenSizes = [256, 256], Epochs = 2 }))
    ///     .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    /// </code></example>
    public static FotonTrainer Foton(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, FotonOptions options) =>
        new FotonTrainer(CatalogEntry.Environment(catalog), options);
}
