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

    private static string MLNetModelPath = Path.GetFullPath("SpeechModel.zip");

    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(() => CreatePredictEngine(), true);

    /// <summary>Predicts the class of one WAV file with the model at MLNetModelPath.</summary>
    public static ModelOutput Predict(ModelInput input)
    {
        var predEngine = PredictEngine.Value;
        return predEngine.Predict(input);
    }

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var mlContext = new MLContext();
        ITransformer mlModel = mlContext.Model.Load(MLNetModelPath, out _);
        return mlContext.Model.CreatePredictionEngine<ModelInput, ModelOutput>(mlModel);
    }
}
