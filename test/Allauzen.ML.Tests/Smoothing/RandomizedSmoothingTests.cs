using Allauzen.ML.Core;
using Allauzen.ML.Mlp;
using Allauzen.ML.Smoothing;
using Allauzen.ML.Tests.Mlp;
using Allauzen.ML.Tests.TestSupport;
using Allauzen.ML.Torch;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Allauzen.ML.Tests.Smoothing;

[TestClass]
public sealed class RandomizedSmoothingTests
{
    public sealed class Row
    {
        [VectorType(2)]
        public float[] Features { get; set; } = [];

        [KeyType(2)]
        public uint Label { get; set; }
    }

    public sealed class Row3
    {
        [VectorType(3)]
        public float[] Features { get; set; } = [];
    }

    /// <summary>The binary linear toy of the reference runs: logits (x0, −x0), so the exact smoothed radius is |x0|.</summary>
    internal static MlpTransformer LinearModel(MLContext ml)
    {
        TorchRuntime.EnsureInitialized();
        var net = new MlpNetwork(new MlpArchitecture(2, [], 2, MlpActivation.Relu, 0));
        using (torch.no_grad())
        {
            var layer = net.LinearLayers().Single().Layer;
            layer.weight!.copy_(torch.tensor(new float[] { 1, 0, -1, 0 }, [2, 2]));
            layer.bias!.zero_();
        }
        return new MlpTransformer(ml, net, "Features", LabelNames.Default(2), "Score", "PredictedLabel");
    }

    private static IDataView Points(MLContext ml, int rows, float x0, float x1 = 0.1f) =>
        ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(_ => new Row { Features = [x0, x1], Label = x0 > 0 ? 1u : 2u }));

    private static (uint[] Pred, double[] Radius, bool[] Abstained, ulong[] Seeds) Read(IDataView v) =>
        (v.GetColumn<uint>(SmoothingColumnNames.PredictedLabel).ToArray(), v.GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray(),
         v.GetColumn<bool>(SmoothingColumnNames.Abstained).ToArray(), v.GetColumn<ulong>(SmoothingColumnNames.NoiseSeed).ToArray());

    [TestMethod]
    [DataRow(SmoothingMethod.Cohen)]
    [DataRow(SmoothingMethod.BridgingCpm)]
    [DataRow(SmoothingMethod.LvmSound)]
    public void SoundOnTheBinaryLinearModelOver400Seeds(SmoothingMethod method)
    {
        // 400 rows = 400 independent seeds (each row's noise is seeded from (Seed, row id)).
        var ml = new MLContext(seed: 1);
        const double alpha = 0.05, sigma = 0.25, x0 = 0.3;
        var data = Points(ml, 400, (float)x0);
        var options = new RandomizedSmoothingOptions
        {
            BaseModel = LinearModel(ml), Sigma = sigma, SelectionSamples = 50, EstimationSamples = 500, Alpha = alpha, Method = method, Seed = 7,
            LvmMaps = method == SmoothingMethod.LvmSound ? [new SimplexMap(SimplexMapKind.Softmax, 1), new SimplexMap(SimplexMapKind.Sparsemax, 2)] : null,
        };
        var (pred, radius, abstained, seeds) = Read(ml.Transforms.CertifyRandomizedSmoothing(options).Fit(data).Transform(data));
        int failures = 0;
        for (int i = 0; i < pred.Length; i++)
        {
            if (!abstained[i] && (pred[i] != 1 || radius[i] > x0))
                failures++;
        }
        double bound = alpha + 3 * Math.Sqrt(alpha * (1 - alpha) / pred.Length);
        Assert.IsLessThanOrEqualTo(bound, (double)failures / pred.Length, $"{method}: {failures} of {pred.Length} certificates exceed the exact radius");
        Assert.AreEqual(pred.Length, seeds.Distinct().Count(), "every row has its own noise seed");
        if (method == SmoothingMethod.Cohen)
        {
            // Tightness: the mean radius is close to σΦ⁻¹(CP_lo(E[count])) with E[count] = n·Φ(x0/σ).
            double expectedCount = 500 * Normal.Cdf(x0 / sigma);
            double typical = sigma * Normal.InverseCdf(ConfidenceBounds.ClopperPearsonLower((long)Math.Round(expectedCount), 500, alpha));
            Assert.AreEqual(typical, radius.Average(), 0.01, "mean Cohen radius");
        }
    }

    [TestMethod]
    public void ResultsDoNotDependOnHowRowsAreBatched()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 13).Select(i => new Row { Features = [0.05f * (i - 6), 0.2f], Label = 1 }));
        var options = new RandomizedSmoothingOptions { BaseModel = LinearModel(ml), SelectionSamples = 20, EstimationSamples = 300, Alpha = 0.01, Seed = 3, BatchSize = 128 };
        var t = ml.Transforms.CertifyRandomizedSmoothing(options).Fit(data);
        var reference = Read(t.Transform(data));
        foreach (int rowsPerPass in new[] { 1, 5, 256 })
        {
            t.ScoringBatchSize = rowsPerPass;
            var other = Read(t.Transform(data));
            CollectionAssert.AreEqual(reference.Radius, other.Radius, $"radii with {rowsPerPass} rows per pass");
            CollectionAssert.AreEqual(reference.Seeds, other.Seeds);
        }
        // another seed gives other noise
        options.Seed = 4;
        var reseeded = Read(ml.Transforms.CertifyRandomizedSmoothing(options).Fit(data).Transform(data));
        CollectionAssert.AreNotEqual(reference.Seeds, reseeded.Seeds);
    }

    [TestMethod]
    public void EstimatorContractHolds()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(i => new Row { Features = [0.2f * (i - 2), 0.1f], Label = 1 }));
        var bad = ml.Data.LoadFromEnumerable(new[] { new Row3 { Features = [1, 2, 3] } });
        var estimator = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = LinearModel(ml), SelectionSamples = 10, EstimationSamples = 200, Alpha = 0.01, Method = SmoothingMethod.BridgingCpm,
        });
        var report = EstimatorContract.Check(estimator, data, data,
            [SmoothingColumnNames.PredictedLabel, SmoothingColumnNames.CertifiedRadius, SmoothingColumnNames.Abstained],
            [(bad, "Features", false), (ml.Transforms.CopyColumns("Other", "Features").Append(ml.Transforms.DropColumns("Features")).Fit(data).Transform(data), "Features", true)],
            onnx: false);
        Assert.Throws<ArgumentOutOfRangeException>(() => estimator.Fit(bad));
        Assert.AreEqual(0.0, report.RowMapperMaxDiff, "PredictionEngine path equals the batched Transform");
    }

    [TestMethod]
    public void OnnxBaseModelGivesTheSameCertificatesAsTheTorchModel()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 8).Select(i => new Row { Features = [0.1f * (i - 3) + 0.05f, 0.3f], Label = 1 }));
        var mlp = LinearModel(ml);
        string path = Path.Combine(Path.GetTempPath(), $"rs-linear-{Guid.NewGuid():N}.onnx");
        try
        {
            var featuresOnly = ml.Transforms.SelectColumns("Features").Fit(data).Transform(data);
            ml.Model.ExportToOnnx(mlp, featuresOnly, path);
            var common = new RandomizedSmoothingOptions { SelectionSamples = 20, EstimationSamples = 400, Alpha = 0.01, Seed = 5 };
            common.BaseModel = mlp;
            var viaTorch = Read(ml.Transforms.CertifyRandomizedSmoothing(common).Fit(data).Transform(data));
            common.BaseModel = null;
            common.BaseModelOnnxPath = path;
            common.OnnxInputName = "Features";
            common.OnnxOutputName = "Score.output";
            common.BaseModelOutputsProbabilities = true;
            var onnxTransformer = ml.Transforms.CertifyRandomizedSmoothing(common).Fit(data);
            var viaOnnx = Read(onnxTransformer.Transform(data));
            CollectionAssert.AreEqual(viaTorch.Pred, viaOnnx.Pred);
            for (int i = 0; i < viaTorch.Radius.Length; i++)
                Assert.AreEqual(viaTorch.Radius[i], viaOnnx.Radius[i], 1e-12, $"row {i}");

            // the ONNX bytes are embedded: save, delete the file, load, same certificates
            var ms = new MemoryStream();
            ml.Model.Save(onnxTransformer, data.Schema, ms);
            File.Delete(path);
            ms.Position = 0;
            var ml2 = new MLContext(seed: 9);
            ml2.UseAllauzen();
            var reloaded = Read(ml2.Model.Load(ms, out _).Transform(data));
            CollectionAssert.AreEqual(viaOnnx.Radius, reloaded.Radius);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void MismatchedOnnxModelsAreRejectedWithTensorNameAndShapes()
    {
        var ml = new MLContext(seed: 1);
        var data = Points(ml, 2, 0.3f);
        string path = Path.Combine(Path.GetTempPath(), $"rs-bad-{Guid.NewGuid():N}.onnx");
        try
        {
            ml.Model.ExportToOnnx(LinearModel(ml), ml.Transforms.SelectColumns("Features").Fit(data).Transform(data), path);
            var three = ml.Data.LoadFromEnumerable(new[] { new Row3 { Features = [1, 2, 3] } });
            var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
                ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions { BaseModelOnnxPath = path, OnnxInputName = "Features", OnnxOutputName = "Score.output" }).Fit(three));
            StringAssert.Contains(e.Message, "'Features'");
            StringAssert.Contains(e.Message, "[N, 3]");
            StringAssert.Contains(e.Message, "[N, 2]");
            var e2 = Assert.Throws<ArgumentOutOfRangeException>(() =>
                ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions { BaseModelOnnxPath = path, OnnxInputName = "Features", OnnxOutputName = "PredictedLabel.output" }).Fit(data));
            StringAssert.Contains(e2.Message, "'PredictedLabel.output'");
            StringAssert.Contains(e2.Message, "expected float [N, K]");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void InvalidOptionsNameTheOption()
    {
        var ml = new MLContext(seed: 1);
        var model = LinearModel(ml);
        (Action<RandomizedSmoothingOptions> Set, string Name)[] cases =
        [
            (o => o.Sigma = 0, "Sigma"), (o => o.Sigma = -1, "Sigma"), (o => o.Sigma = double.NaN, "Sigma"),
            (o => o.Alpha = 0, "Alpha"), (o => o.Alpha = 1, "Alpha"), (o => o.Alpha = 1.5, "Alpha"),
            (o => o.SelectionSamples = 0, "SelectionSamples"), (o => o.EstimationSamples = 0, "EstimationSamples"),
            (o => o.BatchSize = 0, "BatchSize"), (o => o.BaseModel = null, "BaseModelOnnxPath"),
        ];
        foreach (var (set, name) in cases)
        {
            var o = new RandomizedSmoothingOptions { BaseModel = model };
            set(o);
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.CertifyRandomizedSmoothing(o));
            Assert.AreEqual(name, e.ParamName);
        }
    }

    [TestMethod]
    public void TooFewSamplesWarnWithTheCap()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        var data = Points(ml, 3, 1.5f);
        var t = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions { BaseModel = LinearModel(ml), EstimationSamples = 9, Alpha = 0.001 }).Fit(data);
        Assert.IsTrue(messages.Any(m => m.Contains("too small to ever certify") && m.Contains("n ≥ 10")), string.Join("\n", messages));
        Assert.IsTrue(Read(t.Transform(data)).Abstained.All(a => a), "every row abstains below the cap");
        Assert.IsLessThanOrEqualTo(0.0, t.SaturationRadius);
    }

    [TestMethod]
    public void HundredThousandSamplesSaturateAtTheCap()
    {
        var ml = new MLContext(seed: 1);
        var data = Points(ml, 1, 1.5f, 0);
        var t = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions { BaseModel = LinearModel(ml), EstimationSamples = 100_000, Sigma = 0.25 }).Fit(data);
        double r = Read(t.Transform(data)).Radius[0];
        Assert.AreEqual(0.9528, t.SaturationRadius, 1e-4, "σΦ⁻¹(α^(1/n)) at n = 1e5, α = 1e-3");
        Assert.IsLessThanOrEqualTo(t.SaturationRadius, r);
        Assert.IsGreaterThan(0.85, r);
    }

    [TestMethod]
    [DataRow(SmoothingMethod.Cohen)]
    [DataRow(SmoothingMethod.BridgingCpm)]
    [DataRow(SmoothingMethod.LvmSound)]
    [DataRow(SmoothingMethod.LvmAsPublished)]
    public void SampleOnceThenCertifyGivesTheSameCertificates(SmoothingMethod method)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 6).Select(i => new Row { Features = [0.1f * i - 0.2f, 0.1f], Label = 1 }));
        var options = new RandomizedSmoothingOptions
        {
            BaseModel = LinearModel(ml), SelectionSamples = 30, EstimationSamples = 300, Alpha = 0.01, Method = method, Seed = 11,
            LvmMaps = method == SmoothingMethod.LvmAsPublished ? SimplexMap.PublishedGrid.Take(10).ToArray() : null,
        };
        var direct = Read(ml.Transforms.CertifyRandomizedSmoothing(options).Fit(data).Transform(data));
        var sampled = ml.Data.Cache(ml.Transforms.SampleRandomizedSmoothing(options).Fit(data).Transform(data));
        var certifier = ml.Transforms.CertifySmoothingStatistics(new SmoothingCertifierOptions { Method = method, Alpha = 0.01, Sigma = options.Sigma });
        var certified = certifier.Fit(sampled).Transform(sampled);
        CollectionAssert.AreEqual(direct.Pred, certified.GetColumn<uint>(SmoothingColumnNames.PredictedLabel).ToArray());
        var radii = certified.GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray();
        for (int i = 0; i < radii.Length; i++)
            Assert.AreEqual(direct.Radius[i], radii[i], 1e-12, $"row {i}");
        // re-run with another α at no sampling cost: a smaller α never gives a larger radius
        var strict = ml.Transforms.CertifySmoothingStatistics(new SmoothingCertifierOptions { Method = method, Alpha = 0.001, Sigma = options.Sigma })
            .Fit(sampled).Transform(sampled).GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray();
        for (int i = 0; i < radii.Length; i++)
            Assert.IsLessThanOrEqualTo(radii[i] + 1e-12, strict[i]);
    }

    [TestMethod]
    public void ProgressAndCancellation()
    {
        var ml = new MLContext(seed: 1);
        var data = Points(ml, 4, 0.3f);
        var reports = new List<SmoothingProgress>();
        var t = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = LinearModel(ml), EstimationSamples = 2000, BatchSize = 500, Progress = new SyncProgress<SmoothingProgress>(reports.Add),
        }).Fit(data);
        _ = Read(t.Transform(data));
        Assert.IsNotEmpty(reports);
        Assert.AreEqual(0L, reports[^1].Samples % (4 * 2100L), "whole passes of 4 rows × (n0 + n) samples");
        Assert.IsGreaterThanOrEqualTo(4 * 2100L, reports[^1].Samples);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        t.CancellationToken = cts.Token;
        Assert.Throws<OperationCanceledException>(() => Read(t.Transform(data)));
    }
}
