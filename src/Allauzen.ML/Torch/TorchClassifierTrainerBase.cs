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
/// Base of the Allauzen multiclass trainers backed by TorchSharp. It owns everything that is not the
/// network: option validation, schema checks (both <see cref="SchemaShape"/> and
/// <see cref="DataViewSchema"/>), the native runtime, the device, the seed (taken once per fit from the
/// options or the <c>MLContext</c>), the batchers for training and validation data, and the
/// <see cref="TrainingLoop"/>. A trainer provides the step and the transformer.
/// </summary>
/// <typeparam name="TTransformer">The transformer the trainer returns.</typeparam>
/// <typeparam name="TOptions">The trainer's options.</typeparam>
public abstract class TorchClassifierTrainerBase<TTransformer, TOptions> : IEstimator<TTransformer>
    where TTransformer : AllauzenClassifierTransformerBase
    where TOptions : TorchTrainerOptions
{
    private readonly string _name;

    private protected TorchClassifierTrainerBase(IHostEnvironment env, string name, TOptions options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _name = name;
        Env = env;
        Host = env.Register(name);
        Options = options;
    }

    private protected IHostEnvironment Env { get; }

    private protected IHost Host { get; }

    /// <summary>The options this trainer was created with.</summary>
    public TOptions Options { get; }

    /// <summary>Builds the per-fit training step (network, optimizer) once the data's shape is known.</summary>
    private protected abstract ITrainStep CreateStep(FitContext context);

    /// <summary>Extra <c>Single</c> columns the transformer appends after <c>PredictedLabel</c> (none by default).</summary>
    private protected virtual IReadOnlyList<string> ExtraOutputColumnNames => [];

    /// <summary>Builds the transformer from the trained step.</summary>
    private protected abstract TTransformer CreateTransformer(ITrainStep step, FitContext context);

    /// <summary>Trains on <paramref name="input"/> and returns the fitted transformer.</summary>
    public TTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TorchRuntime.EnsureInitialized();
        var o = Options;
        int n = SchemaChecks.FeatureVector(input.Schema, o.FeatureColumnName);
        // Before the label check: an empty view's key label has too few values, which would be reported as a class count.
        TensorBatcher.RequireRows(input, _name, "training data");
        int k = SchemaChecks.KeyLabel(input.Schema, o.LabelColumnName);
        if (o.ValidationData is not null)
        {
            TensorBatcher.RequireRows(o.ValidationData, _name, "validation data");
            SchemaChecks.FeatureVector(o.ValidationData.Schema, o.FeatureColumnName, "validation feature", n);
            int vk = SchemaChecks.KeyLabel(o.ValidationData.Schema, o.LabelColumnName);
            if (vk != k)
                throw SchemaChecks.Mismatch(o.LabelColumnName, "validation label", $"a key with {k} values as in the training data", $"{vk} values");
        }
        var classes = LabelNames.FromColumn(input.Schema[o.LabelColumnName], k);
        using var ch = Host.Start("Fit");
        var (seed, deviceName, device, trainFilter, valFilter) = TrainingRun.Start(o, Host);
        using var train = TensorBatcher.Create(input, o.FeatureColumnName, o.LabelColumnName, o.DataCaching, o.MaxInMemoryBytes,
            trainFilter, o.InvalidRows, o.ShufflePoolSize, device, n, o.CancellationToken);
        using var validation = o.ValidationData is not null || valFilter is not null
            ? TensorBatcher.Create(o.ValidationData ?? input, o.FeatureColumnName, o.LabelColumnName, o.DataCaching, o.MaxInMemoryBytes,
                valFilter, o.InvalidRows, o.ShufflePoolSize, device, n, o.CancellationToken)
            : null;
        ch.Info(MessageSensitivity.None,
            $"{_name}: {n} features, {k} classes, device {deviceName}, seed {seed}, data {(train.InMemory ? $"in memory ({train.RowCount} rows)" : "streamed")}.");

        var context = new FitContext(n, k, classes, device, deviceName, seed, ch) { TrainData = train };
        var step = CreateStep(context);
        try
        {
            context.Summary = TrainingLoop.Run(step, train, validation, o, seed, ch);
            var transformer = CreateTransformer(step, context);
            transformer.ScoringBatchSize = o.ScoringBatchSize;
            return transformer;
        }
        finally
        {
            (step as IDisposable)?.Dispose();
        }
    }

    /// <summary>The input shape plus <c>Score</c> and <c>PredictedLabel</c>; checks the feature and label columns.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
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
        ulong z = id.Low ^ (id.High * 0x9E3779B97F4A7C15UL) ^ ((ulong)(uint)seed << 32 | (uint)seed);
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return z < _threshold;
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
