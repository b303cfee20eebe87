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
        ConditionalQuantizationOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        var env = CatalogEnvironment.Get(catalog);
        Allauzen.ML.Persistence.NativeBridge.TryRegister(env);
        return new ConditionalQuantizationTrainer(env, options);
    }
}
