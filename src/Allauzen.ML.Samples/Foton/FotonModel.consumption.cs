// Model Builder-style consumption code: ModelInput, ModelOutput, LoadModel, Predict.
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Foton;

public partial class FotonModel
{
    /// <summary>One image: its (standardised) pixels and, for evaluation, its label.</summary>
    public class ModelInput
    {
        [ColumnName("Features")]
        public float[] Features { get; set; } = [];

        [ColumnName("Label")]
        public string Label { get; set; } = "";
    }

    /// <summary>The prediction: the class name and one probability per class.</summary>
    public class ModelOutput
    {
        [ColumnName("PredictedLabel")]
        public string PredictedLabel { get; set; } = "";

        [ColumnName("Score")]
        public float[] Score { get; set; } = [];
    }

    private static string MLNetModelPath = Path.GetFullPath("FotonModel.zip");

    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(() => CreatePredictEngine(), true);

    /// <summary>Predicts one input with the model at MLNetModelPath.</summary>
    public static ModelOutput Predict(ModelInput input)
    {
        var predEngine = PredictEngine.Value;
        return predEngine.Predict(input);
    }

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        ITransformer mlModel = mlContext.Model.Load(MLNetModelPath, out var inputSchema);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(mlModel, inputSchemaDefinition: Common.ModelFile.InputDefinition<ModelInput>(inputSchema));
    }
}
