using Allauzen.ML.Core;
using Allauzen.ML.Data;
using static TorchSharp.torch;

namespace Allauzen.ML.Torch;

/// <summary>What one fit has decided once the data is checked and the batchers exist (the run's seed, device, channel).</summary>
internal sealed class FitRun(TrainingRun run, IChannel channel, TensorBatcher trainData)
{
    /// <summary>The seed of this fit (the option, else one draw from the host).</summary>
    public int Seed => run.Seed;

    /// <summary>The libtorch device.</summary>
    public Device Device => run.Device;

    /// <summary>The device's name (e.g. "cpu").</summary>
    public string DeviceName => run.DeviceName;

    /// <summary>The fit's log channel.</summary>
    public IChannel Channel => channel;

    /// <summary>The training data batcher (for statistics a trainer needs before building its network).</summary>
    public TensorBatcher TrainData => trainData;

    /// <summary>Set after the loop: history, best epoch.</summary>
    public TrainingSummary? Summary { get; set; }

    /// <summary>The trainer's own per-fit state, from its step builder to its transformer builder (a trainer may be fitted concurrently).</summary>
    public object? State { get; set; }
}

/// <summary>
/// Base of the Allauzen trainers backed by TorchSharp (classifiers through <see cref="TorchClassifierTrainerBase{TTransformer, TOptions}"/>,
/// and the conditional quantization regressor). It owns everything that is not the label or the network: option
/// validation, the host, the native runtime, the up-front data checks (feature vector, the shared "no rows" error for the
/// training and validation views, the label's shape in both), the seed, device and threads of <see cref="TrainingRun"/>,
/// the training and validation batchers, the <see cref="TrainingLoop"/>, the transformer's scoring batch size, and the
/// step's disposal. A trainer provides its label check, how a view becomes a batcher, the step and the transformer.
/// </summary>
/// <typeparam name="TTransformer">The transformer the trainer returns.</typeparam>
/// <typeparam name="TOptions">The trainer's options.</typeparam>
public abstract class TorchTrainerBase<TTransformer, TOptions> : IEstimator<TTransformer>
    where TTransformer : AllauzenTransformerBase
    where TOptions : TorchTrainerOptions
{
    private protected TorchTrainerBase(IHostEnvironment env, string name, TOptions options)
    {
        Options = EstimatorArguments.Validated(env, options, o => o.Validate());
        Name = name;
        Env = env;
        Host = env.Register(name);
    }

    /// <summary>The component's registered name (e.g. "Allauzen.Mlp"), used in messages.</summary>
    private protected string Name { get; }

    private protected IHostEnvironment Env { get; }

    private protected IHost Host { get; }

    /// <summary>The options this trainer was created with.</summary>
    public TOptions Options { get; }

    /// <summary>
    /// Checks the label column of <paramref name="schema"/> and returns its shape (a number of classes, a label size),
    /// throwing an exception that names the column otherwise.
    /// </summary>
    private protected abstract int CheckLabel(DataViewSchema schema);

    /// <summary>The exception for validation data whose label shape differs from the training data's.</summary>
    private protected abstract Exception ValidationLabelMismatch(int training, int validation);

    /// <summary>The batcher over <paramref name="data"/> (training or validation view) for this trainer's step.</summary>
    private protected abstract TensorBatcher CreateBatcher(IDataView data, Func<DataViewRowId, bool>? filter, Device device, int featureCount, int labelShape);

    /// <summary>What the fit's first log line says about the data and the model (the base adds device, seed and data).</summary>
    private protected abstract string Describe(int featureCount, int labelShape);

    /// <summary>Builds the per-fit training step (network, optimizer) once the data's shape is known.</summary>
    private protected abstract ITrainStep BuildStep(FitRun run, int featureCount, int labelShape, IDataView input);

    /// <summary>Builds the transformer from the trained step (<see cref="FitRun.Summary"/> is set).</summary>
    private protected abstract TTransformer BuildTransformer(ITrainStep step, FitRun run);

    /// <summary>Trains on <paramref name="input"/> and returns the fitted transformer.</summary>
    public virtual TTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TorchRuntime.EnsureInitialized();
        var o = Options;
        int n = SchemaChecks.FeatureVector(input.Schema, o.FeatureColumnName);
        // Before the label check: an empty view's key label has too few values, which would be reported as a class count.
        TensorBatcher.RequireRows(input, Name, "training data");
        int label = CheckLabel(input.Schema);
        if (o.ValidationData is not null)
        {
            TensorBatcher.RequireRows(o.ValidationData, Name, "validation data");
            SchemaChecks.FeatureVector(o.ValidationData.Schema, o.FeatureColumnName, "validation feature", n);
            int validationLabel = CheckLabel(o.ValidationData.Schema);
            if (validationLabel != label)
                throw ValidationLabelMismatch(label, validationLabel);
        }
        using var ch = Host.Start("Fit");
        var run = TrainingRun.Start(o, Host);
        using var train = CreateBatcher(input, run.TrainFilter, run.Device, n, label);
        using var validation = o.ValidationData is not null || run.ValidationFilter is not null
            ? CreateBatcher(o.ValidationData ?? input, run.ValidationFilter, run.Device, n, label)
            : null;
        ch.Info(MessageSensitivity.None, $"{Name}: {Describe(n, label)}, device {run.DeviceName}, seed {run.Seed}, " +
            $"data {(train.InMemory ? $"in memory ({train.RowCount} rows)" : "streamed")}.");
        var fit = new FitRun(run, ch, train);
        var step = BuildStep(fit, n, label, input);
        try
        {
            fit.Summary = TrainingLoop.Run(step, train, validation, o, run.Seed, ch);
            var transformer = BuildTransformer(step, fit);
            transformer.ScoringBatchSize = o.ScoringBatchSize;
            return transformer;
        }
        finally
        {
            (step as IDisposable)?.Dispose();
        }
    }

    /// <summary>The input shape plus the trainer's output columns; checks the feature and label columns.</summary>
    public abstract SchemaShape GetOutputSchema(SchemaShape inputSchema);
}
