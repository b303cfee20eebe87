// Model Builder-style training code: BuildPipeline, Train, SaveModel.
using Allauzen.ML.Lipschitz;
using Microsoft.ML;

namespace Allauzen.ML.Samples.Lipschitz;

public partial class LipschitzModel
{
    /// <summary>
    /// Label → key, the certified classifier, key → label. No min-max normalisation: the features are already in [0, 1],
    /// and a per-feature rescaling would change the geometry the radius is measured in.
    /// </summary>
    public static IEstimator<ITransformer> BuildPipeline(MLContext ml, LipschitzClassifierOptions options) =>
        Common.ClassifierPipeline.Create(ml, () => [ml.MulticlassClassification.Trainers.LipschitzClassifier(options)]);

    /// <summary>Fits the pipeline.</summary>
    public static ITransformer Train(MLContext ml, IDataView trainData, LipschitzClassifierOptions options) =>
        BuildPipeline(ml, options).Fit(trainData);

    /// <summary>Saves with ML.NET's Model.Save (temporary file, then rename); Predict then uses this file.</summary>
    public static void SaveModel(MLContext ml, ITransformer model, DataViewSchema schema, string path) =>
        Saved.Save(ml, model, schema, path);
}
