using Allauzen.ML.Datasets;
using Allauzen.ML.Foton;
using Allauzen.ML.Tests.Mlp;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Foton;

[TestClass]
public sealed class FotonTrainerTests
{
    private static FotonOptions Small(FotonAlgorithm algorithm = FotonAlgorithm.Foton, int epochs = 4) => new()
    {
        Algorithm = algorithm, HiddenSizes = [8, 8], Epochs = epochs, BatchSize = 32, Dropout = 0, Seed = 1,
    };

    [TestMethod]
    [DataRow(FotonActivation.Relu)]
    [DataRow(FotonActivation.MaxMin)]
    [DataRow(FotonActivation.Tanh)]
    public void Contract_SchemaBadInputSaveLoadRowMapperOnnx(FotonActivation activation)
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 300);
        var wrongSize = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(i => new MlpTests.WideRow { Features = new float[5], Label = 1 }));
        var noFeatures = ml.Transforms.CopyColumns("Other", "Features").Append(ml.Transforms.DropColumns("Features")).Fit(data).Transform(data);
        var o = Small();
        o.Activation = activation;
        var report = EstimatorContract.Check(ml.MulticlassClassification.Trainers.Foton(o), data, data,
            ["Score", "PredictedLabel"], [(wrongSize, "Features", false), (noFeatures, "Features", true)]);
        Assert.IsLessThanOrEqualTo(1e-6, report.RowMapperMaxDiff, "row mapper vs batched Transform");
        Assert.IsLessThanOrEqualTo(1e-5, report.OnnxMaxDiff, "ONNX parity");
        var t = (FotonTransformer)report.Transformer;
        Assert.AreEqual(activation, t.Activation);
        CollectionAssert.AreEqual(new[] { "fc0", "fc1", "out" }, t.LayerNames.ToArray());
        foreach (var (name, err) in t.OrthogonalityErrors())
            Assert.IsLessThanOrEqualTo(1e-5, err, $"layer {name} of the trained FOTON model");
        var acc = ml.MulticlassClassification.Evaluate(t.Transform(data)).MicroAccuracy;
        Assert.IsGreaterThan(0.9, acc, $"{activation}: accuracy {acc}");
    }

    [TestMethod]
    [DataRow(FotonAlgorithm.Foton, false)]
    [DataRow(FotonAlgorithm.Pepita, false)]
    [DataRow(FotonAlgorithm.Backprop, false)]
    [DataRow(FotonAlgorithm.Backprop, true)]
    public void Digits_AllAlgorithmsLearn_ProgressReportsDiagnosticsByLayerName(FotonAlgorithm algorithm, bool project)
    {
        var ml = new MLContext(seed: 1);
        var (rawTrain, rawTest) = TestData.Digits(ml);
        var prep = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.NormalizeMeanVariance("Features")).Fit(rawTrain);
        var (train, test) = (prep.Transform(rawTrain), prep.Transform(rawTest));
        var reports = new List<TrainingProgress>();
        var o = new FotonOptions
        {
            Algorithm = algorithm, HiddenSizes = [64, 48], Epochs = 8, BatchSize = 32, Seed = 3, ProjectBackprop = project,
            AlignmentDiagnostics = true, Progress = new SyncProgress<TrainingProgress>(reports.Add),
        };
        if (algorithm == FotonAlgorithm.Pepita)
        {
            o.LearningRate = 0.05;
            o.Momentum = 0.9;
        }
        else if (algorithm == FotonAlgorithm.Backprop)
        {
            o.LearningRate = 0.1;
        }
        var model = ml.MulticlassClassification.Trainers.Foton(o).Fit(train);
        var acc = ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
        // ReLU FOTON is an approximation of BP-ortho (cos ≈ 0.7 per hidden layer): measured 73.5 % vs 81.3 % here.
        Assert.IsGreaterThan(algorithm == FotonAlgorithm.Foton ? 0.65 : 0.8, acc, $"{algorithm} (project {project}): digits accuracy {acc:P1}");
        Assert.HasCount(8, reports);
        var last = reports[^1].Diagnostics;
        bool projected = algorithm == FotonAlgorithm.Foton || project;
        if (projected)
        {
            Assert.IsLessThanOrEqualTo(1e-5, last["ortho_err"], "orthogonality after the warm-started projection");
            Assert.IsLessThan(20.0, last["bjorck_iterations"], "warm start needs fewer iterations than the reference 20");
        }
        else
        {
            Assert.IsGreaterThan(1e-3, last["ortho_err"], "unprojected weights drift from orthonormality");
        }
        if (algorithm == FotonAlgorithm.Backprop)
        {
            Assert.IsFalse(last.Keys.Any(k => k.StartsWith("cos[", StringComparison.Ordinal)));
            return;
        }
        foreach (var r in reports)
        {
            CollectionAssert.IsSubsetOf(new[] { "cos[fc0]", "cos[fc1]", "cos[out]" }, r.Diagnostics.Keys.ToArray());
            // Dropout 0.1 with masks shared by the probe: the output layer is exact for FOTON.
            if (algorithm != FotonAlgorithm.Foton)
                continue;
            Assert.IsGreaterThan(0.9999, r.Diagnostics["cos[out]"], $"epoch {r.Epoch}: output layer cosine");
            Assert.IsGreaterThan(0.0, r.Diagnostics["cos[fc0]"], $"epoch {r.Epoch}: fc0 positively aligned");
        }
    }

    [TestMethod]
    public void Convolutional_Contract_OnnxConv_DigitsLearn()
    {
        var ml = new MLContext(seed: 1);
        var (rawTrain, rawTest) = TestData.Digits(ml);
        var prep = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.NormalizeMeanVariance("Features")).Fit(rawTrain);
        var (train, test) = (ml.Data.Cache(prep.Transform(rawTrain)), ml.Data.Cache(prep.Transform(rawTest)));
        var o = new FotonOptions
        {
            InputShape = [1, 8, 8], ConvolutionChannels = [4, 16], HiddenSizes = [48], Epochs = 8, BatchSize = 32, Seed = 2,
            Activation = FotonActivation.Tanh,
        };
        var report = EstimatorContract.Check(ml.MulticlassClassification.Trainers.Foton(o), train, test, ["Score", "PredictedLabel"], []);
        Assert.IsLessThanOrEqualTo(1e-5, report.OnnxMaxDiff, "ONNX parity (Conv nodes)");
        var t = (FotonTransformer)report.Transformer;
        CollectionAssert.AreEqual(new[] { "conv0", "conv1", "fc0", "out" }, t.LayerNames.ToArray());
        foreach (var (name, err) in t.OrthogonalityErrors())
            Assert.IsLessThanOrEqualTo(1e-5, err, name);
        var acc = ml.MulticlassClassification.Evaluate(t.Transform(test)).MicroAccuracy;
        Assert.IsGreaterThan(0.8, acc, $"convolutional FOTON digits accuracy {acc:P1}");

        // Non-expanding channels: 1×2×2 = 4 inputs per patch cannot give 8 orthonormal rows.
        o.ConvolutionChannels = [8, 16];
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Foton(o).Fit(train));
        StringAssert.Contains(e.Message, "conv0 (1×2×2 = 4 → 8 channels)");
        o.ConvolutionChannels = [4];
        o.InputShape = [1, 8, 9];
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Foton(o));
        o.InputShape = [1, 4, 4];
        var f = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Foton(o).Fit(train));
        StringAssert.Contains(f.Message, "'Features' has 64");
    }

    [TestMethod]
    public void LinearFoton_TrainsLikeBackpropWithTheSameProjection()
    {
        // The theorem at training time: identity activation, non-expanding orthonormal layers, same masks
        // (none: a dropout mask is not orthogonal), same optimizer and projection.
        var ml = new MLContext(seed: 1);
        var (train, test) = TestData.DigitsPrepared(ml);
        double[][] Scores(FotonAlgorithm a) => TestData.ReadColumn(ml.MulticlassClassification.Trainers.Foton(new FotonOptions
        {
            Algorithm = a, ProjectBackprop = true, Activation = FotonActivation.Identity, HiddenSizes = [64, 48],
            Epochs = 2, BatchSize = 32, Seed = 3, AlignmentDiagnostics = false, Dropout = 0,
            // backprop's mean loss divides by the actual rows: the same divisor on the last, partial batch
            ScaleByConfiguredBatchSize = false,
        }).Fit(train).Transform(test), "Score");
        double diff = TestData.MaxAbsDiff(Scores(FotonAlgorithm.Foton), Scores(FotonAlgorithm.Backprop));
        Assert.IsLessThanOrEqualTo(1e-3, diff, "linear FOTON vs BP-ortho scores after 2 epochs");
    }

    [TestMethod]
    public void DefaultSettings_NoNaNOverAnEpoch_OrthogonalityHolds()
    {
        // The reference configuration: 784-256-256-10, ReLU, dropout 0.1, SGD lr 0.5, batch 256, projection every step.
        var ml = new MLContext(seed: 1);
        IDataView train;
        FotonOptions o;
        var reports = new List<TrainingProgress>();
        if (FashionMnist.IsAvailable())
        {
            var raw = FashionMnist.Load(ml, train: true, maxRows: 6000);
            train = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.NormalizeMeanVariance("Features", fixZero: false))
                .Fit(raw).Transform(raw);
            o = new FotonOptions { Epochs = 1, Seed = 42 };
        }
        else
        {
            (train, _) = TestData.DigitsPrepared(ml);
            o = new FotonOptions { Epochs = 1, Seed = 42, HiddenSizes = [64, 64], BatchSize = 64 };
        }
        o.Progress = new SyncProgress<TrainingProgress>(reports.Add);
        var model = ml.MulticlassClassification.Trainers.Foton(o).Fit(train);
        var p = reports.Single();
        Assert.IsTrue(double.IsFinite(p.TrainLoss), $"loss {p.TrainLoss}");
        Assert.IsLessThanOrEqualTo(1e-5, p.Diagnostics["ortho_err"]);
        var scores = TestData.ReadColumn(model.Transform(train), "Score");
        Assert.IsTrue(scores.All(r => r.All(double.IsFinite)), "finite scores");
        Assert.IsGreaterThan(0.5, ml.MulticlassClassification.Evaluate(model.Transform(train)).MicroAccuracy);
    }

    [TestMethod]
    public void ExpandingWidths_ErrorNamesTheLayer_OrWarnWhenAllowed()
    {
        var ml = new MLContext(seed: 1);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Foton(new FotonOptions { HiddenSizes = [32, 64] }));
        StringAssert.Contains(e.Message, "fc1 (32 → 64)");
        StringAssert.Contains(e.Message, "AllowExpandingWidths");
        var data = TestData.BlobsPrepared(ml, 100);
        var o = Small();
        o.HiddenSizes = [16];
        var f = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Foton(o).Fit(data));
        StringAssert.Contains(f.Message, "fc0 (8 → 16)");
        // Allowed: trains, and the log says which layer expands.
        var log = new List<string>();
        ml.Log += (_, m) => { lock (log) log.Add(m.Message); };
        o.AllowExpandingWidths = true;
        ml.MulticlassClassification.Trainers.Foton(o).Fit(data);
        Assert.IsTrue(log.Any(m => m.Contains("fc0 (8 → 16) expands", StringComparison.Ordinal)), "warning naming the layer");
        // PEPITA and backprop have no such condition.
        o.AllowExpandingWidths = false;
        o.Algorithm = FotonAlgorithm.Backprop;
        o.LearningRate = 0.1;
        ml.MulticlassClassification.Trainers.Foton(o).Fit(data);
    }

    [TestMethod]
    public void DivergingRun_StopsWithEpochStepAndSetting()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 300);
        var o = Small(FotonAlgorithm.Pepita, 3);
        o.LearningRate = 1e6;
        o.Momentum = 0.9;
        var e = Assert.Throws<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.Foton(o).Fit(data));
        StringAssert.Contains(e.Message, "diverged at epoch 1, step");
        StringAssert.Contains(e.Message, "LearningRate");

        // FOTON with the projection skipped for 9 steps out of 10 at a huge learning rate: the message names ProjectionInterval.
        var f = Small(FotonAlgorithm.Foton, 3);
        f.LearningRate = 1e8;
        f.ProjectionInterval = 10;
        var e2 = Assert.Throws<InvalidOperationException>(() => ml.MulticlassClassification.Trainers.Foton(f).Fit(data));
        StringAssert.Contains(e2.Message, "Foton training diverged at epoch");
        StringAssert.Contains(e2.Message, "ProjectionInterval");
    }

    [TestMethod]
    public void Initialisation_BackpropStartsFullyOrthogonal_BackpropWithProjectionStartsAsFoton()
    {
        // The reference measurements' backprop baseline initialises every layer orthogonally, the output layer
        // included; the FOTON class (and backprop + projection, run on it) keeps PyTorch's U(±1/√d) output layer,
        // which becomes orthonormal at the first projection. A learning rate of 1e-12 leaves the initial weights.
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 64);
        double OutputRowError(bool project)
        {
            var o = Small(FotonAlgorithm.Backprop, epochs: 1);
            o.LearningRate = 1e-12;
            o.ProjectBackprop = project;
            o.ProjectionInterval = project ? 1000 : 1; // two steps, no projection yet
            return ml.MulticlassClassification.Trainers.Foton(o).Fit(data).OrthogonalityErrors()["out"];
        }
        Assert.IsLessThanOrEqualTo(1e-5, OutputRowError(project: false), "backprop: orthonormal output rows at init");
        Assert.IsGreaterThan(0.2, OutputRowError(project: true), "backprop + projection before its first projection: the uniform output init");
    }

    [TestMethod]
    public void SameSeed_BitIdentical_DifferentSeedDiffers()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 200);
        double[][] Scores(int seed, bool warm = true)
        {
            var o = Small(epochs: 2);
            o.Seed = seed;
            o.Dropout = 0.2;
            o.WarmStartProjection = warm;
            return TestData.ReadColumn(new MLContext(seed: 5).MulticlassClassification.Trainers.Foton(o).Fit(data).Transform(data), "Score");
        }
        Assert.AreEqual(0.0, TestData.MaxAbsDiff(Scores(7), Scores(7)));
        Assert.IsGreaterThan(0.0, TestData.MaxAbsDiff(Scores(7), Scores(8)));
        // The reference projection (power iteration from its own generator) is reproducible too, and lands on the same polar factors.
        Assert.AreEqual(0.0, TestData.MaxAbsDiff(Scores(7, warm: false), Scores(7, warm: false)));
        Assert.IsLessThanOrEqualTo(1e-4, TestData.MaxAbsDiff(Scores(7, warm: false), Scores(7)));
    }

    [TestMethod]
    public void ObsoleteIntervalNames_ForwardToTheNewOptions()
    {
#pragma warning disable CS0618 // the obsolete aliases are what is tested
        var o = new FotonOptions { OrthoRate = 3, FRefreshRate = 0 };
        Assert.AreEqual(3, o.ProjectionInterval);
        Assert.AreEqual(0, o.FeedbackRefreshInterval);
        o.ProjectionInterval = 5;
        o.FeedbackRefreshInterval = 2;
        Assert.AreEqual(5, o.OrthoRate);
        Assert.AreEqual(2, o.FRefreshRate);
#pragma warning restore CS0618
    }

    [TestMethod]
    public void InvalidOptions_NameTheOption()
    {
        var ml = new MLContext();
        void Check(FotonOptions o, string name)
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Foton(o));
            StringAssert.Contains(e.Message, name);
        }
        Check(new FotonOptions { HiddenSizes = [4, 0] }, "HiddenSizes[1]");
        Check(new FotonOptions { HiddenSizes = [5], Activation = FotonActivation.MaxMin }, "even");
        Check(new FotonOptions { Dropout = 1 }, "Dropout");
        Check(new FotonOptions { ProjectionInterval = 0 }, "ProjectionInterval");
        Check(new FotonOptions { FeedbackRefreshInterval = -1 }, "FeedbackRefreshInterval");
        Check(new FotonOptions { CeTemperature = 0 }, "CeTemperature");
        Check(new FotonOptions { BjorckIterations = 0 }, "BjorckIterations");
        Check(new FotonOptions { OrthogonalityTolerance = 0 }, "OrthogonalityTolerance");
        Check(new FotonOptions { Epochs = 0 }, "Epochs");
    }
}
