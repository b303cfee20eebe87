using Allauzen.ML.Core;
using Allauzen.ML.Smoothing;

namespace Microsoft.ML;

/// <summary>Catalog entry points of randomized-smoothing certification.</summary>
public static class SmoothingCatalog
{
    /// <summary>
    /// Certifies each row of the data with randomized smoothing around a base classifier (an ONNX file or an
    /// Allauzen network): appends PredictedLabel (key; missing when abstaining), Abstained, CertifiedRadius (L2,
    /// feature units), LowerBoundTopClass, UpperBoundRunnerUp and NoiseSeed.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The options; set BaseModelOnnxPath or BaseModel.</param>
    /// <example><code>
    /// var certify = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
    /// {
    ///     BaseModelOnnxPath = "classifier.onnx", Sigma = 0.25, EstimationSamples = 10_000, Alpha = 0.001,
    /// });
    /// var certified = certify.Fit(test).Transform(test);
    /// var curve = ml.MulticlassClassification.EvaluateCertified(certified, radii: [0, 0.25, 0.5]);
    /// </code></example>
    public static RandomizedSmoothingEstimator CertifyRandomizedSmoothing(this TransformsCatalog catalog, RandomizedSmoothingOptions options) =>
        new RandomizedSmoothingEstimator(CatalogEntry.Environment(catalog), options);

    /// <summary>
    /// The sampling stage alone: appends per-row vote counts (and simplex-map moments for the LVM methods) so
    /// that the expensive Monte-Carlo pass runs once and <see cref="CertifySmoothingStatistics"/> certifies it
    /// with any α or method.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The options; Method decides which simplex maps are collected (LVM methods).</param>
    public static SmoothingSamplerEstimator SampleRandomizedSmoothing(this TransformsCatalog catalog, RandomizedSmoothingOptions options) =>
        new SmoothingSamplerEstimator(CatalogEntry.Environment(catalog), options);

    /// <summary>
    /// Certifies the statistics written by <see cref="SampleRandomizedSmoothing"/>: cheap, and re-runnable with
    /// any α, σ (the one used for sampling) or method.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">Method, α and σ.</param>
    public static SmoothingStatisticsCertifier CertifySmoothingStatistics(this TransformsCatalog catalog, SmoothingCertifierOptions options) =>
        new SmoothingStatisticsCertifier(CatalogEntry.Environment(catalog), options);
}
