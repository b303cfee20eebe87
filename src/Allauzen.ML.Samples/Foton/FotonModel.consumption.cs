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

    /// <summary>Loads a saved model in a fresh MLContext (one extra line: UseAllauzen).</summary>
    public static ITransformer LoadModel(MLContext ml, string path, out DataViewSchema inputSchema)
    {
        ml.UseAllauzen();
        return ml.Model.Load(path, out inputSchema);
    }

    /// <summary>A prediction engine for inputs with <paramref name="featureCount"/> features.</summary>
    public static PredictionEngine<ModelInput, ModelOutput> CreateEngine(MLContext ml, ITransformer model, int featureCount)
    {
        var schema = SchemaDefinition.Create(typeof(ModelInput));
        schema["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureCount);
        return ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model, inputSchemaDefinition: schema);
    }

    /// <summary>Predicts one input.</summary>
    public static ModelOutput Predict(PredictionEngine<ModelInput, ModelOutput> engine, ModelInput input) => engine.Predict(input);
}
