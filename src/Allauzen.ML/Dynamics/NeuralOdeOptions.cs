using System.Text.Json.Serialization;

namespace Allauzen.ML.Dynamics;

/// <summary>
/// Options of the <see cref="NeuralOdeEstimator"/>: a Neural ODE ẋ = f_θ(x) learnt from (state, next state) rows
/// (Allauzen, Dardis, Plath, NeurIPS DLDE 2022). <c>new NeuralOdeOptions()</c> is the paper's setting: f_θ an MLP
/// with two hidden layers of 50 ReLU units, the Fehlberg 3(2) solver with ε = 0.1, S = 0.9, at most 10 steps, trained
/// with L-BFGS on the full batch.
/// </summary>
public sealed class NeuralOdeOptions
{
    /// <summary>The state column: <c>Vector&lt;Single, d&gt;</c> of known size. Default <c>"State"</c>.</summary>
    public string StateColumnName { get; set; } = DynamicalSystems.StateColumnName;

    /// <summary>The target column (the state one sample later): same type as the state column. Default <c>"NextState"</c>. Not read when scoring.</summary>
    public string NextStateColumnName { get; set; } = DynamicalSystems.NextStateColumnName;

    /// <summary>Name of the output column with the predicted next state. Default <c>"PredictedNextState"</c>.</summary>
    public string PredictedNextStateColumnName { get; set; } = "PredictedNextState";

    /// <summary>Name of the output column with the number of solver steps used for the row (a whole number, as Single). Default <c>"SolverSteps"</c>.</summary>
    public string SolverStepsColumnName { get; set; } = "SolverSteps";

    /// <summary>Widths of the hidden ReLU layers of f_θ. Default { 50, 50 } (the paper; its code's default is 10).</summary>
    public int[] HiddenSizes { get; set; } = [50, 50];

    /// <summary>The solver. Default <see cref="OdeSolver.Fehlberg32"/>.</summary>
    public OdeSolver Solver { get; set; } = OdeSolver.Fehlberg32;

    /// <summary>Steps per sample interval of <see cref="OdeSolver.Euler"/> and <see cref="OdeSolver.Rk3"/>. Default 1.</summary>
    public int FixedSteps { get; set; } = 1;

    /// <summary>The tolerance ε on the error rate r of <see cref="OdeSolver.Fehlberg32"/>. Default 0.1.</summary>
    public double Tolerance { get; set; } = 0.1;

    /// <summary>The safety factor S of the step-size proposal h' = S·h·√(ε/r). Default 0.9.</summary>
    public double Safety { get; set; } = 0.9;

    /// <summary>The largest number of steps per sample interval (the smallest step is 1/MaxSteps). Default 10.</summary>
    public int MaxSteps { get; set; } = 10;

    /// <summary>How r is computed during training. Default <see cref="OdeTraining.BlackBox"/> (the paper's baseline).</summary>
    public OdeTraining Training { get; set; } = OdeTraining.BlackBox;

    /// <summary>The optimizer. Default <see cref="OdeOptimizer.Lbfgs"/>.</summary>
    public OdeOptimizer Optimizer { get; set; } = OdeOptimizer.Lbfgs;

    /// <summary>Learning rate: the L-BFGS step scale or Adam's rate. Default null: 1 for L-BFGS, 1e-3 for Adam.</summary>
    public double? LearningRate { get; set; }

    /// <summary>L-BFGS iterations per optimizer step. Default 20 (the paper).</summary>
    public int LbfgsIterations { get; set; } = 20;

    /// <summary>Passes over the training rows (one L-BFGS step per batch). Default 50.</summary>
    public int Epochs { get; set; } = 50;

    /// <summary>Rows per batch; 0 (default) = the whole training set in one batch, as the paper's batch mode.</summary>
    public int BatchSize { get; set; }

    /// <summary>Curriculum: which segments are used and in which order. Default <see cref="CurriculumOrder.Random"/> (with fraction 1: all rows).</summary>
    public CurriculumOrder CurriculumOrder { get; set; } = CurriculumOrder.Random;

    /// <summary>Fraction of the segments kept for training, in (0, 1]. Default 1.</summary>
    public double CurriculumFraction { get; set; } = 1;

    /// <summary>Rows per curriculum segment (consecutive rows of the data). Default 100.</summary>
    public int CurriculumSegmentLength { get; set; } = 100;

    /// <summary>Bins per coordinate of the partition the curriculum's entropy is computed on. Default 8.</summary>
    public int EntropyBins { get; set; } = 8;

    /// <summary>Random seed (initial weights, batch order, random curriculum); null (default) takes one from the <c>MLContext</c>.</summary>
    public int? Seed { get; set; }

    /// <summary>
    /// Receives one <see cref="TrainingProgress"/> per epoch: <c>TrainLoss</c> is the mean squared error of the epoch,
    /// <c>TrainAccuracy</c> the fraction of rows whose first RK3 step was accepted, and <c>Diagnostics</c> holds
    /// <c>acceptedFraction</c> and <c>rejectedSteps</c> (mean 1/h' of the rejected rows, before rounding).
    /// </summary>
    [JsonIgnore]
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels training between batches (an <see cref="OperationCanceledException"/> is thrown).</summary>
    [JsonIgnore]
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option.</summary>
    internal void Validate()
    {
        static void Check(bool ok, string name, object? value, string rule)
        {
            if (!ok)
                throw new ArgumentOutOfRangeException(name, value, $"{name} {rule} (got {value}).");
        }
        ArgumentException.ThrowIfNullOrWhiteSpace(StateColumnName, nameof(StateColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(NextStateColumnName, nameof(NextStateColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(PredictedNextStateColumnName, nameof(PredictedNextStateColumnName));
        ArgumentException.ThrowIfNullOrWhiteSpace(SolverStepsColumnName, nameof(SolverStepsColumnName));
        Check(PredictedNextStateColumnName != SolverStepsColumnName, nameof(SolverStepsColumnName), SolverStepsColumnName, "must differ from PredictedNextStateColumnName");
        ArgumentNullException.ThrowIfNull(HiddenSizes, nameof(HiddenSizes));
        for (int i = 0; i < HiddenSizes.Length; i++)
            Check(HiddenSizes[i] >= 1 && HiddenSizes[i] <= 1 << 16, nameof(HiddenSizes), HiddenSizes[i], $"[{i}] must be in [1, 65536]");
        Check(Enum.IsDefined(Solver), nameof(Solver), Solver, "must be a defined OdeSolver");
        Check(Enum.IsDefined(Training), nameof(Training), Training, "must be a defined OdeTraining");
        Check(Enum.IsDefined(Optimizer), nameof(Optimizer), Optimizer, "must be a defined OdeOptimizer");
        Check(Enum.IsDefined(CurriculumOrder), nameof(CurriculumOrder), CurriculumOrder, "must be a defined CurriculumOrder");
        Check(FixedSteps >= 1 && FixedSteps <= 1000, nameof(FixedSteps), FixedSteps, "must be in [1, 1000]");
        Check(Tolerance > 0 && double.IsFinite(Tolerance), nameof(Tolerance), Tolerance, "must be a positive finite number");
        Check(Safety > 0 && Safety <= 1, nameof(Safety), Safety, "must be in (0, 1]");
        Check(MaxSteps >= 1 && MaxSteps <= 1000, nameof(MaxSteps), MaxSteps, "must be in [1, 1000]");
        Check(LearningRate is null || (LearningRate > 0 && double.IsFinite(LearningRate.Value)), nameof(LearningRate), LearningRate, "must be a positive finite number");
        Check(LbfgsIterations >= 1, nameof(LbfgsIterations), LbfgsIterations, "must be at least 1");
        Check(Epochs >= 1, nameof(Epochs), Epochs, "must be at least 1");
        Check(BatchSize >= 0, nameof(BatchSize), BatchSize, "must be non-negative (0 = full batch)");
        Check(CurriculumFraction > 0 && CurriculumFraction <= 1, nameof(CurriculumFraction), CurriculumFraction, "must be in (0, 1]");
        Check(CurriculumSegmentLength >= 1, nameof(CurriculumSegmentLength), CurriculumSegmentLength, "must be at least 1");
        Check(EntropyBins >= 1 && EntropyBins <= 64, nameof(EntropyBins), EntropyBins, "must be in [1, 64]");
    }
}
