// Model Builder-style consumption code: ModelInput, ModelOutput, LoadModel, Predict.
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

    /// <summary>The saved model (FotonModel.zip until SaveModel names another file), loaded on first use in a fresh MLContext.</summary>
    private static readonly Common.SavedModel<ModelInput, ModelOutput> Saved = new("FotonModel.zip");

    /// <summary>Predicts one input with the saved model.</summary>
    public static ModelOutput Predict(ModelInput input) => Saved.Predict(input);
}
