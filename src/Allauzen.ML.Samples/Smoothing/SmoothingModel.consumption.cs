// Model Builder-style consumption code: ModelInput, ModelOutput, Predict (certify one input).
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Smoothing;

public partial class SmoothingModel
{
    /// <summary>One input in the certified space ([0, 1] features).</summary>
    public class ModelInput
    {
        [ColumnName(@"Features")]
        public float[] Features { get; set; } = [];
    }

    /// <summary>The certificate: a class (key, 0 = abstain) and an L2 radius.</summary>
    public class ModelOutput
    {
        [ColumnName(@"PredictedLabel")]
        public uint PredictedLabel { get; set; }

        [ColumnName(@"Abstained")]
        public bool Abstained { get; set; }

        [ColumnName(@"CertifiedRadius")]
        public double CertifiedRadius { get; set; }
    }

    private static string MLNetModelPath = Path.GetFullPath("SmoothingModel.zip");

    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(() => CreatePredictEngine(), true);

    /// <summary>Certifies one input with the certifier at MLNetModelPath.</summary>
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
