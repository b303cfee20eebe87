using Allauzen.ML.Mlp;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Mlp;

[TestClass]
public sealed class MlpTests
{
    private static MlpOptions Small(int epochs = 5) => new() { HiddenSizes = [16], Epochs = epochs, BatchSize = 16, LearningRate = 1e-2 };

    [TestMethod]
    public void Contract_SchemaBadInputSaveLoadRowMapperOnnx()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 300);
        var wrongSize = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(i => new WideRow { Features = new float[5], Label = 1 }));
        var noFeatures = ml.Transforms.CopyColumns("Other", "Features").Append(ml.Transforms.DropColumns("Features")).Fit(data).Transform(data);
        var report = EstimatorContract.Check(ml.MulticlassClassification.Trainers.Mlp(Small()), data, data,
            ["Score", "PredictedLabel"], [(wrongSize, "Features", false), (noFeatures, "Features", true)]);
        Assert.IsLessThanOrEqualTo(1e-6, report.RowMapperMaxDiff, "row mapper vs batched Transform");
        Assert.IsLessThanOrEqualTo(1e-5, report.OnnxMaxDiff, "ONNX parity");
    }

    [TestMethod]
    public void Digits_HoldOutAccuracyAtLeast95Percent()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = TestData.Digits(ml);
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [128], Epochs = 30, BatchSize = 32, LearningRate = 2e-3 }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = pipeline.Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        Assert.IsGreaterThanOrEqualTo(0.95, metrics.MicroAccuracy, $"digits hold-out accuracy {metrics.MicroAccuracy:P2}");
        // PredictedLabel maps back to the original strings and agrees with the argmax of Score.
        var preds = model.Transform(test).GetColumn<string>("PredictedLabel").ToArray();
        Assert.IsTrue(preds.All(p => p.Length == 1 && char.IsDigit(p[0])));
    }

    [TestMethod]
    public void SameSeed_BitIdentical_DifferentSeed_Differs()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 200);
        double[][] Scores(int seed)
        {
            var o = Small(3);
            o.Seed = seed;
            o.Dropout = 0.2;
            return TestData.ReadColumn(new MLContext(seed: 5).MulticlassClassification.Trainers.Mlp(o).Fit(data).Transform(data), "Score");
        }
        Assert.AreEqual(0.0, TestData.MaxAbsDiff(Scores(7), Scores(7)));
        Assert.IsGreaterThan(0.0, TestData.MaxAbsDiff(Scores(7), Scores(8)));
        // Seed from the MLContext when Options.Seed is null.
        double[][] FromContext(int ctxSeed) =>
            TestData.ReadColumn(new MLContext(seed: ctxSeed).MulticlassClassification.Trainers.Mlp(Small(2)).Fit(data).Transform(data), "Score");
        Assert.AreEqual(0.0, TestData.MaxAbsDiff(FromContext(3), FromContext(3)));
        Assert.IsGreaterThan(0.0, TestData.MaxAbsDiff(FromContext(3), FromContext(4)));
    }

    [TestMethod]
    public void PredictionEngine_MatchesTransform_AndKeyValuesRoundTrip()
    {
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromEnumerable(TestData.Blobs(150));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.Mlp(Small()))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(raw);
        var engine = ml.Model.CreatePredictionEngine<BlobRow, BlobPrediction>(model);
        var batch = model.Transform(raw);
        var scores = batch.GetColumn<float[]>("Score").ToArray();
        var labels = batch.GetColumn<string>("PredictedLabel").ToArray();
        var rows = TestData.Blobs(150);
        for (int i = 0; i < rows.Length; i++)
        {
            var p = engine.Predict(rows[i]);
            Assert.AreEqual(labels[i], p.PredictedLabel, $"row {i}");
            for (int j = 0; j < 3; j++)
                Assert.AreEqual(scores[i][j], p.Score[j], 1e-6f, $"row {i} slot {j}");
        }
        var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
        batch.Schema["Score"].GetSlotNames(ref slotNames);
        CollectionAssert.AreEquivalent(new[] { "a", "b", "c" }, slotNames.DenseValues().Select(s => s.ToString()).ToArray());
        Assert.IsGreaterThan(0.95, labels.Zip(rows).Count(t => t.First == t.Second.Label) / (double)rows.Length);
    }

    [TestMethod]
    public void ScoringBatchSize_DoesNotChangePredictions()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 257);
        var t = ml.MulticlassClassification.Trainers.Mlp(Small(2)).Fit(data);
        t.ScoringBatchSize = 1;
        var one = TestData.ReadColumn(t.Transform(data), "Score");
        t.ScoringBatchSize = 100;
        var hundred = TestData.ReadColumn(t.Transform(data), "Score");
        Assert.IsLessThanOrEqualTo(1e-6, TestData.MaxAbsDiff(one, hundred));
        Assert.AreEqual(257, hundred.Length);
    }

    [TestMethod]
    public void Progress_Validation_EarlyStopping_AndCancellation()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 300);
        var reports = new List<TrainingProgress>();
        var o = Small(40);
        o.ValidationFraction = 0.3;
        o.EarlyStoppingPatience = 2;
        o.LearningRate = 0.05;
        o.Progress = new SyncProgress<TrainingProgress>(reports.Add);
        ml.MulticlassClassification.Trainers.Mlp(o).Fit(data);
        Assert.IsTrue(reports.Count is > 2 and < 40, $"early stopping ran {reports.Count} epochs");
        Assert.IsTrue(reports.All(r => r.ValidationLoss is not null && r.ValidationAccuracy is not null));
        CollectionAssert.AreEqual(Enumerable.Range(1, reports.Count).ToArray(), reports.Select(r => r.Epoch).ToArray());

        using var cts = new CancellationTokenSource();
        var c = Small(50);
        c.Progress = new SyncProgress<TrainingProgress>(p => { if (p.Epoch == 2) cts.Cancel(); });
        c.CancellationToken = cts.Token;
        Assert.Throws<OperationCanceledException>(() => ml.MulticlassClassification.Trainers.Mlp(c).Fit(data));
    }

    [TestMethod]
    public void LearningRateSchedules()
    {
        var o = new MlpOptions { LearningRate = 1.0, Epochs = 10, LearningRateSchedule = LearningRateSchedule.Cosine };
        Assert.AreEqual(1.0, Allauzen.ML.Torch.TrainingLoop.LearningRateAt(o, 1), 1e-12);
        Assert.AreEqual(0.5, Allauzen.ML.Torch.TrainingLoop.LearningRateAt(o, 6), 1e-12);
        o.LearningRateSchedule = LearningRateSchedule.Step;
        o.StepSize = 3;
        o.StepGamma = 0.5;
        Assert.AreEqual(1.0, Allauzen.ML.Torch.TrainingLoop.LearningRateAt(o, 3), 1e-12);
        Assert.AreEqual(0.5, Allauzen.ML.Torch.TrainingLoop.LearningRateAt(o, 4), 1e-12);
        Assert.AreEqual(0.25, Allauzen.ML.Torch.TrainingLoop.LearningRateAt(o, 7), 1e-12);
    }

    [TestMethod]
    public void AllOptimizersAndActivationsTrain()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 300);
        foreach (var opt in Enum.GetValues<OptimizerKind>())
        {
            foreach (var act in Enum.GetValues<MlpActivation>())
            {
                var o = Small(8);
                o.Optimizer = opt;
                o.Activation = act;
                o.LearningRate = opt == OptimizerKind.Sgd ? 0.05 : 0.01;
                var t = ml.MulticlassClassification.Trainers.Mlp(o).Fit(data);
                var acc = ml.MulticlassClassification.Evaluate(t.Transform(data)).MicroAccuracy;
                Assert.IsGreaterThan(0.9, acc, $"{opt}/{act}: accuracy {acc}");
                var onnx = EstimatorContract.OnnxMaxDiff(ml, t, data, ["Score"]);
                Assert.IsLessThanOrEqualTo(1e-5, onnx, $"{opt}/{act}: ONNX parity");
            }
        }
    }

    [TestMethod]
    public void InvalidOptions_NameTheOption()
    {
        var ml = new MLContext();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { Epochs = 0 }));
        StringAssert.Contains(e.Message, "Epochs");
        e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [4, 0] }));
        StringAssert.Contains(e.Message, "HiddenSizes[1]");
        e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { Dropout = 1 }));
        StringAssert.Contains(e.Message, "Dropout");
        var a = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { EarlyStoppingPatience = 3 }));
        StringAssert.Contains(a.Message, "validation");
        var d = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { Device = "gpu" }).Fit(TestData.BlobsPrepared(ml, 10)));
        StringAssert.Contains(d.Message, "gpu");
    }

    public sealed class WideRow
    {
        [VectorType(5)]
        public float[] Features { get; set; } = [];

        [KeyType(4)]
        public uint Label { get; set; }
    }

    public sealed class BlobPrediction
    {
        public string PredictedLabel { get; set; } = "";

        public float[] Score { get; set; } = [];
    }
}

/// <summary>IProgress that reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
