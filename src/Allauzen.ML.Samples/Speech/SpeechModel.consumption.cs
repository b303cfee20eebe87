// Model Builder-style consumption code: ModelInput, ModelOutput, Predict.
using Microsoft.ML;

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

    /// <summary>Loads a saved model in a fresh MLContext (one extra line: UseAllauzen).</summary>
    public static ITransformer LoadModel(MLContext ml, string path)
    {
        ml.UseAllauzen();
        return ml.Model.Load(path, out _);
    }

    /// <summary>Predicts the class of one WAV file.</summary>
    public static ModelOutput Predict(MLContext ml, ITransformer model, string wavPath)
    {
        using var engine = ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
        return engine.Predict(new ModelInput { Audio = wavPath });
    }
}
