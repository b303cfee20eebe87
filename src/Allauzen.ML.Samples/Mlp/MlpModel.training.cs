// Model Builder-style training code: BuildPipeline, Train, SaveModel.
using Allauzen.ML.Mlp;
using Microsoft.ML;

namespace Allauzen.ML.Samples.Mlp;

public partial class MlpModel
{
    /// <summary>Label → key, features scaled to [0, 1], the MLP, key → label.</summary>
    public static IEstimator<ITransformer> BuildPipeline(MLContext ml, MlpOptions options) =>
        Common.ClassifierPipeline.Create(ml, () => [ml.Transforms.NormalizeMinMax("Features"), ml.MulticlassClassification.Trainers.Mlp(options)]);

    /// <summary>Fits the pipeline.</summary>
    public static ITransformer Train(MLContext ml, IDataView trainData, MlpOptions options) =>
        BuildPipeline(ml, options).Fit(trainData);

    /// <summary>Saves with ML.NET's own Model.Save (Allauzen parts included; loading needs no registration call); Predict then uses this file.</summary>
    public static void SaveModel(MLContext ml, ITransformer model, DataViewSchema schema, string path) =>
        Saved.Save(ml, model, schema, path);
}
