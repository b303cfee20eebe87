using System.Diagnostics;
using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Dynamics;

/// <summary>
/// Learns a Neural ODE ẋ = f_θ(x) from rows (State = x_i, NextState = x_{i+1}) of a trajectory sampled at a constant
/// interval (time 1 in index units), with the paper's Fehlberg 3(2) solver and black-box or Fehlberg training.
/// Create it with <c>ml.Transforms.NeuralOdeForecaster(options)</c>.
/// </summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// | Input columns | |
/// | -- | -- |
/// | `State` | `Vector<Single, d>` of known size |
/// | `NextState` | `Vector<Single, d>` (training only) |
///
/// | Output columns | |
/// | -- | -- |
/// | `PredictedNextState` | `Vector<Single, d>`: the state one interval later |
/// | `SolverSteps` | `Single`: whole solver steps used for the row (1 = first step accepted) |
///
/// | Characteristics | |
/// | -- | -- |
/// | Is normalization required? | No (f_θ standardises its input with the training states' mean and deviation) |
/// | Required NuGet in addition to Allauzen.ML | TorchSharp-cpu in the application |
/// | Exportable to ONNX | The fixed-step one-step map (`WithFixedSolver`); the adaptive loop stays in .NET |
/// ]]></format>
/// </remarks>
public sealed class NeuralOdeEstimator : IEstimator<NeuralOdeTransformer>
{
    private readonly IHost _host;
    private readonly NeuralOdeOptions _options;

    internal NeuralOdeEstimator(IHostEnvironment env, NeuralOdeOptions options)
    {
        _options = EstimatorArguments.Validated(env, options, o => o.Validate());
        _host = env.Register("Allauzen.NeuralOde");
    }

    /// <summary>The input shape plus <c>PredictedNextState</c> and <c>SolverSteps</c>.</summary>
    /// <param name="inputSchema">The input shape; it must hold the state column.</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SchemaChecks.FeatureVector(inputSchema, _options.StateColumnName, "state");
        return SchemaShapes.With(inputSchema,
        [
            SchemaShapes.Column(_options.PredictedNextStateColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false),
            SchemaShapes.Column(_options.SolverStepsColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false),
        ]);
    }

    /// <summary>Trains f_θ on the rows of <paramref name="input"/> and returns the forecaster.</summary>
    /// <param name="input">Rows with the state and next-state columns (same vector size, finite values).</param>
    public NeuralOdeTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var o = _options;
        int d = SchemaChecks.FeatureVector(input.Schema, o.StateColumnName, "state");
        SchemaChecks.FeatureVector(input.Schema, o.NextStateColumnName, "next state", d);
        var (x, y) = ReadRows(input, d, o.CancellationToken);
        int rows = x.Length / d;
        int seed = o.Seed ?? _host.Rand.Next();
        TorchRuntime.EnsureInitialized();
        TorchRuntime.SetSeed(seed);
        var curriculum = Curriculum.Build(x, d, o, seed);
        var net = new OdeNetwork(new NeuralOdeArchitecture(d, [.. o.HiddenSizes], Mean(x, d), Deviation(x, d)));
        try
        {
            var history = Train(net, x, y, d, curriculum, seed);
            return new NeuralOdeTransformer(_host, net, OdeSolverSettings.From(o), o.StateColumnName,
                o.PredictedNextStateColumnName, o.SolverStepsColumnName, history);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    private List<NeuralOdeEpoch> Train(OdeNetwork net, float[] xs, float[] ys, int d, Curriculum curriculum, int seed)
    {
        var o = _options;
        var settings = OdeSolverSettings.From(o);
        bool fehlberg = o.Training == OdeTraining.Fehlberg;
        using var xAll = torch.tensor(xs, [xs.Length / d, d]);
        using var yAll = torch.tensor(ys, [ys.Length / d, d]);
        double lr = o.LearningRate ?? (o.Optimizer == OdeOptimizer.Lbfgs ? 1.0 : 1e-3);
        optim.Optimizer CreateOptimizer() => o.Optimizer == OdeOptimizer.Lbfgs
            ? optim.LBFGS(net.parameters(), lr, o.LbfgsIterations, o.LbfgsIterations * 5 / 4, 1e-5, 1e-9, 100)
            : new KeptAdam(net.parameters(), lr);
        var optimizer = CreateOptimizer();
        int activeRows = -1;
        var history = new List<NeuralOdeEpoch>();
        var rng = new Random(seed);
        using var ch = _host.Start("Training");
        net.train();
        try
        {
            for (int epoch = 1; epoch <= o.Epochs; epoch++)
            {
                o.CancellationToken.ThrowIfCancellationRequested();
                var sw = Stopwatch.StartNew();
                var rows = curriculum.RowsForEpoch(epoch, o.Epochs);
                if (optimizer is TorchSharp.Modules.LBFGS && activeRows >= 0 && rows.Length != activeRows)
                {
                    // The curriculum changed the training set: L-BFGS's curvature pairs belong to the old objective (and
                    // without a line search a stale history can diverge), so start a fresh history.
                    optimizer.Dispose();
                    optimizer = CreateOptimizer();
                }
                activeRows = rows.Length;
                int batch = o.BatchSize == 0 ? rows.Length : Math.Min(o.BatchSize, rows.Length);
                if (batch < rows.Length)
                    rng.Shuffle(rows);
                var stats = new SolverStatistics();
                double lossSum = 0;
                for (int start = 0; start < rows.Length; start += batch)
                {
                    o.CancellationToken.ThrowIfCancellationRequested();
                    using var scope = torch.NewDisposeScope();
                    int count = Math.Min(batch, rows.Length - start);
                    var idx = torch.tensor(rows.AsSpan(start, count).ToArray().Select(i => (long)i).ToArray(), ScalarType.Int64);
                    var xb = xAll.index_select(0, idx);
                    var yb = yAll.index_select(0, idx);
                    double? first = null;
                    Tensor Closure()
                    {
                        optimizer.zero_grad();
                        var pred = AdaptiveSolver.TrainForward(settings, net.forward, xb, yb, fehlberg, first is null ? stats : new SolverStatistics());
                        var loss = nn.functional.mse_loss(pred, yb);
                        loss.backward();
                        first ??= loss.item<float>();
                        return loss;
                    }
                    if (optimizer is TorchSharp.Modules.LBFGS lbfgs)
                    {
                        lbfgs.step(Closure);
                    }
                    else
                    {
                        Closure();
                        optimizer.step();
                    }
                    lossSum += first!.Value * count;
                }
                double meanLoss = lossSum / rows.Length;
                if (!double.IsFinite(meanLoss))
                    throw new InvalidOperationException($"Neural ODE training diverged at epoch {epoch}: the loss is {meanLoss}. Lower the learning rate (now {lr}).");
                sw.Stop();
                var e = new NeuralOdeEpoch(epoch, meanLoss, stats.AcceptedFraction, stats.MeanRejectedSteps, stats.MeanSteps, rows.Length, sw.Elapsed.TotalSeconds);
                history.Add(e);
                var diagnostics = new Dictionary<string, double> { ["acceptedFraction"] = e.AcceptedFraction, ["rejectedSteps"] = e.MeanRejectedSteps };
                var p = new TrainingProgress(epoch, o.Epochs, meanLoss, e.AcceptedFraction, null, null, lr, sw.Elapsed, diagnostics);
                o.Progress?.Report(p);
                ch.Info(MessageSensitivity.None, FormattableString.Invariant(
                    $"epoch {epoch}/{o.Epochs}: mse {meanLoss:G4}, accepted {e.AcceptedFraction:F3}, rejected steps {e.MeanRejectedSteps:F2}, {e.Seconds:F2} s"));
            }
        }
        finally
        {
            optimizer.Dispose();
        }

        net.eval();
        return history;
    }

    private (float[] X, float[] Y) ReadRows(IDataView input, int d, CancellationToken ct)
    {
        var state = input.Schema[_options.StateColumnName];
        var next = input.Schema[_options.NextStateColumnName];
        var x = new List<float>();
        var y = new List<float>();
        using var cursor = input.GetRowCursor([state, next]);
        var getState = cursor.GetGetter<VBuffer<float>>(state);
        var getNext = cursor.GetGetter<VBuffer<float>>(next);
        VBuffer<float> a = default, b = default;
        long row = 0;
        while (cursor.MoveNext())
        {
            if ((row & 0xFFF) == 0)
                ct.ThrowIfCancellationRequested();
            getState(ref a);
            getNext(ref b);
            Append(x, a, state.Name, row);
            Append(y, b, next.Name, row);
            row++;
        }
        if (row == 0)
            throw new ArgumentException("The training data has no rows.", nameof(input));
        return (x.ToArray(), y.ToArray());
    }

    private static void Append(List<float> to, VBuffer<float> v, string column, long row)
    {
        foreach (float f in v.DenseValues())
        {
            if (!float.IsFinite(f))
                throw new ArgumentOutOfRangeException(nameof(column), f, $"Column '{column}', row {row}: the value {f} is not finite.");
            to.Add(f);
        }
    }

    private static float[] Mean(float[] x, int d)
    {
        var m = new double[d];
        for (int i = 0; i < x.Length; i++)
            m[i % d] += x[i];
        return m.Select(v => (float)(v / (x.Length / d))).ToArray();
    }

    private static float[] Deviation(float[] x, int d)
    {
        var mean = Mean(x, d);
        var v = new double[d];
        for (int i = 0; i < x.Length; i++)
        {
            double c = x[i] - mean[i % d];
            v[i % d] += c * c;
        }
        return v.Select(s => Math.Sqrt(s / (x.Length / d)) is var sd && sd > 1e-12 ? (float)sd : 1f).ToArray();
    }
}
