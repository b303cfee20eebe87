// Model Builder-style consumption code: ModelInput, ModelOutput, Certify one input.
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Smoothing;

public partial class SmoothingModel
{
    /// <summary>One input in the certified space ([0, 1] features).</summary>
    public class ModelInput
    {
        [ColumnName("Features")]
        public float[] Features { get; set; } = [];
    }

    /// <summary>The certificate: a class (key, 0 = abstain) and an L2 radius.</summary>
    public class ModelOutput
    {
        [ColumnName("PredictedLabel")]
        public uint PredictedLabel { get; set; }

        [ColumnName("Abstained")]
        public bool Abstained { get; set; }

        [ColumnName("CertifiedRadius")]
        public double CertifiedRadius { get; set; }
    }

    /// <summary>Loads a saved certifier in a fresh MLContext (one extra line: UseAllauzen).</summary>
    public static ITransformer LoadModel(MLContext ml, string path, out DataViewSchema inputSchema)
    {
        ml.UseAllauzen();
        return ml.Model.Load(path, out inputSchema);
    }

    /// <summary>A prediction engine that certifies one input at a time.</summary>
    public static PredictionEngine<ModelInput, ModelOutput> CreateEngine(MLContext ml, ITransformer model, int featureCount)
    {
        var schema = SchemaDefinition.Create(typeof(ModelInput));
        schema["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureCount);
        return ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model, inputSchemaDefinition: schema);
    }

    /// <summary>Certifies one input.</summary>
    public static ModelOutput Certify(PredictionEngine<ModelInput, ModelOutput> engine, ModelInput input) => engine.Predict(input);
}
