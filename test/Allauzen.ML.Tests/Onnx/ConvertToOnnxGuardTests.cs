using Allauzen.ML.Foton;
using Allauzen.ML.Lipschitz;
using Allauzen.ML.Mlp;
using Allauzen.ML.Smoothing;
using Allauzen.ML.Tests.Smoothing;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Onnx;

/// <summary>
/// ML.NET's own <c>ConvertToOnnx</c> on a pipeline with an Allauzen part throws naming
/// <c>ExportToOnnx</c> (it used to return a graph without the network, taking Score and PredictedLabel as
/// inputs), while <c>ExportToOnnx</c> exports the same pipeline with parity.
/// </summary>
[TestClass]
public sealed class ConvertToOnnxGuardTests
{
    public static IEnumerable<object[]> ExportableTrainers =>
    [
        ["Mlp"],
        ["Foton"],
        ["LipschitzClassifier"],
    ];

    private static IEstimator<ITransformer> Trainer(MLContext ml, string component) => component switch
    {
        "Mlp" => ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [8], Epochs = 2, BatchSize = 16 }),
        "Foton" => ml.MulticlassClassification.Trainers.Foton(new FotonOptions { HiddenSizes = [8], Epochs = 2, BatchSize = 16 }),
        "LipschitzClassifier" => ml.MulticlassClassification.Trainers.LipschitzClassifier(
            new LipschitzClassifierOptions { Depth = 1, Width = 8, DenseWidth = 8, Epochs = 2, BatchSize = 16 }),
        _ => throw new ArgumentOutOfRangeException(nameof(component), component, null),
    };

    [TestMethod]
    [DynamicData(nameof(ExportableTrainers))]
    public void ConvertToOnnx_OnAPipelineWithAnExportableComponent_ThrowsNamingExportToOnnx_WhileExportToOnnxHasParity(string component)
    {
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromEnumerable(TestData.Blobs(90));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.NormalizeMinMax("Features"))
            .Append(Trainer(ml, component))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(raw);

        using var mlnet = new MemoryStream();
        var e = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ConvertToOnnx(model, raw, mlnet));
        StringAssert.Contains(e.Message, "ExportToOnnx");
        StringAssert.Contains(e.Message, component);
        Assert.AreEqual(0L, mlnet.Length, "nothing written");

        double diff = EstimatorContract.OnnxMaxDiff(ml, model, raw, ["Score"]);
        Assert.IsLessThanOrEqualTo(1e-5, diff, "ExportToOnnx parity through ONNX Runtime and ApplyOnnxModel");
    }

    [TestMethod]
    public void ConvertToOnnx_OnANonExportableComponent_ThrowsToo()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 8).Select(i => new TwoFeatures { Features = [i, -i] }));
        var certifier = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = RandomizedSmoothingTests.LinearModel(ml), SelectionSamples = 10, EstimationSamples = 20, Seed = 1,
        }).Fit(data);
        using var stream = new MemoryStream();
        var e = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ConvertToOnnx(certifier, data, stream));
        StringAssert.Contains(e.Message, "RandomizedSmoothing");
        StringAssert.Contains(e.Message, "no ONNX form");
    }

    private sealed class TwoFeatures
    {
        [Microsoft.ML.Data.VectorType(2)]
        public float[] Features { get; set; } = [];
    }
}
