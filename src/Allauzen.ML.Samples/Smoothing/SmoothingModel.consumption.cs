// Model Builder-style consumption code: ModelInput, ModelOutput, Predict (certify one input).

namespace Allauzen.ML.Samples.Smoothing;

public partial class SmoothingModel
{
    /// <summary>One input in the certified space ([0, 1] features).</summary>
    public class ModelInput
    {
        public float[] Features { get; set; } = [];
    }

    /// <summary>The certificate: a class (key, 0 = abstain) and an L2 radius.</summary>
    public class ModelOutput
    {
        public uint PredictedLabel { get; set; }

        public bool Abstained { get; set; }

        public double CertifiedRadius { get; set; }
    }

    /// <summary>The saved model (SmoothingModel.zip until SaveModel names another file), loaded on first use in a fresh MLContext.</summary>
    private static readonly Common.SavedModel<ModelInput, ModelOutput> Saved = new("SmoothingModel.zip");

    /// <summary>Certifies one input with the saved certifier.</summary>
    public static ModelOutput Predict(ModelInput input) => Saved.Predict(input);
}
