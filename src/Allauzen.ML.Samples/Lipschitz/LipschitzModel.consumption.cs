// Model Builder-style consumption code: ModelInput, ModelOutput, Predict.
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Lipschitz;

public partial class LipschitzModel
{
    /// <summary>One image: pixels scaled to [0, 1] (the certified radius is in these units).</summary>
    public sealed class ModelInput
    {
        public string Label { get; set; } = "";

        public float[] Features { get; set; } = [];
    }

    /// <summary>The prediction with its certificate.</summary>
    public sealed class ModelOutput
    {
        public string PredictedLabel { get; set; } = "";

        public float[] Score { get; set; } = [];

        /// <summary>L2 radius (in [0, 1]-pixel units) within which no perturbation can change <see cref="PredictedLabel"/>.</summary>
        public float CertifiedRadius { get; set; }
    }

    private static string MLNetModelPath = Path.GetFullPath("LipschitzModel.zip");

    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(() => CreatePredictEngine(), true);

    /// <summary>Predicts one image (with its certified radius) with the model at MLNetModelPath.</summary>
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
