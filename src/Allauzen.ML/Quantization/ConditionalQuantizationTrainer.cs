using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Allauzen.ML.Torch;
using Microsoft.ML.Data;
using TorchSharp;

namespace Allauzen.ML.Quantization;

/// <summary>
/// Trains a conditional distribution quantizer (CCLVQ, Delattre et al. 2025): n maps f₁..fₙ sharing a ReLU trunk that
/// minimise the distortion E[min_i ‖Y − f_i(X)‖²] by competitive learning, and a classifier p(i|x) trained with
/// cross-entropy on the winning head, so that Σ_i p_i(x) δ_{f_i(x)} approximates the law of Y given X. With one point it
/// is MSE regression. Create it with <c>ml.Regression.Trainers.ConditionalQuantization(options)</c>.
/// </summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// | Input columns | |
/// | -- | -- |
/// | `Label` | `Single`, or `Vector<Single, d>` of known size (multivariate label) |
/// | `Features` | `Vector<Single, m>` of known size; normalise it (e.g. `NormalizeMinMax`) |
///
/// | Output columns | |
/// | -- | -- |
/// | `Score` | `Single` (d = 1) or `Vector<Single, d>`: Σ p_i f_i, the predicted mean |
/// | `QuantizationPoints` | `Vector<Single, n·d>`: the points, row-major n × d; sorted ascending when d = 1 |
/// | `QuantizationWeights` | `Vector<Single, n>`: p(i|x), summing to 1 |
/// | `ModePoint` | like `Score`: the point of largest weight |
///
/// | Trainer characteristics | |
/// | -- | -- |
/// | Machine learning task | Regression (conditional distribution) |
/// | Is normalization required? | Yes for the features; the label is standardised internally |
/// | Is caching required? | No (streams or caches itself, see `DataCaching`) |
/// | Required NuGet in addition to Allauzen.ML | TorchSharp-cpu (or TorchSharp-cuda-linux) in the application |
/// | Exportable to ONNX | Yes (`ml.Model.ExportToOnnx`, opset ≥ 11) |
/// ]]></format>
/// </remarks>
public sealed class ConditionalQuantizationTrainer : TorchTrainerBase<ConditionalQuantizationTransformer, ConditionalQuantizationOptions>
{
    private const string TrainerName = "Allauzen.ConditionalQuantization";

    /// <summary>The batcher reads one float vector per row: the features followed by the label (its NaN policy covers both).</summary>
    private const string Joined = "__ConditionalQuantization_FeaturesLabel";

    internal ConditionalQuantizationTrainer(IHostEnvironment env, ConditionalQuantizationOptions options)
        : base(env, TrainerName, options)
    {
    }

    private QuantizationColumns Columns => new(Options.FeatureColumnName, Options.ScoreColumnName, Options.PointsColumnName,
        Options.WeightsColumnName, Options.ModePointColumnName);

    /// <summary>Trains on <paramref name="input"/> and returns the fitted transformer.</summary>
    public override ConditionalQuantizationTransformer Fit(IDataView input)
    {
        try
        {
            return base.Fit(input);
        }
        catch (InvalidDataException ex) when (ex.Message.Contains($"'{Joined}'", StringComparison.Ordinal))
        {
            // The batcher read features and label as one vector: name the user's columns instead of the joined one.
            var o = Options;
            int nx = SchemaChecks.FeatureVector(input.Schema, o.FeatureColumnName);
            throw new InvalidDataException(ex.Message.Replace($"Feature column '{Joined}'",
                $"Feature column '{o.FeatureColumnName}' or label column '{o.LabelColumnName}' (slots {nx} and above are the label)", StringComparison.Ordinal), ex);
        }
    }

    private protected override int CheckLabel(DataViewSchema schema) => LabelSize(schema, Options.LabelColumnName);

    private protected override Exception ValidationLabelMismatch(int training, int validation) =>
        SchemaChecks.Mismatch(Options.LabelColumnName, "validation label", $"{training} value(s) as in the training data", $"{validation}");

    private protected override TensorBatcher CreateBatcher(IDataView data, Func<DataViewRowId, bool>? filter, TorchSharp.torch.Device device,
        int featureCount, int labelShape)
    {
        var o = Options;
        var joined = CatalogEnvironment.ContextOrNew(Env).Transforms.Concatenate(Joined, o.FeatureColumnName, o.LabelColumnName).Fit(data).Transform(data);
        return TensorBatcher.Create(joined, Joined, null, o.DataCaching, o.MaxInMemoryBytes, filter, o.InvalidRows, o.ShufflePoolSize, device,
            featureCount + labelShape, o.CancellationToken);
    }

    private bool Sorted(int labelSize) => Options.SortedHeads && labelSize == 1 && Options.NumberOfPoints > 1;

    private protected override string Describe(int featureCount, int labelShape) =>
        $"{featureCount} features, label size {labelShape}, {Options.NumberOfPoints} points ({(Sorted(labelShape) ? "sorted" : "unsorted")} heads)";

    private protected override ITrainStep BuildStep(FitRun run, int featureCount, int labelShape, IDataView input)
    {
        var o = Options;
        var (mean, scale) = LabelStatistics(run.TrainData, featureCount, labelShape, o);
        run.State = (mean, scale);
        var net = new QuantizerNetwork(new QuantizerArchitecture(featureCount, [.. o.HiddenSizes], o.NumberOfPoints, labelShape, Sorted(labelShape)));
        try
        {
            net.to(run.Device);
            return new CompetitiveLearningStep(net, o, featureCount, mean, scale);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    private protected override ConditionalQuantizationTransformer BuildTransformer(ITrainStep step, FitRun run)
    {
        var (mean, scale) = ((float[], float[]))run.State!;
        return new ConditionalQuantizationTransformer(Env, ((CompetitiveLearningStep)step).DetachNetwork(), Columns, mean, scale);
    }

    /// <summary>Mean and standard deviation of each label dimension over the training rows (a standard deviation of 0 becomes 1).</summary>
    private static (float[] Mean, float[] Scale) LabelStatistics(TensorBatcher data, int nx, int d, TorchTrainerOptions o)
    {
        var sum = new double[d];
        var sum2 = new double[d];
        long rows = 0;
        foreach (var batch in data.GetBatches(Math.Max(o.BatchSize, 1024), shuffle: false, 0, o.CancellationToken))
        {
            using (batch)
            using (torch.NewDisposeScope())
            {
                var y = batch.X.narrow(1, nx, d).to_type(torch.ScalarType.Float64);
                var s = y.sum(dim: 0).cpu().data<double>().ToArray();
                var s2 = y.square().sum(dim: 0).cpu().data<double>().ToArray();
                for (int k = 0; k < d; k++)
                {
                    sum[k] += s[k];
                    sum2[k] += s2[k];
                }
                rows += batch.Count;
            }
        }
        if (rows == 0)
            throw new InvalidOperationException($"The training data has no usable rows ({data.SkippedRows} skipped).");
        var mean = new float[d];
        var scale = new float[d];
        for (int k = 0; k < d; k++)
        {
            double m = sum[k] / rows;
            double v = Math.Max(0, sum2[k] / rows - m * m);
            mean[k] = (float)m;
            scale[k] = v > 1e-24 ? (float)Math.Sqrt(v) : 1f;
        }
        return (mean, scale);
    }

    /// <summary>Checks a <c>Single</c> or <c>Vector&lt;Single, d&gt;</c> label column and returns d.</summary>
    internal static int LabelSize(DataViewSchema schema, string column)
    {
        var col = schema.GetColumnOrNull(column) ?? throw SchemaChecks.NotFound(column, "label");
        if (col.Type == NumberDataViewType.Single)
            return 1;
        if (col.Type is VectorDataViewType vt && vt.ItemType == NumberDataViewType.Single && vt.IsKnownSize)
            return vt.Size;
        throw SchemaChecks.Mismatch(column, "label", "Single or Vector<Single, d> of known size", col.Type.ToString()!);
    }

    /// <summary>The input shape plus <c>Score</c>, <c>QuantizationPoints</c>, <c>QuantizationWeights</c> and <c>ModePoint</c>.</summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var o = Options;
        SchemaChecks.FeatureVector(inputSchema, o.FeatureColumnName);
        if (!SchemaChecks.TryFind(inputSchema, o.LabelColumnName, out var label))
            throw SchemaChecks.NotFound(o.LabelColumnName, "label");
        if (label.ItemType != NumberDataViewType.Single || label.IsKey || label.Kind == SchemaShape.Column.VectorKind.VariableVector)
            throw SchemaChecks.Mismatch(o.LabelColumnName, "label", "Single or Vector<Single, d> of known size", label.ItemType.ToString()!);
        var value = label.Kind;
        var v = SchemaShape.Column.VectorKind.Vector;
        var slotNames = new SchemaShape([SchemaShapes.Column(AllauzenColumnNames.SlotNamesKind, v, TextDataViewType.Instance, false)]);
        return SchemaShapes.With(inputSchema,
        [
            SchemaShapes.Column(o.ScoreColumnName, value, NumberDataViewType.Single, false),
            SchemaShapes.Column(o.PointsColumnName, v, NumberDataViewType.Single, false, slotNames),
            SchemaShapes.Column(o.WeightsColumnName, v, NumberDataViewType.Single, false, slotNames),
            SchemaShapes.Column(o.ModePointColumnName, value, NumberDataViewType.Single, false),
        ]);
    }
}
