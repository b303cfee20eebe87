using Allauzen.ML.Evaluation;
using Allauzen.ML.Lipschitz;
using Allauzen.ML.Mlp;
using Allauzen.ML.Plots;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Lipschitz;

[TestClass]
public sealed class LipschitzClassifierTests
{
    private static LipschitzClassifierOptions Dense(LipschitzArchitecture a, int epochs = 3) => new()
    {
        Architecture = a, Depth = 2, Width = 16, Epochs = epochs, BatchSize = 32, LearningRate = 1e-2, Seed = 1,
    };

    private static LipschitzClassifierOptions Conv(LipschitzArchitecture a, int epochs = 2) => new()
    {
        Architecture = a, Convolutional = true, ImageHeight = 8, ImageWidth = 8, ImageChannels = 1, Width = 4, Depth = 2,
        PoolSize = 2, DenseDepth = 1, DenseWidth = 16, Epochs = epochs, BatchSize = 32, LearningRate = 1e-2, Seed = 1,
    };

    [TestMethod]
    [DataRow(LipschitzArchitecture.Sll, false)]
    [DataRow(LipschitzArchitecture.Cpl, false)]
    [DataRow(LipschitzArchitecture.Aol, false)]
    [DataRow(LipschitzArchitecture.SpectralRescaling, false)]
    [DataRow(LipschitzArchitecture.Sll, true)]
    [DataRow(LipschitzArchitecture.Cpl, true)]
    [DataRow(LipschitzArchitecture.Aol, true)]
    [DataRow(LipschitzArchitecture.SpectralRescaling, true)]
    public void Contract_SchemaBadInputSaveLoadRowMapperOnnx(LipschitzArchitecture a, bool conv)
    {
        var ml = new MLContext(seed: 1);
        IDataView data;
        if (conv)
        {
            var (train, _) = TestData.DigitsPrepared(ml);
            data = ml.Data.Cache(ml.Data.TakeRows(train, 300));
        }
        else
        {
            data = TestData.BlobsPrepared(ml, 300);
        }
        var noFeatures = ml.Transforms.CopyColumns("Other", "Features").Append(ml.Transforms.DropColumns("Features")).Fit(data).Transform(data);
        var wrongSize = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 10).Select(i => new Mlp.MlpTests.WideRow { Features = new float[5], Label = 1 }));
        var report = EstimatorContract.Check(ml.MulticlassClassification.Trainers.LipschitzClassifier(conv ? Conv(a) : Dense(a)), data, data,
            ["Score", "PredictedLabel", "CertifiedRadius"], [(wrongSize, "Features", false), (noFeatures, "Features", true)]);
        Assert.IsLessThanOrEqualTo(1e-6, report.RowMapperMaxDiff, "row mapper vs batched Transform");
        Assert.IsLessThanOrEqualTo(1e-5, report.OnnxMaxDiff, "ONNX parity");
        var model = (LipschitzClassifierTransformer)report.Transformer;
        // Every block is ≤ 1 (+ float32 folding error); only the normalised last layer may exceed 1.
        foreach (var b in model.LayerBounds.Take(model.LayerBounds.Count - 1))
            Assert.IsLessThanOrEqualTo(1 + 1e-5, b);
        Assert.IsGreaterThan(0.0, model.LipschitzConstant);
    }

    [TestMethod]
    public void Digits_CertifiedRadiusIsSoundAndConsistent()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = TestData.DigitsPrepared(ml);
        var model = ml.MulticlassClassification.Trainers.LipschitzClassifier(new LipschitzClassifierOptions
        {
            Architecture = LipschitzArchitecture.Sll, Depth = 3, Width = 64, Epochs = 15, BatchSize = 32, LearningRate = 5e-3,
            Offset = 0.5, Seed = 1,
        }).Fit(train);
        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.EvaluateCertified(scored);
        Assert.IsGreaterThanOrEqualTo(0.85, metrics.Accuracy, metrics.ToTable());
        Assert.IsGreaterThan(0.3, metrics.At(36 / 255.0), metrics.ToTable());
        Assert.IsLessThanOrEqualTo(metrics.Accuracy, metrics.At(36 / 255.0));
        Assert.IsLessThanOrEqualTo(metrics.At(36 / 255.0), metrics.At(108 / 255.0));

        // The radius column equals (top1 − top2 logit)/(√2·L).
        var features = TestData.ReadColumn(test, "Features");
        var radii = TestData.ReadColumn(scored, "CertifiedRadius");
        double L = model.LipschitzConstant;
        var flat = features.SelectMany(r => r.Select(v => (float)v)).ToArray();
        var logits = model.PredictLogits(flat);
        int k = model.NumberOfClasses, n = model.FeatureCount;
        for (int i = 0; i < features.Length; i++)
        {
            var z = logits.AsSpan(i * k, k).ToArray().OrderDescending().ToArray();
            double expected = (z[0] - z[1]) / (Math.Sqrt(2) * L);
            Assert.AreEqual(expected, radii[i][0], 1e-4 * Math.Max(1, expected), $"row {i}");
        }

        // L bounds the empirical Lipschitz ratio of the logits, also under a gradient attack.
        double ratio = LayerTests.MaxRatio(x =>
        {
            var xs = x.contiguous().data<float>().ToArray();
            return torch.tensor(model.PredictLogits(xs), [x.shape[0], k]);
        }, [n], pairs: 2000, attackSteps: 0, scale: 0.5);
        Assert.IsLessThanOrEqualTo(L * (1 + 1e-5), ratio);

        // Soundness: moving a certified point by 0.99·radius along the gradient of its margin never changes the prediction.
        int checkedRows = 0;
        for (int i = 0; i < features.Length && checkedRows < 40; i++)
        {
            if (radii[i][0] <= 0.05)
                continue;
            checkedRows++;
            var x = features[i].Select(v => (float)v).ToArray();
            var z = logits.AsSpan(i * k, k).ToArray();
            int top = Array.IndexOf(z, z.Max());
            int second = Enumerable.Range(0, k).Where(c => c != top).MaxBy(c => z[c]);
            // Direction of steepest margin decrease, estimated by finite differences on the deployed network.
            var dir = new double[n];
            for (int j = 0; j < n; j++)
            {
                var xp = (float[])x.Clone();
                xp[j] += 1e-2f;
                var zp = model.PredictLogits(xp);
                dir[j] = -((zp[top] - zp[second]) - (z[top] - z[second])) / 1e-2;
            }
            double norm = Math.Sqrt(dir.Sum(d => d * d));
            var moved = x.Select((v, j) => (float)(v + 0.99 * radii[i][0] * dir[j] / norm)).ToArray();
            var zm = model.PredictLogits(moved);
            Assert.AreEqual(top, Array.IndexOf(zm, zm.Max()), $"row {i}: prediction changed inside the certified radius");
        }
        Assert.IsGreaterThan(10, checkedRows);
    }

    [TestMethod]
    public void BadOptions_NamedInTheError()
    {
        var ml = new MLContext(seed: 1);
        var e1 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.LipschitzClassifier(
            new LipschitzClassifierOptions { Convolutional = true, ImageWidth = 8 }));
        StringAssert.Contains(e1.Message, "ImageHeight");
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.LipschitzClassifier(
            new LipschitzClassifierOptions { Convolutional = true, ImageWidth = 8, ImageHeight = 8, KernelSize = 4 }));
        StringAssert.Contains(e2.Message, "KernelSize");
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.LipschitzClassifier(
            new LipschitzClassifierOptions { ImageWidth = 8, ImageHeight = 8 }));
        StringAssert.Contains(e3.Message, "Convolutional");
        var e4 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.LipschitzClassifier(
            new LipschitzClassifierOptions { Temperature = 0 }));
        StringAssert.Contains(e4.Message, "Temperature");
        // Image size inconsistent with the feature vector: the error names the options and the column.
        var data = TestData.BlobsPrepared(ml, 60);
        var o = Conv(LipschitzArchitecture.Sll);
        var e5 = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.LipschitzClassifier(o).Fit(data));
        StringAssert.Contains(e5.Message, "ImageHeight");
        StringAssert.Contains(e5.Message, "'Features'");
    }

    [TestMethod]
    public void InputsNormalisedDifferently_AreDetected()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = TestData.DigitsPrepared(ml);
        var model = ml.MulticlassClassification.Trainers.LipschitzClassifier(Dense(LipschitzArchitecture.Aol, 1)).Fit(train);
        model.CheckInputRange(test);
        Assert.AreEqual(0f, model.TrainingFeatureMin);
        Assert.AreEqual(1f, model.TrainingFeatureMax);
        var raw = TestData.Digits(ml).Test; // 0..16 pixel values instead of [0, 1]
        var rawPrepared = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var e = Assert.Throws<InvalidOperationException>(() => model.CheckInputRange(rawPrepared));
        StringAssert.Contains(e.Message, "'Features'");
        StringAssert.Contains(e.Message, "normalised differently");
    }

    public sealed class ScoredRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [KeyType(3)]
        public uint PredictedLabel { get; set; }

        public float CertifiedRadius { get; set; }
    }

    [TestMethod]
    public void Evaluator_HandMadeTable_CountsCorrectAndCertifiedOnly()
    {
        var ml = new MLContext(seed: 1);
        // LoadFromEnumerable stores keys 0-based (value v becomes key v + 1).
        ScoredRow R(uint l, uint p, float r) => new() { Label = l - 1, PredictedLabel = p - 1, CertifiedRadius = r };
        var rows = new[]
        {
            R(1, 1, 0.5f),  // correct, certified up to 0.5
            R(2, 2, 0.2f),  // correct, certified at 36/255 = 0.141 only
            R(3, 3, 0f),    // correct, tie: radius 0, certified at ε = 0 only
            R(1, 2, 0.9f),  // wrong: never counts, however large its radius
            R(2, 2, 0.25f), // correct, radius exactly ε = 0.25: certified at 0.25 (radius ≥ ε)
        };
        var m = ml.MulticlassClassification.EvaluateCertified(ml.Data.LoadFromEnumerable(rows), radii: [0, 36 / 255.0, 0.25, 1.0]);
        Assert.AreEqual(5, m.Rows);
        Assert.AreEqual(0.8, m.Accuracy, 1e-12);
        Assert.AreEqual(0.8, m.At(0), 1e-12, "at ε = 0 every correct row is certified");
        Assert.AreEqual(0.6, m.At(36 / 255.0), 1e-12);
        Assert.AreEqual(0.4, m.At(0.25), 1e-12);
        Assert.AreEqual(0.0, m.At(1.0), 1e-12);
        Assert.AreEqual(0.0, m.AbstainRate);
        Assert.IsTrue(double.IsNaN(m.SaturationRadius));
        StringAssert.Contains(m.ToTable(), "| 36 | 0.1412 | 60.00% |");
        var path = Path.Combine(Path.GetTempPath(), $"cert-{Guid.NewGuid():N}.png");
        try
        {
            m.SavePlot(path);
            var bytes = File.ReadAllBytes(path);
            CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes.Take(4).ToArray());
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.EvaluateCertified(ml.Data.LoadFromEnumerable(rows), radii: [-1]));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.EvaluateCertified(ml.Data.LoadFromEnumerable(rows), "Radius"));
        StringAssert.Contains(e.Message, "'Radius'");
    }

    [TestMethod]
    public void RadiusRules_HandMadeHead_GlobalPairwiseClassWise()
    {
        // Identity body (L_body = 1) and the head w0 = (1, 0), w1 = (0, 1), w2 = (−1, 0): ‖W‖ = √2, so the global L is √2.
        var env = new MLContext(seed: 1);
        float[] head = [1, 0, 0, 1, -1, 0];
        LipschitzClassifierTransformer Make(LipschitzRadiusRule rule)
        {
            var net = new PlainNetwork(
            [
                new PlainLayer(PlainKind.Normalize, [2], 1.0, false) { Tensors = { ["mean"] = (new float[2], [2L]) } },
                new PlainLayer(PlainKind.Dense, [3, 2], 0, false) { Tensors = { ["W"] = (head, [3L, 2L]), ["b"] = (new float[3], [3L]) } },
            ]);
            var info = new LipschitzModelInfo(LipschitzArchitecture.Sll, false, LipschitzInputNormalization.None, -10, 10, rule);
            return new LipschitzClassifierTransformer(env, net, info, "Features", 2, Allauzen.ML.Core.LabelNames.Default(3), "Score", "PredictedLabel");
        }
        float Radius(LipschitzClassifierTransformer t, float x0, float x1)
        {
            var p = new float[3];
            t.Forward([x0, x1], 1, p);
            var r = new float[1];
            t.ComputeExtraColumns(p, r);
            return r[0];
        }
        using var global = Make(LipschitzRadiusRule.Global);
        using var pairwise = Make(LipschitzRadiusRule.LastLayerPairwise);
        using var classWise = Make(LipschitzRadiusRule.ClassWise);
        Assert.AreEqual(Math.Sqrt(2), global.LipschitzConstant, 1e-9);
        Assert.AreEqual(LipschitzRadiusRule.LastLayerPairwise, pairwise.RadiusRule);
        // x = (2, 0.5): logits (2, 0.5, −2). Global: 1.5/(√2·√2) = 0.75. Pairwise: min(1.5/‖w0 − w1‖, 4/‖w0 − w2‖) = 1.5/√2.
        // Class-wise: 1.5/(2·1) = 0.75.
        Assert.AreEqual(0.75, Radius(global, 2, 0.5f), 1e-5);
        Assert.AreEqual(1.5 / Math.Sqrt(2), Radius(pairwise, 2, 0.5f), 1e-5);
        Assert.AreEqual(0.75, Radius(classWise, 2, 0.5f), 1e-5);
        // The pairwise radius is exact for a linear model: moving along (w1 − w0)/√2 flips the prediction just beyond it.
        double r = Radius(pairwise, 2, 0.5f);
        float Step(double scale) => (float)(scale * r / Math.Sqrt(2));
        var probs = new float[3];
        pairwise.Forward([2 - Step(0.999), 0.5f + Step(0.999)], 1, probs);
        Assert.IsGreaterThan(probs[1], probs[0], "inside the radius the prediction holds");
        pairwise.Forward([2 - Step(1.001), 0.5f + Step(1.001)], 1, probs);
        Assert.IsLessThan(probs[1], probs[0], "just beyond it, it flips");
        // A tie certifies nothing under every rule.
        Assert.AreEqual(0f, Radius(pairwise, 1, 1));
        Assert.AreEqual(0f, Radius(global, 1, 1));
    }

    [TestMethod]
    public void RadiusRules_TrainedPairwise_NeverBelowGlobal_SaveLoadAndOnnx()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 300);
        var o = Dense(LipschitzArchitecture.Sll);
        o.RadiusRule = LipschitzRadiusRule.LastLayerPairwise;
        var report = EstimatorContract.Check(ml.MulticlassClassification.Trainers.LipschitzClassifier(o), data, data,
            ["Score", "PredictedLabel", "CertifiedRadius"], []);
        Assert.IsLessThanOrEqualTo(1e-5, report.OnnxMaxDiff, "ONNX parity with the pairwise rule");
        var model = (LipschitzClassifierTransformer)report.Transformer;
        Assert.AreEqual(LipschitzRadiusRule.LastLayerPairwise, model.RadiusRule);
        var radii = TestData.ReadColumn(model.Transform(data), "CertifiedRadius").Select(r => r[0]).ToArray();
        var x = TestData.ReadColumn(data, "Features");
        var logits = model.PredictLogits(x.SelectMany(v => v.Select(f => (float)f)).ToArray());
        int k = logits.Length / x.Length, better = 0;
        for (int i = 0; i < x.Length; i++)
        {
            var z = logits.Skip(i * k).Take(k).OrderDescending().ToArray();
            double global = (z[0] - z[1]) / (Math.Sqrt(2) * model.LipschitzConstant);
            Assert.IsGreaterThanOrEqualTo(global * (1 - 1e-4) - 1e-6, radii[i], $"row {i}: pairwise ≥ global");
            if (radii[i] > global * 1.01)
                better++;
        }
        Assert.IsGreaterThan(0, better, "the pairwise rule certifies larger radii on some rows");
        // The same weights with the global rule: (top1 − top2)/(√2·L).
        using var globalRule = model.WithRadiusRule(LipschitzRadiusRule.Global);
        Assert.AreEqual(LipschitzRadiusRule.Global, globalRule.RadiusRule);
        var globalRadii = TestData.ReadColumn(globalRule.Transform(data), "CertifiedRadius").Select(r => r[0]).ToArray();
        for (int i = 0; i < x.Length; i++)
        {
            var z = logits.Skip(i * k).Take(k).OrderDescending().ToArray();
            Assert.AreEqual((z[0] - z[1]) / (Math.Sqrt(2) * model.LipschitzConstant), globalRadii[i], 1e-4, $"row {i}: global rule");
        }
    }

    [TestMethod]
    public void Mlp_LipschitzBoundBoundsLogitsAndPenaltyLowersIt()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 300);
        MlpTransformer Fit(double penalty) => ml.MulticlassClassification.Trainers.Mlp(new MlpOptions
        {
            HiddenSizes = [32], Epochs = 10, BatchSize = 16, LearningRate = 1e-2, Seed = 3, LipschitzPenalty = penalty,
        }).Fit(data);
        using var plain = Fit(0);
        using var regularised = Fit(0.05);
        double l0 = plain.LipschitzBound(), l1 = regularised.LipschitzBound();
        Assert.IsLessThan(l0, l1, $"penalty lowers the bound ({l1} vs {l0})");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { LipschitzPenalty = -1 }));
        // The bound holds for the logits (log-probabilities differ from logits by a per-row constant, which cancels in pairs
        // only after centring: compare centred log-probabilities, whose map is ≤ L·√(1) since centring is a projection).
        double ratio = LayerTests.MaxRatio(x =>
        {
            var p = torch.tensor(plain.PredictProbabilities(x.contiguous().data<float>().ToArray()), [x.shape[0], 3]).log();
            return p - p.mean([1], keepdim: true);
        }, [8], pairs: 2000, attackSteps: 0, scale: 2);
        Assert.IsLessThanOrEqualTo(l0 * (1 + 1e-5), ratio);
    }
}
