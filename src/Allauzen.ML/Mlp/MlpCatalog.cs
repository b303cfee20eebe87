using Allauzen.ML.Core;
using Allauzen.ML.Mlp;

namespace Microsoft.ML;

/// <summary>Catalog entry points of the Allauzen MLP trainer.</summary>
public static class MlpCatalog
{
    /// <summary>
    /// A multilayer perceptron classifier trained with backprop, with all options.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="options">The options; <c>new MlpOptions()</c> has working defaults.</param>
    /// <example><code>
    /// var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
    ///     .Append(ml.Transforms.NormalizeMinMax("Features"))
    ///     .Append(ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [256], Epochs = 10 }))
    ///     .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    /// </code></example>
    public static MlpTrainer Mlp(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, MlpOptions options) =>
        new MlpTrainer(CatalogEntry.Environment(catalog), options);

    /// <summary>
    /// A multilayer perceptron classifier trained with backprop, with the common options as arguments.
    /// </summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="labelColumnName">Key-typed label column.</param>
    /// <param name="featureColumnName">Feature vector column.</param>
    /// <param name="hiddenSizes">Hidden layer widths (default one layer of 128).</param>
    /// <param name="epochs">Passes over the data.</param>
    /// <param name="batchSize">Mini-batch size.</param>
    /// <param name="learningRate">Adam learning rate.</param>
    public static MlpTrainer Mlp(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", int[]? hiddenSizes = null,
        int epochs = 20, int batchSize = 64, double learningRate = 1e-3) =>
        catalog.Mlp(new MlpOptions
        {
            LabelColumnName = labelColumnName,
            FeatureColumnName = featureColumnName,
            HiddenSizes = hiddenSizes ?? [128],
            Epochs = epochs,
            BatchSize = batchSize,
            LearningRate = learningRate,
        });
}
