// Model Builder-style training code: BuildPipeline, Train, SaveModel.
using Allauzen.ML.Foton;
using Microsoft.ML;

namespace Allauzen.ML.Samples.Foton;

public partial class FotonModel
{
    /// <summary>
    /// Label → key, the FOTON trainer (FOTON, PEPITA or backprop on the same orthogonal MLP), key → label.
    /// The features are standardised before (one global mean and standard deviation, as the reference runs).
    /// </summary>
    public static IEstimator<ITransformer> BuildPipeline(MLContext ml, FotonOptions options) =>
        Common.ClassifierPipeline.Create(ml, () => [ml.MulticlassClassification.Trainers.Foton(options)]);

    /// <summary>Fits the pipeline.</summary>
    public static ITransformer Train(MLContext ml, IDataView trainData, FotonOptions options) =>
        BuildPipeline(ml, options).Fit(trainData);

    /// <summary>The settings of the reference measurements (docs/components/foton.md, "The reference code and its measurement settings") for each algorithm.</summary>
    public static FotonOptions Options(string algorithm, int depth, FotonActivation activation, int epochs, int seed)
    {
        var o = new FotonOptions
        {
            HiddenSizes = [.. Enumerable.Repeat(256, depth)], Activation = activation, Epochs = epochs, Seed = seed,
            Dropout = 0.1, AlignmentDiagnostics = false,
        };
        switch (algorithm)
        {
            case "foton":
                break; // SGD lr 0.5, batch 256, warm-started projection every step
            case "pepita":
                o.Algorithm = FotonAlgorithm.Pepita;
                o.LearningRate = 0.01;
                o.Momentum = 0.9;
                o.BatchSize = 64;
                break;
            case "backprop":
                o.Algorithm = FotonAlgorithm.Backprop;
                o.LearningRate = 0.1;
                break;
            case "backprop_ortho":
                o.Algorithm = FotonAlgorithm.Backprop;
                o.ProjectBackprop = true;
                break;
            default:
                throw new ArgumentException($"Unknown algorithm '{algorithm}': use foton, pepita, backprop or backprop_ortho.");
        }
        return o;
    }

    /// <summary>Saves with ML.NET's own Model.Save, through a temporary file and a rename; Predict then uses this file.</summary>
    public static void SaveModel(MLContext ml, ITransformer model, DataViewSchema schema, string path) =>
        Saved.Save(ml, model, schema, path);
}
