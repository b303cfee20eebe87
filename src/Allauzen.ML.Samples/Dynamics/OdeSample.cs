using Allauzen.ML.Dynamics;

namespace Allauzen.ML.Samples.Dynamics;

/// <summary>
/// The `ode` sample: Neural ODE forecasters of Lorenz'63 (DLDE 2022) with black-box and Fehlberg training, their
/// one-step and physical errors, the solver's accepted fraction and steps, rollout valid times in Lyapunov times, the
/// curriculum comparison (EPJ E 2023), a rollout plot, save/reload and the ONNX export of the fixed-step map.
/// </summary>
public static class OdeSample
{
    private const double Dt = 0.01;
    private const double LambdaMax = 0.906;
    private const double Threshold = 0.4;

    private static readonly Option<int> Points = SampleCli.Int("--points", 5000, "rows of the training and of the test trajectory");
    private static readonly SampleCommand Cli = new("ode", epochs: "60");
    private static readonly Option<double> CurriculumFraction = SampleCli.Real("--curriculum-fraction", 0.2, "fraction of the training segments kept by each curriculum");

    /// <summary>`ode`: train, compare, roll out, plot, save/reload, ONNX.</summary>
    public static Command Command { get; } = Cli.Create(
        "Neural ODE on Lorenz'63: black box vs Fehlberg training, valid prediction time, entropy curriculum, ONNX.",
        Run, Points, CurriculumFraction);

    private sealed record Evaluation(string Name, double OneStepMse, double PersistenceMse, double PhysicalMse, double TestAccepted,
        double TestMeanSteps, double TrainAcceptedFirst, double TrainAcceptedLast, double RejectedStepsFirst, double RejectedStepsLast, double RejectedStepsUsedLast,
        double ValidLyapunov, double TrainSeconds);

    private static int Run(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        int points = args.GetValue(Points);
        int epochs = Cli.Epochs(args) ?? 60;
        string outputFolder = Cli.OutputFolder(args);
        var trainTraj = DynamicalSystems.Lorenz63Trajectory(points, Dt, seed: 1);
        var testTraj = DynamicalSystems.Lorenz63Trajectory(points, Dt, seed: 2);
        var train = DynamicalSystems.Transitions(trainTraj);
        string csvPath = Path.Combine(outputFolder, "ode-train.csv");
        File.WriteAllLines(csvPath, trainTraj.Select(x => string.Join(",", x.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))));
        SampleCli.Wrote(csvPath, "training trajectory, one state per line (input of the PyTorch reference driver)");
        var test = DynamicalSystems.Transitions(testTraj);
        Console.WriteLine($"Lorenz'63 (σ 10, ρ 28, β 8/3), dt {Dt}: {points} training rows, {points} test rows; f_θ 3→50→50→3 ReLU, L-BFGS, {epochs} epochs");

        // 1. The paper's three conditions.
        var conditions = new (string Name, NeuralOdeOptions Options)[]
        {
            ("black box ε=0.1", new NeuralOdeOptions { Tolerance = 0.1 }),
            ("black box ε=0.01", new NeuralOdeOptions { Tolerance = 0.01 }),
            ("Fehlberg ε=0.1", new NeuralOdeOptions { Tolerance = 0.1, Training = OdeTraining.Fehlberg }),
        };
        var results = new List<Evaluation>();
        NeuralOdeTransformer? fehlberg = null;
        foreach (var (name, o) in conditions)
        {
            o.Epochs = epochs;
            o.Seed = 1;
            var (model, seconds) = Train(ml, train, o, name);
            results.Add(Evaluate(name, model, test, testTraj, seconds));
            if (o.Training == OdeTraining.Fehlberg)
                fehlberg = model;
            else
                model.Dispose();
        }
        Console.WriteLine();
        Console.WriteLine("| training | one-step MSE | physical MSE | test accepted | test mean steps | train accepted (first → last epoch) | rejected rows' 1/h' (first → last epoch) | rejected rows' whole steps used (last epoch) | valid time (Lyapunov times) | train s |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in results)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.OneStepMse:G3} | {r.PhysicalMse:G3} | {r.TestAccepted:P1} | {r.TestMeanSteps:F3} | {r.TrainAcceptedFirst:P1} → {r.TrainAcceptedLast:P1} | {r.RejectedStepsFirst:F2} → {r.RejectedStepsLast:F2} | {r.RejectedStepsUsedLast:F2} | {r.ValidLyapunov:F2} | {r.TrainSeconds:F1} |"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"persistence baseline (x_(i+1) ≈ x_i) one-step MSE: {results[0].PersistenceMse:G3}"));

        // 2. The curriculum comparison: same number of training rows, three choices of segments.
        double fraction = args.GetValue(CurriculumFraction);
        var curricula = new (string Name, CurriculumOrder Order)[]
        {
            ("random", CurriculumOrder.Random),
            ("entropy max-coverage", CurriculumOrder.MaxCoverage),
            ("low-entropy only (low → high)", CurriculumOrder.LowToHighEntropy),
        };
        var curriculumResults = new List<(string Name, CurriculumOrder Order, Evaluation Eval)>();
        foreach (var (name, order) in curricula)
        {
            var o = new NeuralOdeOptions { Epochs = epochs, Seed = 1, CurriculumOrder = order, CurriculumFraction = fraction, CurriculumSegmentLength = 100 };
            var (model, seconds) = Train(ml, train, o, $"curriculum {name}");
            curriculumResults.Add((name, order, Evaluate(name, model, test, testTraj, seconds)));
            model.Dispose();
        }
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"curriculum: {fraction:P0} of the 100-row training segments, black box ε=0.1"));
        Console.WriteLine("| training set | one-step MSE | physical MSE | valid time (Lyapunov times) |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (name, _, r) in curriculumResults)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {r.OneStepMse:G3} | {r.PhysicalMse:G3} | {r.ValidLyapunov:F2} |"));

        // 3. Rollout plot, save/reload, ONNX of the fixed-step one-step map.
        var model0 = fehlberg!;
        int plotSteps = Math.Min(1000, points);
        var rollout = model0.Rollout(ToFloat(testTraj[0]), plotSteps);
        string plotPath = Path.Combine(outputFolder, "ode-rollout.png");
        SaveRolloutPlot(rollout, testTraj, plotPath);
        SampleCli.Wrote(plotPath, "rollout x₁(t) against the truth");
        string modelPath = Path.Combine(outputFolder, "ode-fehlberg.zip");
        ModelFile.Save(ml, model0, train.Schema, modelPath);
        var reloaded = (NeuralOdeTransformer)new MLContext(seed: 2).Model.Load(modelPath, out _);
        bool reloadIdentical = reloaded.Rollout(ToFloat(testTraj[0]), plotSteps).Zip(rollout).All(p => p.First.SequenceEqual(p.Second));
        Console.WriteLine($"reload identical (rollout of {plotSteps} steps): {reloadIdentical}");
        var fixedMap = model0.WithFixedSolver(OdeSolver.Rk3, 1);
        double onnxDiff = OnnxParity(ml, fixedMap, test, Path.Combine(outputFolder, "ode-rk3-1step.onnx"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ONNX one-step map (RK3, 1 step): max |ML.NET − ONNX Runtime| = {onnxDiff:E2}"));

        var metrics = new Dictionary<string, object?>
        {
            ["sample"] = "ode",
            ["points"] = points,
            ["epochs"] = epochs,
            ["dt"] = Dt,
            ["lambda_max"] = LambdaMax,
            ["valid_time_threshold"] = Threshold,
            ["persistence_mse"] = results[0].PersistenceMse,
            ["reload_identical"] = reloadIdentical,
            ["onnx_max_abs_diff"] = onnxDiff,
        };
        foreach (var (r, key) in results.Zip(new[] { "blackbox_eps0.1", "blackbox_eps0.01", "fehlberg_eps0.1" }))
            Add(metrics, key, r);
        foreach (var (_, order, r) in curriculumResults)
            Add(metrics, "curriculum_" + order.ToString().ToLowerInvariant(), r);
        Cli.WriteMetrics(args, metrics);
        return reloadIdentical && onnxDiff <= 1e-5 ? 0 : 1;
    }

    private static (NeuralOdeTransformer Model, double Seconds) Train(MLContext ml, IDataView train, NeuralOdeOptions o, string name)
    {
        var sw = Stopwatch.StartNew();
        using var progress = new ConsoleProgress(name, o.Epochs);
        o.Progress = new SyncProgress<TrainingProgress>(p => progress.Report(p.Epoch, string.Create(CultureInfo.InvariantCulture,
            $"mse {p.TrainLoss:G3}, accepted {p.TrainAccuracy:P1}, rejected steps {p.Diagnostics["rejectedSteps"]:F2}, {p.EpochTime.TotalSeconds:F2} s/epoch")));
        var model = ml.Transforms.NeuralOdeForecaster(o).Fit(train);
        return (model, sw.Elapsed.TotalSeconds);
    }

    private static Evaluation Evaluate(string name, NeuralOdeTransformer model, IDataView test, double[][] testTraj, double seconds)
    {
        var scored = model.Transform(test);
        var pred = scored.GetColumn<float[]>("PredictedNextState").ToArray();
        var state = scored.GetColumn<float[]>("State").ToArray();
        var next = scored.GetColumn<float[]>("NextState").ToArray();
        var steps = scored.GetColumn<float>("SolverSteps").ToArray();
        // Physical MSE (paper §3): along a free-running rollout, x̂_i against Lorenz(x̂_{i−1}) integrated over dt.
        int n = Math.Min(1000, testTraj.Length - 1);
        var rollout = model.Rollout(ToFloat(testTraj[0]), n);
        double physical = 0;
        for (int i = 1; i <= n; i++)
        {
            var exact = DynamicalSystems.Lorenz63Advance(rollout[i - 1].Select(v => (double)v).ToArray(), Dt);
            physical += exact.Zip(rollout[i], (a, b) => (a - b) * (a - b)).Sum() / 3 / n;
        }
        // Valid prediction time averaged over rollouts of 500 steps started every 500 test states.
        var valid = new List<double>();
        for (int s = 0; s + 500 < testTraj.Length; s += 500)
        {
            var path = model.Rollout(ToFloat(testTraj[s]), 500);
            valid.Add(DynamicalSystems.ValidPredictionSteps(path, testTraj[s..], Threshold) * Dt * LambdaMax);
        }
        var h = model.TrainingHistory;
        return new Evaluation(name, Mse(pred, next), Mse(state, next), physical, steps.Count(k => k == 1) / (double)steps.Length,
            steps.Average(), h[0].AcceptedFraction, h[^1].AcceptedFraction, h[0].MeanRejectedSteps, h[^1].MeanRejectedSteps,
            h[^1].AcceptedFraction < 1 ? (h[^1].MeanSteps - h[^1].AcceptedFraction) / (1 - h[^1].AcceptedFraction) : 0, valid.Average(), seconds);
    }

    private static void Add(Dictionary<string, object?> metrics, string key, Evaluation r)
    {
        metrics[key + "_one_step_mse"] = r.OneStepMse;
        metrics[key + "_physical_mse"] = r.PhysicalMse;
        metrics[key + "_test_accepted_fraction"] = r.TestAccepted;
        metrics[key + "_test_mean_steps"] = r.TestMeanSteps;
        metrics[key + "_train_accepted_first"] = r.TrainAcceptedFirst;
        metrics[key + "_train_accepted_last"] = r.TrainAcceptedLast;
        metrics[key + "_rejected_steps_first"] = r.RejectedStepsFirst;
        metrics[key + "_rejected_steps_last"] = r.RejectedStepsLast;
        metrics[key + "_rejected_steps_used_last"] = r.RejectedStepsUsedLast;
        metrics[key + "_valid_lyapunov_times"] = r.ValidLyapunov;
        metrics[key + "_train_seconds"] = r.TrainSeconds;
    }

    /// <summary>Exports the fixed-step model and returns max |PredictedNextState(Transform) − ONNX Runtime| over 1000 rows.</summary>
    private static double OnnxParity(MLContext ml, ITransformer model, IDataView data, string onnxPath)
    {
        var sample = ml.Data.TakeRows(data, 1000);
        ml.Model.ExportToOnnx(model, sample, onnxPath);
        SampleCli.Wrote(onnxPath, "ONNX, fixed-step one-step map");
        var expected = model.Transform(sample).GetColumn<float[]>("PredictedNextState").ToArray();
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(onnxPath);
        var inputs = session.InputMetadata.Keys.Select(name =>
        {
            var rows = sample.GetColumn<float[]>(name).ToArray();
            return Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor(name,
                new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length]));
        }).ToList();
        using var results = session.Run(inputs);
        var onnx = results.First(r => r.Name == "PredictedNextState.output").AsTensor<float>();
        double max = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            for (int j = 0; j < expected[i].Length; j++)
                max = Math.Max(max, Math.Abs(expected[i][j] - onnx[i, j]));
        }
        return max;
    }

    private static double Mse(float[][] a, float[][] b) =>
        a.Zip(b).SelectMany(p => p.First.Zip(p.Second, (x, y) => (double)(x - y) * (x - y))).Average();

    private static float[] ToFloat(double[] x) => x.Select(v => (float)v).ToArray();

    private static void SaveRolloutPlot(float[][] rollout, double[][] truth, string path)
    {
        var t = Enumerable.Range(0, rollout.Length).Select(i => i * Dt * LambdaMax).ToArray();
        var plot = new ScottPlot.Plot();
        var a = plot.Add.Scatter(t, truth.Take(rollout.Length).Select(x => x[0]).ToArray());
        a.LegendText = "Lorenz'63 (truth)";
        a.MarkerSize = 0;
        var b = plot.Add.Scatter(t, rollout.Select(x => (double)x[0]).ToArray());
        b.LegendText = "Neural ODE rollout (Fehlberg training)";
        b.MarkerSize = 0;
        plot.Title("Free-running rollout from the first test state");
        plot.XLabel("time (Lyapunov times)");
        plot.YLabel("x₁");
        plot.ShowLegend();
        string tmp = path + ".tmp.png";
        plot.SavePng(tmp, 900, 420);
        File.Move(tmp, path, overwrite: true);
    }
}
