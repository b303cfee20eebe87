// Model Builder-style consumption code: ModelInput, ModelOutput, Predict.
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

    /// <summary>The saved model (MlpModel.zip until SaveModel names another file), loaded on first use in a fresh MLContext.</summary>
    private static readonly Common.SavedModel<ModelInput, ModelOutput> Saved = new("MlpModel.zip");

    /// <summary>Predicts one input with the saved model.</summary>
    public static ModelOutput Predict(ModelInput input) => Saved.Predict(input);

    /// <summary>Class names with their scores, best first (reads the Score column's slot names).</summary>
    public static IOrderedEnumerable<KeyValuePair<string, float>> GetSortedScoresWithLabels(ModelOutput result)
    {
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        Saved.Engine.OutputSchema[@"Score"].GetSlotNames(ref names);
        return names.DenseValues().Select(n => n.ToString()).Zip(result.Score, (n, s) => new KeyValuePair<string, float>(n, s))
            .OrderByDescending(kv => kv.Value);
    }
}
