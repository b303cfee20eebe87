// Model Builder-style consumption code: ModelInput, ModelOutput, Predict.

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

    /// <summary>The saved model (LipschitzModel.zip until SaveModel names another file), loaded on first use in a fresh MLContext.</summary>
    private static readonly Common.SavedModel<ModelInput, ModelOutput> Saved = new("LipschitzModel.zip");

    /// <summary>Predicts one image (with its certified radius) with the saved model.</summary>
    public static ModelOutput Predict(ModelInput input) => Saved.Predict(input);
}
