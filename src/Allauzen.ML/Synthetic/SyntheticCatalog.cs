using Allauzen.ML.Core;
using Allauzen.ML.Synthetic;

namespace Microsoft.ML;

/// <summary>Catalog entry point of the Allauzen private synthetic-data generator.</summary>
public static class SyntheticCatalog
{
    /// <summary>
    /// A differentially private synthetic-data generator: the fixed-projection sliced-Wasserstein flow (DPSWflow;
    /// Sebag et al., arXiv 2312.08227). Fit releases noised projection quantiles of the rows (clipped into the unit
    /// ball); the fitted generator's <c>Generate(rows, seed)</c> runs the flow on them.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The options; <c>new PrivateSyntheticDataOptions()</c> is the reference setting (ε = 5, δ = 1e-5).</param>
    /// <example><code>
    /// var generator = ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { Epsilon = 5, ClipNorm = 60 }).Fit(train);
    /// IDataView synthetic = generator.Generate(rows: 1000, seed: 1);
    /// Console.WriteLine(generator.PrivacyReport);
    /// </code></example>
    public static PrivateSyntheticDataEstimator PrivateSyntheticData(this TransformsCatalog catalog, PrivateSyntheticDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        var env = CatalogEnvironment.Get(catalog);
        Allauzen.ML.Persistence.NativeBridge.TryRegister(env);
        return new PrivateSyntheticDataEstimator(env, options);
    }
}
