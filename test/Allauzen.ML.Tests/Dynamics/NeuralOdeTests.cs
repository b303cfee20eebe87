using Allauzen.ML.Dynamics;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Dynamics;

[TestClass]
public sealed class NeuralOdeTests
{
    private static NeuralOdeTransformer BlackBox => LorenzFixture.Model("blackbox-8", o => o.Epochs = 8);

    private static NeuralOdeTransformer Fehlberg => LorenzFixture.Model("fehlberg-8", o => { o.Epochs = 8; o.Training = OdeTraining.Fehlberg; });

    private static NeuralOdeOptions Small(OdeSolver solver) => new()
    {
        Seed = 3, HiddenSizes = [16], Epochs = 3, Solver = solver, FixedSteps = 2, LbfgsIterations = 5,
    };

    [TestMethod]
    public void OneStep_TestMseAtLeast100TimesBelowPersistence()
    {
        var scored = BlackBox.Transform(LorenzFixture.TestData);
        var pred = scored.GetColumn<float[]>("PredictedNextState").ToArray();
        var state = scored.GetColumn<float[]>("State").ToArray();
        var next = scored.GetColumn<float[]>("NextState").ToArray();
        double mse = LorenzFixture.Mse(pred, next), persistence = LorenzFixture.Mse(state, next);
        Assert.IsLessThanOrEqualTo(persistence / 100, mse, $"one-step test MSE {mse:G3} vs persistence {persistence:G3}");
    }

    [TestMethod]
    public void FehlbergTraining_RaisesAcceptedFractionAndLowersRejectedSteps()
    {
        // Black box at ε = 0.1: the first step is accepted for almost every row, from the first epoch on.
        Assert.IsTrue(BlackBox.TrainingHistory.All(e => e.AcceptedFraction >= 0.95), string.Join("; ", BlackBox.TrainingHistory));
        // Fehlberg training: every row is rejected at first (r against the target), then the accepted fraction rises
        // and the rejected rows' proposed steps fall (the paper: 0 → ≈98 %, ≈7 → just under 2).
        var h = Fehlberg.TrainingHistory;
        Assert.IsLessThanOrEqualTo(0.1, h[0].AcceptedFraction, string.Join("; ", h));
        Assert.IsGreaterThanOrEqualTo(0.9, Fehlberg.AcceptedFraction, string.Join("; ", h));
        var lastRejected = h.Last(e => e.MeanRejectedSteps > 0);
        Assert.IsLessThan(h[0].MeanRejectedSteps, lastRejected.MeanRejectedSteps, string.Join("; ", h));
        Assert.IsLessThan(h[0].MeanSteps, h[^1].MeanSteps, string.Join("; ", h));
    }

    [TestMethod]
    public void Contract_FixedRk3_SchemaBadInputSaveLoadRowMapperOnnx()
    {
        var ml = new MLContext(seed: 1);
        var data = DynamicalSystems.Lorenz63(300, 0.01, seed: 3);
        var wrongSize = DynamicalSystems.Transitions(Enumerable.Range(0, 10).Select(i => new double[] { i, 1 }).ToArray());
        var noState = ml.Transforms.CopyColumns("Other", "State").Append(ml.Transforms.DropColumns("State")).Fit(data).Transform(data);
        var report = EstimatorContract.Check(ml.Transforms.NeuralOdeForecaster(Small(OdeSolver.Rk3)), data, data,
            ["PredictedNextState", "SolverSteps"], [(wrongSize, "State", false), (noState, "State", true)]);
        // States reach |x| ≈ 40, where one float32 ulp is 3.8e-6: the batch size changes BLAS rounding by an ulp or two.
        Assert.IsLessThanOrEqualTo(1e-5, report.RowMapperMaxDiff, "row mapper vs batched Transform");
        Assert.IsLessThanOrEqualTo(1e-5, report.OnnxMaxDiff, "ONNX parity");
    }

    [TestMethod]
    public void Contract_AdaptiveFehlberg_SaveLoadRowMapper_OnnxRefusedNamingWithFixedSolver()
    {
        var ml = new MLContext(seed: 1);
        var data = DynamicalSystems.Lorenz63(300, 0.01, seed: 3);
        var o = Small(OdeSolver.Fehlberg32);
        o.Tolerance = 1e-3; // some rows take several steps
        var report = EstimatorContract.Check(ml.Transforms.NeuralOdeForecaster(o), data, data, ["PredictedNextState", "SolverSteps"], [], onnx: false);
        // States reach |x| ≈ 40, where one float32 ulp is 3.8e-6: the batch size changes BLAS rounding by an ulp or two.
        Assert.IsLessThanOrEqualTo(1e-5, report.RowMapperMaxDiff, "row mapper vs batched Transform");
        var model = (NeuralOdeTransformer)report.Transformer;
        var steps = model.Transform(data).GetColumn<float>("SolverSteps").ToArray();
        Assert.IsTrue(steps.Any(s => s > 1), "ε = 1e-3 rejects some first steps");
        var e = Assert.Throws<NotSupportedException>(() => ml.Model.ExportToOnnx(model, data, new MemoryStream()));
        StringAssert.Contains(e.Message, "WithFixedSolver");
        var fixedRk3 = model.WithFixedSolver(OdeSolver.Rk3, 4);
        Assert.IsLessThanOrEqualTo(1e-5, EstimatorContract.OnnxMaxDiff(ml, fixedRk3, data, ["PredictedNextState", "SolverSteps"]));
    }

    [TestMethod]
    public void SaveLoad_ReloadedModelRollsOutIdentically()
    {
        var model = Fehlberg;
        var ml = new MLContext(seed: 5);
        var ms = new MemoryStream();
        ml.Model.Save(model, LorenzFixture.TestData.Schema, ms);
        ms.Position = 0;
        var loaded = (NeuralOdeTransformer)new MLContext(seed: 6).Model.Load(ms, out _);
        float[] x0 = [.. LorenzFixture.Test[0].Select(v => (float)v)];
        var a = model.Rollout(x0, 100, out var stepsA);
        var b = loaded.Rollout(x0, 100, out var stepsB);
        for (int t = 0; t <= 100; t++)
            CollectionAssert.AreEqual(a[t], b[t], $"state {t}");
        CollectionAssert.AreEqual(stepsA, stepsB);
        Assert.AreEqual(model.AcceptedFraction, loaded.AcceptedFraction);
        Assert.HasCount(model.TrainingHistory.Count, loaded.TrainingHistory);
        Assert.AreEqual(OdeSolver.Fehlberg32, loaded.Solver);
    }

    [TestMethod]
    public void Adam_MiniBatches_LowerTheLoss_AndProgressIsReported()
    {
        var reports = new List<TrainingProgress>();
        var o = new NeuralOdeOptions
        {
            Seed = 2, HiddenSizes = [16], Epochs = 4, Optimizer = OdeOptimizer.Adam, LearningRate = 1e-2, BatchSize = 64,
            Progress = new Progress(reports.Add),
        };
        var model = new MLContext(seed: 1).Transforms.NeuralOdeForecaster(o).Fit(DynamicalSystems.Lorenz63(300, 0.01, seed: 3));
        Assert.HasCount(4, reports);
        Assert.IsLessThan(model.TrainingHistory[0].Loss, model.TrainingHistory[^1].Loss);
        Assert.AreEqual(model.TrainingHistory[^1].AcceptedFraction, reports[^1].Diagnostics["acceptedFraction"]);
    }

    [TestMethod]
    public void Cancellation_StopsTraining()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var o = new NeuralOdeOptions { Seed = 2, HiddenSizes = [8], Epochs = 3, CancellationToken = cts.Token };
        Assert.Throws<OperationCanceledException>(() => new MLContext(seed: 1).Transforms.NeuralOdeForecaster(o).Fit(DynamicalSystems.Lorenz63(100, 0.01, seed: 3)));
    }

    [TestMethod]
    public void PredictionEngine_ScoresOneTransition()
    {
        // PredictionEngine disposes the model it scores with, so it gets its own copy (one RK3 step, as an accepted row).
        var model = BlackBox.WithFixedSolver(OdeSolver.Rk3, 1);
        var ml = new MLContext(seed: 1);
        var schema = DynamicalSystems.Lorenz63(2, 0.01, seed: 3).Schema;
        var row = new StateTransition { State = [.. LorenzFixture.Test[5].Select(v => (float)v)], NextState = new float[3] };
        var batched = model.Rollout(row.State, 1)[1];
        using var engine = ml.Model.CreatePredictionEngine<StateTransition, Prediction>(model, schema);
        var p = engine.Predict(row);
        for (int j = 0; j < 3; j++)
            Assert.AreEqual(batched[j], p.PredictedNextState[j], 1e-5);
        Assert.AreEqual(1f, p.SolverSteps);
    }

    private sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    private sealed class Prediction
    {
        public float[] PredictedNextState { get; set; } = [];

        public float SolverSteps { get; set; }
    }

    [TestMethod]
    public void ParameterShapes_MatchTheNetwork()
    {
        var a = new NeuralOdeArchitecture(3, [7, 5], [0f, 0f, 0f], [1f, 1f, 1f]);
        using var net = new OdeNetwork(a);
        var actual = net.named_parameters().Select(p => (p.name, string.Join(",", p.parameter.shape))).ToArray();
        var expected = OdeNetwork.ParameterShapes(a).Select(p => (p.Name, string.Join(",", p.Shape))).ToArray();
        CollectionAssert.AreEqual(expected, actual);
    }

    [TestMethod]
    public void Rollout_StartsAtInitialStateAndChainsOneStepMap()
    {
        var model = BlackBox;
        float[] x0 = [1f, 2f, 20f];
        var path = model.Rollout(x0, 3);
        Assert.HasCount(4, path);
        CollectionAssert.AreEqual(x0, path[0]);
        var row = DynamicalSystems.Transitions([[.. path[1].Select(v => (double)v)], [0, 0, 0]]);
        var next = model.Transform(row).GetColumn<float[]>("PredictedNextState").Single();
        for (int j = 0; j < 3; j++)
            Assert.AreEqual(path[2][j], next[j], 1e-5);
        Assert.Throws<ArgumentException>(() => model.Rollout([1f, 2f], 3));
    }

    [TestMethod]
    public void Options_InvalidValuesAreRejectedByName()
    {
        var ml = new MLContext(seed: 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.NeuralOdeForecaster(new NeuralOdeOptions { Tolerance = 0 }));
        StringAssert.Contains(e.Message, "Tolerance");
        e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.NeuralOdeForecaster(new NeuralOdeOptions { Safety = 1.5 }));
        StringAssert.Contains(e.Message, "Safety");
        e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.NeuralOdeForecaster(new NeuralOdeOptions { CurriculumFraction = 0 }));
        StringAssert.Contains(e.Message, "CurriculumFraction");
    }

    [TestMethod]
    public void Curriculum_SelectsLowEntropyOrMaximalCoverage()
    {
        var states = LorenzFixture.Train.Take(1000).SelectMany(s => s.Select(v => (float)v)).ToArray();
        var o = new NeuralOdeOptions { CurriculumFraction = 0.3, CurriculumSegmentLength = 50 };
        o.CurriculumOrder = CurriculumOrder.LowToHighEntropy;
        var low = Curriculum.Build(states, 3, o, seed: 1);
        o.CurriculumOrder = CurriculumOrder.Random;
        var random = Curriculum.Build(states, 3, o, seed: 1);
        o.CurriculumOrder = CurriculumOrder.MaxCoverage;
        var cover = Curriculum.Build(states, 3, o, seed: 1);
        Assert.AreEqual(300, low.RowCount);
        Assert.AreEqual(300, random.RowCount);
        Assert.AreEqual(300, cover.RowCount);
        CollectionAssert.AreEqual(low.Entropies.Order().ToArray(), low.Entropies);
        Assert.IsLessThanOrEqualTo(random.Entropies.Average(), low.Entropies.Average());
        // Pacing: the low → high curriculum starts with its first segment and has all of them from the middle epoch on.
        Assert.HasCount(50, low.RowsForEpoch(1, 20));
        Assert.HasCount(300, low.RowsForEpoch(10, 20));
        var partition = StatePartition.Fit(states, 3, 8);
        int Cells(Curriculum c) => c.RowsForEpoch(20, 20).Select(r => partition.Cell(states.AsSpan(r * 3, 3))).Distinct().Count();
        Assert.IsGreaterThanOrEqualTo(Cells(random), Cells(cover));
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void Rollout_ValidTimeAtLeastOneLyapunovTime()
    {
        // Paper-sized data: 5000 training rows; rollout from the first test state; threshold 0.4 on the error
        // normalised by the test trajectory's RMS spread (DynamicalSystems.ValidPredictionSteps).
        var train = DynamicalSystems.Lorenz63(5000, LorenzFixture.Dt, seed: 11);
        var truth = DynamicalSystems.Lorenz63Trajectory(1000, LorenzFixture.Dt, seed: 12);
        var model = new MLContext(seed: 1).Transforms.NeuralOdeForecaster(new NeuralOdeOptions { Seed = 1, Epochs = 60, Training = OdeTraining.Fehlberg }).Fit(train);
        var path = model.Rollout([.. truth[0].Select(v => (float)v)], 1000);
        int valid = DynamicalSystems.ValidPredictionSteps(path, truth, 0.4);
        double lyapunovTimes = valid * LorenzFixture.Dt * LorenzFixture.LambdaMax;
        Assert.IsGreaterThanOrEqualTo(1.0, lyapunovTimes, $"valid for {valid} steps = {lyapunovTimes:F2} Lyapunov times");
    }
}
