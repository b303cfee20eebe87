using Allauzen.ML.Core;
using Allauzen.ML.Speech;

namespace Microsoft.ML;

/// <summary>
/// Speech transforms of Allauzen.ML, reached as <c>ml.Transforms.Speech</c>.
/// </summary>
public sealed class SpeechCatalog
{
    private readonly IHostEnvironment _env;

    internal SpeechCatalog(TransformsCatalog transforms) => _env = CatalogEntry.Environment(transforms);

    /// <summary>
    /// Self-supervised speech features (wav2vec 2.0 such as LeBenchmark, HuBERT, WavLM, or any ONNX encoder with a
    /// dynamic sample axis) from WAV files, WAV bytes or float samples, pooled for ML.NET trainers.
    /// </summary>
    /// <param name="options">The options; <see cref="SslFeaturizerOptions.ModelPath"/> (or the model bytes) is required.</param>
    /// <example><code>
    /// var pipeline = ml.Transforms.Speech.SslFeaturizer(new SslFeaturizerOptions { ModelPath = "wav2vec2-fr-7k-large.onnx" })
    ///     .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
    ///     .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy());
    /// </code></example>
    public SslFeaturizerEstimator SslFeaturizer(SslFeaturizerOptions options) => new SslFeaturizerEstimator(_env, options);
}
