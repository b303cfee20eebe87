using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Torch;

/// <summary>Loss and accuracy counts of one mini-batch.</summary>
internal readonly record struct BatchResult(double LossSum, long Correct, int Count);

/// <summary>
/// What a component plugs into <see cref="TrainingLoop"/>: one training step (which may be backprop or
/// not), one evaluation step, the learning rate, and a snapshot of the weights for early stopping.
/// </summary>
internal interface ITrainStep
{
    /// <summary>Trains on one batch; returns the summed loss and the number of correct predictions.</summary>
    BatchResult TrainBatch(Tensor x, Tensor y);

    /// <summary>Evaluates one batch without updating anything.</summary>
    BatchResult EvaluateBatch(Tensor x, Tensor y);

    /// <summary>Sets the learning rate for the coming epoch.</summary>
    void SetLearningRate(double learningRate);

    /// <summary>Called before each epoch (train mode, per-epoch state).</summary>
    void BeginEpoch(int epoch);

    /// <summary>Component figures of the epoch just finished (may be empty).</summary>
    IReadOnlyDictionary<string, double> EpochDiagnostics();

    /// <summary>Keeps a copy of the current weights (best epoch so far).</summary>
    void Snapshot();

    /// <summary>Restores the last snapshot.</summary>
    void RestoreSnapshot();
}

/// <summary>The outcome of <see cref="TrainingLoop.Run"/>.</summary>
internal sealed record TrainingSummary(IReadOnlyList<TrainingProgress> History, int BestEpoch, bool StoppedEarly, long SkippedRows);

/// <summary>
/// The epoch loop every Allauzen trainer shares: learning-rate schedule, shuffled mini-batches, one
/// <see cref="torch.NewDisposeScope"/> per step (so native memory does not grow across epochs),
/// validation, early stopping with the best weights restored, progress and log lines, and
/// cancellation between mini-batches. Deterministic on CPU for a given seed.
/// </summary>
internal static class TrainingLoop
{
    public static TrainingSummary Run(ITrainStep step, TensorBatcher train, TensorBatcher? validation,
        TorchTrainerOptions options, int seed, IChannel channel)
    {
        var history = new List<TrainingProgress>();
        var ct = options.CancellationToken;
        double bestLoss = double.PositiveInfinity;
        int bestEpoch = 0, sinceBest = 0;
        bool early = false;
        // One order per epoch, derived from the run seed only: the same seed gives the same batches.
        var orderSeeds = new Random(seed);
        for (int epoch = 1; epoch <= options.Epochs; epoch++)
        {
            ct.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            double lr = LearningRateAt(options, epoch);
            step.SetLearningRate(lr);
            step.BeginEpoch(epoch);
            var (lossSum, correct, count) = SumBatches(train.GetBatches(options.BatchSize, shuffle: true, orderSeeds.Next(), ct), step.TrainBatch);
            if (count == 0)
                throw new InvalidOperationException($"The training data has no usable rows ({train.SkippedRows} skipped).");
            if (!double.IsFinite(lossSum))
                throw new InvalidOperationException(
                    $"Training diverged at epoch {epoch}: the loss is {lossSum}. Lower the learning rate (now {lr.ToString(CultureInfo.InvariantCulture)}).");

            double? vLoss = null, vAcc = null;
            if (validation is not null)
            {
                var v = Evaluate(step, validation, options.BatchSize, ct);
                if (v.Count > 0)
                {
                    vLoss = v.LossSum / v.Count;
                    vAcc = (double)v.Correct / v.Count;
                }
            }
            sw.Stop();
            var p = new TrainingProgress(epoch, options.Epochs, lossSum / count, (double)correct / count, vLoss, vAcc, lr,
                sw.Elapsed, step.EpochDiagnostics());
            history.Add(p);
            options.Progress?.Report(p);
            channel.Info(MessageSensitivity.None, Describe(p));

            if (vLoss is double vl && options.EarlyStoppingPatience > 0)
            {
                if (vl < bestLoss)
                {
                    bestLoss = vl;
                    bestEpoch = epoch;
                    sinceBest = 0;
                    step.Snapshot();
                }
                else if (++sinceBest >= options.EarlyStoppingPatience)
                {
                    early = true;
                    channel.Info(MessageSensitivity.None,
                        $"Early stopping after epoch {epoch}: validation loss has not improved for {sinceBest} epochs; restoring epoch {bestEpoch}.");
                    break;
                }
            }
        }
        if (options.EarlyStoppingPatience > 0 && bestEpoch > 0 && bestEpoch != history.Count)
            step.RestoreSnapshot();
        long skipped = train.SkippedRows + (validation?.SkippedRows ?? 0);
        if (skipped > 0)
            channel.Warning(MessageSensitivity.None, $"{skipped} rows were skipped (non-finite features or missing labels).");
        return new TrainingSummary(history, bestEpoch == 0 ? history.Count : bestEpoch, early, skipped);
    }

    /// <summary>Runs <paramref name="run"/> on every batch, each in its own dispose scope, and sums the results in batch order.</summary>
    private static (double LossSum, long Correct, long Count) SumBatches(IEnumerable<TensorBatch> batches, Func<Tensor, Tensor, BatchResult> run)
    {
        double loss = 0;
        long correct = 0, count = 0;
        foreach (var batch in batches)
        {
            using (batch)
            using (torch.NewDisposeScope())
            {
                var r = run(batch.X, batch.Y!);
                loss += r.LossSum;
                correct += r.Correct;
                count += r.Count;
            }
        }
        return (loss, correct, count);
    }

    /// <summary>Mean loss and accuracy of <paramref name="step"/> over all batches of <paramref name="data"/>.</summary>
    public static BatchResult Evaluate(ITrainStep step, TensorBatcher data, int batchSize, CancellationToken ct)
    {
        var (loss, correct, count) = SumBatches(data.GetBatches(batchSize, shuffle: false, 0, ct), step.EvaluateBatch);
        return new BatchResult(loss, correct, (int)count);
    }

    /// <summary>Learning rate of <paramref name="epoch"/> (1-based) under the options' schedule.</summary>
    public static double LearningRateAt(TorchTrainerOptions o, int epoch) => o.LearningRateSchedule switch
    {
        LearningRateSchedule.Cosine => o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * (epoch - 1) / o.Epochs)),
        LearningRateSchedule.Step => o.LearningRate * Math.Pow(o.StepGamma, (epoch - 1) / o.StepSize),
        _ => o.LearningRate,
    };

    private static string Describe(TrainingProgress p)
    {
        var s = string.Create(CultureInfo.InvariantCulture,
            $"epoch {p.Epoch}/{p.Epochs}: loss {p.TrainLoss:F4}, accuracy {p.TrainAccuracy:F4}");
        if (p.ValidationLoss is double vl)
            s += string.Create(CultureInfo.InvariantCulture, $", validation loss {vl:F4}, validation accuracy {p.ValidationAccuracy:F4}");
        s += string.Create(CultureInfo.InvariantCulture, $", lr {p.LearningRate:G4}, {p.EpochTime.TotalSeconds:F2} s");
        foreach (var (k, v) in p.Diagnostics)
            s += string.Create(CultureInfo.InvariantCulture, $", {k} {v:G4}");
        return s;
    }

    /// <summary>Creates the optimizer the options name (TorchSharp's, with its step's Scalars kept alive: <see cref="KeptAdam"/>).</summary>
    public static optim.Optimizer CreateOptimizer(IEnumerable<TorchSharp.Modules.Parameter> parameters, TorchTrainerOptions o) => o.Optimizer switch
    {
        OptimizerKind.Sgd => new KeptSgd(parameters, o.LearningRate, o.Momentum, 0, o.WeightDecay),
        OptimizerKind.AdamW => new KeptAdamW(parameters, o.LearningRate, 0.9, 0.999, 1e-8, o.WeightDecay),
        _ => new KeptAdam(parameters, o.LearningRate, 0.9, 0.999, 1e-8, o.WeightDecay),
    };

    /// <summary>Sets the learning rate of every parameter group.</summary>
    public static void SetLearningRate(optim.Optimizer optimizer, double lr)
    {
        foreach (var g in optimizer.ParamGroups)
            g.LearningRate = lr;
    }
}
