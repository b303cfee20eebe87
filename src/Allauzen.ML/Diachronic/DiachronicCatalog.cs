using Allauzen.ML.Core;
using Allauzen.ML.Diachronic;

namespace Microsoft.ML;

/// <summary>Catalog entry point of the Allauzen diachronic word embeddings.</summary>
public static class DiachronicCatalog
{
    /// <summary>
    /// Diachronic word embeddings over a dated corpus: dynamic Bernoulli embeddings with a drift regulariser
    /// (Rudolph &amp; Blei 2018; Montariol &amp; Allauzen 2019), incremental skip-gram (Kim et al. 2014), or independent
    /// skip-gram aligned by orthogonal Procrustes (Hamilton et al. 2016).
    /// </summary>
    /// <param name="catalog">The text transforms catalog.</param>
    /// <param name="options">The options; set at least <c>TokensColumnName</c> and <c>TimeColumnName</c>.</param>
    /// <example><code>
    /// var estimator = ml.Transforms.Text.DiachronicEmbeddings(new DiachronicEmbeddingsOptions
    /// {
    ///     TokensColumnName = "Tokens", TimeColumnName = "Year", SliceWidth = 4,
    ///     Model = DiachronicModel.IncrementalSkipGram, Dimensions = 100, Seed = 1,
    /// });
    /// var model = estimator.Fit(data);
    /// foreach (var (word, drift) in model.GetDriftRanking(0, model.SliceCount - 1, minCount: 30).Take(20))
    ///     Console.WriteLine($"{word} {drift:F3}");
    /// </code></example>
    public static DiachronicEmbeddingsEstimator DiachronicEmbeddings(this TransformsCatalog.TextTransforms catalog, DiachronicEmbeddingsOptions options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        var env = CatalogEnvironment.Get(catalog);
        Allauzen.ML.Persistence.NativeBridge.TryRegister(env);
        return new DiachronicEmbeddingsEstimator(env, options);
    }
}
