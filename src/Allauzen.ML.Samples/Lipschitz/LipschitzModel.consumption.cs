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

    /// <summary>A prediction engine for single images.</summary>
    public static PredictionEngine<ModelInput, ModelOutput> CreateEngine(MLContext ml, ITransformer model, int featureCount)
    {
        var schema = SchemaDefinition.Create(typeof(ModelInput));
        schema[nameof(ModelInput.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureCount);
        return ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model, inputSchemaDefinition: schema);
    }

    /// <summary>Predicts one image.</summary>
    public static ModelOutput Predict(PredictionEngine<ModelInput, ModelOutput> engine, ModelInput input) => engine.Predict(input);
}
