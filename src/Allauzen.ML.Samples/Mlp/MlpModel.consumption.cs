// Model Builder-style consumption code: ModelInput, ModelOutput, Predict.
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Mlp;

public partial class MlpModel
{
    /// <summary>One image: its pixels and (for evaluation) its label.</summary>
    public class ModelInput
    {
        [ColumnName(@"Features")]
        public float[] Features { get; set; } = [];

        [ColumnName(@"Label")]
        public string Label { get; set; } = "";
    }

    /// <summary>The prediction: the class name and one probability per class.</summary>
    public class ModelOutput
    {
        [ColumnName(@"PredictedLabel")]
        public string PredictedLabel { get; set; } = "";

        [ColumnName(@"Score")]
        public float[] Score { get; set; } = [];
    }

    private static string MLNetModelPath = Path.GetFullPath("MlpModel.zip");

    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(() => CreatePredictEngine(), true);

    /// <summary>Predicts one input with the model at MLNetModelPath.</summary>
    public static ModelOutput Predict(ModelInput input)
    {
        var predEngine = PredictEngine.Value;
        return predEngine.Predict(input);
    }

    /// <summary>Class names with their scores, best first (reads the Score column's slot names).</summary>
    public static IOrderedEnumerable<KeyValuePair<string, float>> GetSortedScoresWithLabels(ModelOutput result)
    {
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        PredictEngine.Value.OutputSchema[@"Score"].GetSlotNames(ref names);
        return names.DenseValues().Select(n => n.ToString()).Zip(result.Score, (n, s) => new KeyValuePair<string, float>(n, s))
            .OrderByDescending(kv => kv.Value);
    }

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        ITransformer mlModel = mlContext.Model.Load(MLNetModelPath, out var inputSchema);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(mlModel, inputSchemaDefinition: Common.ModelFile.InputDefinition<ModelInput>(inputSchema));
    }
}
