// Model Builder-style consumption code: ModelInput, ModelOutput, Predict.

namespace Allauzen.ML.Samples.Speech;

public partial class SpeechModel
{
    /// <summary>One recording: the path of a WAV file (any PCM/float format, any rate, mono or stereo).</summary>
    public class ModelInput
    {
        public string Audio { get; set; } = "";

        public string Label { get; set; } = "";
    }

    /// <summary>The prediction: the class and one probability per class.</summary>
    public class ModelOutput
    {
        public string PredictedLabel { get; set; } = "";

        public float[] Score { get; set; } = [];
    }

    /// <summary>The saved model (SpeechModel.zip until SaveModel names another file), loaded on first use in a fresh MLContext.</summary>
    private static readonly Common.SavedModel<ModelInput, ModelOutput> Saved = new("SpeechModel.zip");

    /// <summary>Predicts the class of one WAV file with the saved model.</summary>
    public static ModelOutput Predict(ModelInput input) => Saved.Predict(input);
}
