using Allauzen.ML.Core;
using Allauzen.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Torch;

/// <summary>What a trainer knows when it builds its network and its transformer.</summary>
internal sealed record FitContext(int FeatureCount, int NumberOfClasses, LabelNames Classes, Device Device, string DeviceName,
    int Seed, IChannel Channel)
{
    /// <summary>The training data batcher (for statistics a trainer needs before building its network).</summary>
    public TensorBatcher? TrainData { get; init; }

    /// <summary>Set after the loop: history, best epoch.</summary>
    public TrainingSummary? Summary { get; set; }
}

/// <summary>
/// Base of the Allauzen multiclass trainers backed by TorchSharp: a key label, <c>Score</c> and <c>PredictedLabel</c>
/// outputs. Everything that is not the label or the network (option validation, data checks, runtime, device, seed,
/// batchers, <see cref="TrainingLoop"/>) is <see cref="TorchTrainerBase{TTransformer, TOptions}"/>'s. A trainer provides
/// the step and the transformer.
/// </summary>
/// <typeparam name="TTransformer">The transformer the trainer returns.</typeparam>
/// <typeparam name="TOptions">The trainer's options.</typeparam>
public abstract class TorchClassifierTrainerBase<TTransformer, TOptions> : TorchTrainerBase<TTransformer, TOptions>
    where TTransformer : AllauzenClassifierTransformerBase
    where TOptions : TorchTrainerOptions
{
    private protected TorchClassifierTrainerBase(IHostEnvironment env, string name, TOptions options)
        : base(env, name, options)
    {
    }

    /// <summary>Builds the per-fit training step (network, optimizer) once the data's shape is known.</summary>
    private protected abstract ITrainStep CreateStep(FitContext context);

    /// <summary>Extra <c>Single</c> columns the transformer appends after <c>PredictedLabel</c> (none by default).</summary>
    private protected virtual IReadOnlyList<string> ExtraOutputColumnNames => [];

    /// <summary>Builds the transformer from the trained step.</summary>
    private protected abstract TTransformer CreateTransformer(ITrainStep step, FitContext context);

    private protected sealed override int CheckLabel(DataViewSchema schema) => SchemaChecks.KeyLabel(schema, Options.LabelColumnName);

    private protected sealed override Exception ValidationLabelMismatch(int training, int validation) =>
        SchemaChecks.Mismatch(Options.LabelColumnName, "validation label", $"a key with {training} values as in the training data", $"{validation} values");

    private protected sealed override TensorBatcher CreateBatcher(IDataView data, Func<DataViewRowId, bool>? filter, Device device, int featureCount, int labelShape)
    {
        var o = Options;
        return TensorBatcher.Create(data, o.FeatureColumnName, o.LabelColumnName, o.DataCaching, o.MaxInMemoryBytes, filter, o.InvalidRows,
            o.ShufflePoolSize, device, featureCount, o.CancellationToken);
    }

    private protected sealed override string Describe(int featureCount, int labelShape) => $"{featureCount} features, {labelShape} classes";

    private protected sealed override ITrainStep BuildStep(FitRun run, int featureCount, int labelShape, IDataView input)
    {
        var classes = LabelNames.FromColumn(input.Schema[Options.LabelColumnName], labelShape);
        var context = new FitContext(featureCount, labelShape, classes, run.Device, run.DeviceName, run.Seed, run.Channel) { TrainData = run.TrainData };
        run.State = context;
        return CreateStep(context);
    }

    private protected sealed override TTransformer BuildTransformer(ITrainStep step, FitRun run)
    {
        var context = (FitContext)run.State!;
        context.Summary = run.Summary;
        return CreateTransformer(step, context);
    }

    /// <summary>The input shape plus <c>Score</c> and <c>PredictedLabel</c>; checks the feature and label columns.</summary>
    public sealed override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var o = Options;
        SchemaChecks.FeatureVector(inputSchema, o.FeatureColumnName);
        SchemaChecks.KeyLabel(inputSchema, o.LabelColumnName);
        SchemaChecks.TryFind(inputSchema, o.LabelColumnName, out var label);
        var scoreAnn = new SchemaShape([SchemaShapes.Column(AllauzenColumnNames.SlotNamesKind,
            SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false)]);
        var keyValues = label.Annotations.Where(a => a.Name == AllauzenColumnNames.KeyValuesKind).ToArray();
        return SchemaShapes.With(inputSchema,
        [
            SchemaShapes.Column(o.ScoreColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, scoreAnn),
            SchemaShapes.Column(o.PredictedLabelColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true,
                new SchemaShape(keyValues)),
            .. ExtraOutputColumnNames.Select(c => SchemaShapes.Column(c, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false)),
        ]);
    }
}

/// <summary>
/// Deterministic train/validation split by a hash of the row id (SplitMix64), so it streams, does
/// not depend on the order rows are read in, and is the same for the same seed.
/// </summary>
internal readonly struct RowIdSplit(int seed, double fraction)
{
    private readonly ulong _threshold = (ulong)(fraction * ulong.MaxValue);

    public bool IsValidation(DataViewRowId id)
    {
        ulong z = id.Low ^ (id.High * SplitMix64.Gamma) ^ ((ulong)(uint)seed << 32 | (uint)seed);
        return SplitMix64.Mix(z) < _threshold;
    }
}

/// <summary>
/// What every Torch trainer decides once per fit: the seed (the option, else one draw from the host), the device, the
/// thread count and libtorch's seed, and the train/validation row filters of <see cref="TorchTrainerOptions.ValidationFraction"/>
/// (null when separate validation data is given or the fraction is 0).
/// </summary>
internal readonly record struct TrainingRun(
    int Seed, string DeviceName, Device Device, Func<DataViewRowId, bool>? TrainFilter, Func<DataViewRowId, bool>? ValidationFilter)
{
    /// <summary>Seeds libtorch and sets its threads for this fit; returns the decisions.</summary>
    public static TrainingRun Start(TorchTrainerOptions o, IHost host)
    {
        int seed = o.Seed ?? host.Rand.Next();
        string deviceName = TorchDevice.Resolve(o.Device);
        var device = torch.device(deviceName);
        if (o.NumberOfThreads > 0)
            TorchRuntime.SetThreads(o.NumberOfThreads);
        TorchRuntime.SetSeed(seed);
        if (o.ValidationData is not null || o.ValidationFraction <= 0)
            return new TrainingRun(seed, deviceName, device, null, null);
        var split = new RowIdSplit(seed, o.ValidationFraction);
        return new TrainingRun(seed, deviceName, device, id => !split.IsValidation(id), split.IsValidation);
    }
}
