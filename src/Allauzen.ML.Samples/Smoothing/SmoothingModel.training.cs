// Model Builder-style training code: BuildPipeline, Train (with Gaussian noise augmentation), certification pipelines.
using Allauzen.ML.Mlp;
using Allauzen.ML.Smoothing;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Smoothing;

public partial class SmoothingModel
{
    /// <summary>A prepared row: features scaled to [0, 1] (the space the noise is added in) and the key label.</summary>
    public sealed class PreparedRow
    {
        public float[] Features { get; set; } = [];

        public uint Label { get; set; }
    }

    /// <summary>Label → key and features → [0, 1]; fitted on the training data, applied to both sets.</summary>
    public static ITransformer BuildPreparation(MLContext ml, IDataView train) =>
        ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.NormalizeMinMax("Features")).Fit(train);

    /// <summary>
    /// Gaussian data augmentation (Cohen et al. train the base model at the certification σ): the clean rows
    /// plus <paramref name="copies"/> noisy copies x + σ·ε of each.
    /// </summary>
    public static IDataView Augment(MLContext ml, IDataView prepared, double sigma, int copies, int seed)
    {
        int d = ((VectorDataViewType)prepared.Schema["Features"].Type).Size;
        uint classes = (uint)((KeyDataViewType)prepared.Schema["Label"].Type).Count;
        var rng = new Random(seed);
        var rows = new List<PreparedRow>();
        foreach (var r in ml.Data.CreateEnumerable<PreparedRow>(prepared, reuseRowObject: false, schemaDefinition: Definition(d, classes)))
        {
            rows.Add(r);
            for (int c = 0; c < copies; c++)
            {
                var x = new float[d];
                for (int j = 0; j < d; j++)
                    x[j] = r.Features[j] + (float)(sigma * Gaussian(rng));
                rows.Add(new PreparedRow { Features = x, Label = r.Label });
            }
        }
        // Load the key as a plain number and map it back to a key ordered by value (same key order as the input).
        var plain = SchemaDefinition.Create(typeof(PreparedRow));
        plain["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, d);
        var loaded = ml.Data.LoadFromEnumerable(rows, plain);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Fit(loaded).Transform(loaded);
        return ml.Data.ShuffleRows(keyed, seed: seed);
    }

    /// <summary>The schema of <see cref="PreparedRow"/> with sizes.</summary>
    public static SchemaDefinition Definition(int features, uint classes)
    {
        var s = SchemaDefinition.Create(typeof(PreparedRow));
        s["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, features);
        s["Label"].ColumnType = new KeyDataViewType(typeof(uint), classes);
        return s;
    }

    /// <summary>Trains the base classifier on noise-augmented data.</summary>
    public static MlpTransformer Train(MLContext ml, IDataView augmented, MlpOptions options) =>
        ml.MulticlassClassification.Trainers.Mlp(options).Fit(augmented);

    /// <summary>The certification pipeline around an ONNX base model (e.g. exported with ml.Model.ExportToOnnx).</summary>
    public static RandomizedSmoothingEstimator BuildCertifier(MLContext ml, RandomizedSmoothingOptions options) =>
        ml.Transforms.CertifyRandomizedSmoothing(options);

    /// <summary>Saves the certifier with ML.NET's Model.Save (temporary file, then rename); Predict then uses this file.</summary>
    public static void SaveModel(MLContext ml, ITransformer model, DataViewSchema schema, string path) =>
        Saved.Save(ml, model, schema, path);

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
