// Model Builder-style training code: BuildPipeline, Train, SaveModel.
using Allauzen.ML.Speech;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Speech;

public partial class SpeechModel
{
    /// <summary>The featurizer: WAV path → mean+std pooled SSL features (frozen encoder, nothing to train).</summary>
    public static SslFeaturizerOptions FeaturizerOptions(string onnxModel) => new()
    {
        ModelPath = onnxModel,
        InputColumnName = "Audio",
        OutputColumnName = "Features",
        Pooling = SslPooling.MeanStd,
        Layers = SslLayers.Average,
        IntraOpNumThreads = Math.Min(2, Environment.ProcessorCount),
    };

    /// <summary>The trainable head: label → key, standardised features, a maximum-entropy classifier, key → label.</summary>
    public static IEstimator<ITransformer> BuildHead(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.NormalizeMeanVariance("Features"))
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(l2Regularization: 0.1f))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    /// <summary>
    /// Featurizes once (cached), trains the head on the features, and returns featurizer + head as one model that
    /// takes WAV paths.
    /// </summary>
    public static (ITransformer Model, SslFeaturizerTransformer Featurizer) Train(MLContext ml, IDataView train, SslFeaturizerOptions options)
    {
        var featurizer = ml.Transforms.Speech.SslFeaturizer(options).Fit(train);
        var features = ml.Data.Cache(featurizer.Transform(train));
        var head = BuildHead(ml).Fit(features);
        return (new TransformerChain<ITransformer>(featurizer, head), featurizer);
    }

    /// <summary>Saves with ML.NET's own Model.Save (the featurizer with its ONNX model embedded; loading needs no registration call); Predict then uses this file.</summary>
    public static void SaveModel(MLContext ml, ITransformer model, DataViewSchema schema, string path) =>
        Saved.Save(ml, model, schema, path);
}
