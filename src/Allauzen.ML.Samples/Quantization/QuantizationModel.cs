// Model Builder-style code for Old Faithful: ModelInput, ModelOutput, BuildPipeline, Train, SaveModel, Predict.
using Allauzen.ML.Quantization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Quantization;

public static class QuantizationModel
{
    /// <summary>One eruption of Old Faithful: its duration (minutes) and the waiting time to the next one (minutes).</summary>
    public class ModelInput
    {
        [LoadColumn(0), ColumnName(@"Eruptions")]
        public float Eruptions { get; set; }

        [LoadColumn(1), ColumnName(@"Waiting")]
        public float Waiting { get; set; }
    }

    /// <summary>The prediction: the mean, the weighted points of the waiting time's law, and the most likely point.</summary>
    public class ModelOutput
    {
        [ColumnName(@"Score")]
        public float Score { get; set; }

        [ColumnName(@"QuantizationPoints")]
        public float[] QuantizationPoints { get; set; } = [];

        [ColumnName(@"QuantizationWeights")]
        public float[] QuantizationWeights { get; set; } = [];

        [ColumnName(@"ModePoint")]
        public float ModePoint { get; set; }
    }

    public static string DataPath => Path.Combine(AppContext.BaseDirectory, "Data", "faithful.csv");

    private static string MLNetModelPath = Path.GetFullPath("QuantizationModel.zip");

    /// <summary>Eruption duration → Features, scaled to [0, 1], then the conditional quantizer of the waiting time.</summary>
    public static IEstimator<ITransformer> BuildPipeline(MLContext ml, ConditionalQuantizationOptions options)
    {
        options.LabelColumnName = "Waiting";
        return ml.Transforms.Concatenate("Features", "Eruptions")
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.Regression.Trainers.ConditionalQuantization(options));
    }

    /// <summary>Fits the pipeline.</summary>
    public static ITransformer Train(MLContext ml, IDataView trainData, ConditionalQuantizationOptions options) =>
        BuildPipeline(ml, options).Fit(trainData);

    /// <summary>Saves with ML.NET's own Model.Save; Predict then uses this file.</summary>
    public static void SaveModel(MLContext ml, ITransformer model, DataViewSchema schema, string path)
    {
        Common.ModelFile.Save(ml, model, schema, path);
        MLNetModelPath = Path.GetFullPath(path);
    }

    /// <summary>Predicts one input with the model at MLNetModelPath (loaded with plain ml.Model.Load).</summary>
    public static ModelOutput Predict(ModelInput input)
    {
        var ml = new MLContext();
        var model = ml.Model.Load(MLNetModelPath, out _);
        return ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model).Predict(input);
    }
}
