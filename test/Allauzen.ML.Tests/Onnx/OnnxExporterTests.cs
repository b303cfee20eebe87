using Allauzen.ML.Core;
using Allauzen.ML.Onnx;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Allauzen.ML.Tests.Onnx;

[TestClass]
public sealed class OnnxExporterTests
{
    private const int FeatureCount = 4;
    private const double Tolerance = 1e-5;
    private static readonly string[] ClassNames = ["setosa", "versicolor", "virginica"];

    public sealed class IrisRow
    {
        [VectorType(FeatureCount)]
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";
    }

    public sealed class Extra
    {
        public float Constant { get; set; }
    }

    public sealed class Doubled
    {
        [VectorType(FeatureCount)]
        public float[] Features { get; set; } = [];
    }

    /// <summary>Iris-like data: three Gaussian clusters in 4-D around the real Iris class means.</summary>
    private static List<IrisRow> MakeIris(int perClass, int seed)
    {
        float[][] means = [[5.0f, 3.4f, 1.5f, 0.2f], [5.9f, 2.8f, 4.3f, 1.3f], [6.6f, 3.0f, 5.6f, 2.0f]];
        float[] sd = [0.4f, 0.35f, 0.45f, 0.2f];
        var rng = new Random(seed);
        var rows = new List<IrisRow>();
        for (int i = 0; i < perClass; i++)
        {
            for (int c = 0; c < 3; c++)
            {
                var f = new float[FeatureCount];
                for (int j = 0; j < FeatureCount; j++)
                {
                    double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                    f[j] = means[c][j] + (sd[j] * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2)));
                }
                rows.Add(new IrisRow { Features = f, Label = ClassNames[c] });
            }
        }
        return rows;
    }

    private static (MLContext Ml, IDataView Train, IDataView Test, List<IrisRow> TestRows) Data()
    {
        var ml = new MLContext(seed: 1);
        var testRows = MakeIris(10, seed: 8);
        return (ml, ml.Data.LoadFromEnumerable(MakeIris(50, seed: 7)), ml.Data.LoadFromEnumerable(testRows), testRows);
    }

    private static (float[] W, float[] B) AffineParameters()
    {
        // 3 × 4, deliberately mixing the features so that a wrong wiring changes the result.
        float[] w = [0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 0.1f, 0.3f, 1.5f, 1.0f, 1.0f, -1.0f, -0.5f];
        float[] b = [0.1f, -0.2f, 0.3f];
        return (w, b);
    }

    private static byte[] Export(MLContext ml, ITransformer model, IDataView sample, int opset = 12)
    {
        using var ms = new MemoryStream();
        ml.Model.ExportToOnnx(model, sample, opset, ms);
        Assert.IsGreaterThan(0L, ms.Length);
        return ms.ToArray();
    }

    private static Dictionary<string, float[]> RunOrt(byte[] onnx, List<IrisRow> rows, out InferenceSession session)
    {
        session = new InferenceSession(onnx);
        int n = rows.Count;
        var features = rows.SelectMany(r => r.Features).ToArray();
        var inputs = new List<NamedOnnxValue>();
        foreach (var name in session.InputMetadata.Keys)
        {
            inputs.Add(name switch
            {
                "Features" => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(features, [n, FeatureCount])),
                "Label" => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<string>(rows.Select(r => r.Label).ToArray(), [n, 1])),
                _ => throw new AssertFailedException($"Unexpected graph input '{name}'."),
            });
        }
        using var results = session.Run(inputs);
        var outputs = new Dictionary<string, float[]>();
        foreach (var r in results)
        {
            outputs[r.Name] = r.ElementType switch
            {
                TensorElementType.Float => r.AsTensor<float>().ToArray(),
                TensorElementType.UInt32 => r.AsTensor<uint>().ToArray().Select(v => (float)v).ToArray(),
                TensorElementType.Int64 => r.AsTensor<long>().ToArray().Select(v => (float)v).ToArray(),
                _ => [],
            };
        }
        return outputs;
    }

    private static float[] VectorColumn(IDataView view, string column) =>
        view.GetColumn<VBuffer<float>>(column).SelectMany(v => v.DenseValues()).ToArray();

    private static float[] KeyColumn(IDataView view, string column) =>
        view.GetColumn<uint>(column).Select(v => (float)v).ToArray();

    private static double MaxDiff(float[] expected, float[] actual)
    {
        Assert.HasCount(expected.Length, actual);
        return expected.Zip(actual, (e, a) => Math.Abs((double)e - a)).Max();
    }

    private static IDataView ApplyOnnx(MLContext ml, byte[] onnx, string[] outputs, string[] inputs, IDataView data)
    {
        using var stream = new MemoryStream(onnx);
        var estimator = ml.Transforms.ApplyOnnxModel(outputs, inputs, stream);
        return estimator.Fit(data).Transform(data);
    }

    [TestMethod]
    public void PureNativeChainMatchesTransformInOrtAndApplyOnnxModel()
    {
        var (ml, train, test, testRows) = Data();
        var pipeline = ml.Transforms.NormalizeMinMax("Features")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy());
        var model = pipeline.Fit(train);
        var expected = model.Transform(test);
        var expectedScore = VectorColumn(expected, "Score");
        var expectedLabel = KeyColumn(expected, "PredictedLabel");

        var onnx = Export(ml, model, train);
        var ort = RunOrt(onnx, testRows, out var session);
        using (session)
        {
            CollectionAssert.AreEquivalent(new[] { "Features", "Label" }, session.InputMetadata.Keys.ToArray());
        }
        double scoreDiff = MaxDiff(expectedScore, ort["Score.output"]);
        Console.WriteLine($"native chain: max |ORT - Transform| Score = {scoreDiff:E2}");
        Assert.IsLessThanOrEqualTo(Tolerance, scoreDiff);
        CollectionAssert.AreEqual(expectedLabel, ort["PredictedLabel.output"]);
        Assert.IsLessThanOrEqualTo(Tolerance, MaxDiff(VectorColumn(expected, "Features"), ort["Features.output"]));
        // Sanity: the classifier is not trivial, so equality above means something.
        Assert.IsGreaterThan(0.8, expectedLabel.Zip(testRows, (p, r) => ClassNames[(int)p - 1] == r.Label ? 1.0 : 0.0).Average());

        var applied = ApplyOnnx(ml, onnx, ["Score.output", "PredictedLabel.output"], ["Features", "Label"], test);
        double applyDiff = MaxDiff(expectedScore, VectorColumn(applied, "Score"));
        Console.WriteLine($"native chain: max |ApplyOnnxModel - Transform| Score = {applyDiff:E2}");
        Assert.IsLessThanOrEqualTo(Tolerance, applyDiff);
        var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
        applied.Schema["Score"].GetSlotNames(ref slotNames);
        CollectionAssert.AreEqual(ClassNames, slotNames.DenseValues().Select(s => s.ToString()).ToArray());
    }

    private static (ITransformer Model, TestAffineTransformer Affine) FitSandwich(MLContext ml, IDataView train)
    {
        var normalizer = ml.Transforms.NormalizeMinMax("Features").Fit(train);
        var (w, b) = AffineParameters();
        var affine = new TestAffineTransformer(ml, "Features", "Affine", w, b);
        var afterAffine = affine.Transform(normalizer.Transform(train));
        var tail = ml.Transforms.Concatenate("Combined", "Features", "Affine")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(featureColumnName: "Combined"))
            .Fit(afterAffine);
        // A nested chain on purpose: the exporter must flatten it.
        return (new TransformerChain<ITransformer>(normalizer, affine, tail), affine);
    }

    [TestMethod]
    public void AllauzenTransformerBetweenNativePartsMatchesInOrtAndApplyOnnxModel()
    {
        var (ml, train, test, testRows) = Data();
        var (model, affine) = FitSandwich(ml, train);
        var expected = model.Transform(test);
        var expectedScore = VectorColumn(expected, "Score");
        var expectedAffine = VectorColumn(expected, "Affine");

        // The Affine column really is W·normalized + b (the test transformer is itself correct).
        var normalized = VectorColumn(expected, "Features");
        var manual = Enumerable.Range(0, testRows.Count).SelectMany(r => affine.Apply(normalized.AsSpan(r * FeatureCount, FeatureCount).ToArray())).ToArray();
        Assert.IsLessThanOrEqualTo(1e-6, MaxDiff(manual, expectedAffine));

        var onnx = Export(ml, model, train);
        var ort = RunOrt(onnx, testRows, out var session);
        session.Dispose();
        double affineDiff = MaxDiff(expectedAffine, ort["Affine.output"]);
        double scoreDiff = MaxDiff(expectedScore, ort["Score.output"]);
        Console.WriteLine($"sandwich: max |ORT - Transform| Affine = {affineDiff:E2}, Score = {scoreDiff:E2}");
        Assert.IsLessThanOrEqualTo(Tolerance, affineDiff);
        Assert.IsLessThanOrEqualTo(Tolerance, scoreDiff);
        Assert.IsLessThanOrEqualTo(Tolerance, MaxDiff(VectorColumn(expected, "Combined"), ort["Combined.output"]));
        CollectionAssert.AreEqual(KeyColumn(expected, "PredictedLabel"), ort["PredictedLabel.output"]);

        var applied = ApplyOnnx(ml, onnx, ["Score.output", "Affine.output"], ["Features", "Label"], test);
        double applyScore = MaxDiff(expectedScore, VectorColumn(applied, "Score"));
        double applyAffine = MaxDiff(expectedAffine, VectorColumn(applied, "Affine"));
        Console.WriteLine($"sandwich: max |ApplyOnnxModel - Transform| Affine = {applyAffine:E2}, Score = {applyScore:E2}");
        Assert.IsLessThanOrEqualTo(Tolerance, applyScore);
        Assert.IsLessThanOrEqualTo(Tolerance, applyAffine);
        var slotNames = default(VBuffer<ReadOnlyMemory<char>>);
        applied.Schema["Affine"].GetSlotNames(ref slotNames);
        CollectionAssert.AreEqual(new[] { "a0", "a1", "a2" }, slotNames.DenseValues().Select(s => s.ToString()).ToArray());
    }

    [TestMethod]
    public void GraphInputsAndOutputsFollowMlNetConventions()
    {
        var (ml, train, _, _) = Data();
        var (model, _) = FitSandwich(ml, train);
        var graph = global::Onnx.ModelProto.Parser.ParseFrom(Export(ml, model, train));

        CollectionAssert.AreEqual(new[] { "Features", "Label" }, graph.Graph.Input.Select(i => i.Name).ToArray());
        var outputs = graph.Graph.Output.ToDictionary(o => o.Name);
        foreach (var column in new[] { "Features", "Label", "Affine", "Combined", "Score", "PredictedLabel" })
            Assert.IsTrue(outputs.ContainsKey(column + ".output"), $"missing {column}.output; outputs: {string.Join(", ", outputs.Keys)}");
        Assert.IsTrue(outputs.ContainsKey("mlnet.Score.unusedOutput"));

        long[] Dims(string name) => outputs[name].Type.TensorType.Shape.Dim.Select(d => d.DimParam.Length > 0 ? -1 : d.DimValue).ToArray();
        int ElemType(string name) => outputs[name].Type.TensorType.ElemType;
        CollectionAssert.AreEqual(new long[] { -1, 3 }, Dims("Affine.output"));
        CollectionAssert.AreEqual(new long[] { -1, 7 }, Dims("Combined.output"));
        CollectionAssert.AreEqual(new long[] { -1, 1 }, Dims("PredictedLabel.output"));
        Assert.AreEqual((int)OnnxElementType.UInt32, ElemType("PredictedLabel.output"));
        Assert.AreEqual((int)OnnxElementType.UInt32, ElemType("Label.output"));
        Assert.AreEqual((int)OnnxElementType.Float, ElemType("Score.output"));
        var inputDims = graph.Graph.Input[0].Type.TensorType.Shape.Dim;
        Assert.AreEqual(4L, inputDims[1].DimValue);

        var slotNode = graph.Graph.Node.Single(n => n.Name == "mlnet.Score.SlotNames");
        Assert.AreEqual("LabelEncoder", slotNode.OpType);
        CollectionAssert.AreEqual(ClassNames, slotNode.Attribute.Single(a => a.Name == "keys_strings").Strings.Select(s => s.ToStringUtf8()).ToArray());
        Assert.AreEqual(12L, graph.OpsetImport.Single(o => o.Domain.Length == 0).Version);
        Assert.AreEqual(OnnxExporter.ProducerName, graph.ProducerName);

        // Internal names are prefixed per segment: ML.NET's normalizer (segment 0), our Gemm (segment 1).
        Assert.IsTrue(graph.Graph.Node.Any(n => n.Name.StartsWith("mlnet_0_", StringComparison.Ordinal)));
        Assert.IsTrue(graph.Graph.Node.Any(n => n.OpType == "Gemm" && n.Output[0].StartsWith("allauzen_1_", StringComparison.Ordinal)));
        Assert.IsTrue(graph.Graph.Node.Any(n => n.Name.StartsWith("mlnet_2_", StringComparison.Ordinal)));
        var produced = graph.Graph.Node.SelectMany(n => n.Output).ToList();
        Assert.HasCount(produced.Distinct().Count(), produced);
    }

    [TestMethod]
    public void AllauzenOnlyModelCanUseANewerOpsetAndWritesFilesAtomically()
    {
        var (ml, train, test, testRows) = Data();
        var (w, b) = AffineParameters();
        ITransformer model = new TestAffineTransformer(ml, "Features", "Affine", w, b);
        var dir = Directory.CreateTempSubdirectory("allauzen-onnx-");
        try
        {
            var path = Path.Combine(dir.FullName, "affine.onnx");
            ml.Model.ExportToOnnx(model, train, 17, path);
            var onnx = File.ReadAllBytes(path);
            Assert.HasCount(1, dir.GetFiles());
            var proto = global::Onnx.ModelProto.Parser.ParseFrom(onnx);
            Assert.AreEqual(17L, proto.OpsetImport.Single(o => o.Domain.Length == 0).Version);
            // Label passes through unchanged, so (as in ML.NET's exports) it is both an input and an output.
            CollectionAssert.AreEqual(new[] { "Features", "Label" }, proto.Graph.Input.Select(i => i.Name).ToArray());
            CollectionAssert.AreEquivalent(new[] { "Features.output", "Label.output", "Affine.output", "mlnet.Affine.unusedOutput" },
                proto.Graph.Output.Select(o => o.Name).ToArray());

            var ort = RunOrt(onnx, testRows, out var session);
            session.Dispose();
            Assert.IsLessThanOrEqualTo(Tolerance, MaxDiff(VectorColumn(model.Transform(test), "Affine"), ort["Affine.output"]));

            // A failing export leaves the existing file untouched and no temporary file behind.
            var bad = new NotExportableTransformer(ml, "Features", "Noisy", w, b);
            Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ExportToOnnx(bad, train, path));
            CollectionAssert.AreEqual(onnx, File.ReadAllBytes(path));
            Assert.HasCount(1, dir.GetFiles());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void NotExportableAllauzenTransformerThrowsNamingIt()
    {
        var (ml, train, _, _) = Data();
        var normalizer = ml.Transforms.NormalizeMinMax("Features").Fit(train);
        var (w, b) = AffineParameters();
        var model = new TransformerChain<ITransformer>(normalizer, new NotExportableTransformer(ml, "Features", "Noisy", w, b));
        using var output = new MemoryStream();
        var e = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ExportToOnnx(model, train, output));
        StringAssert.Contains(e.Message, "ProbeSmoothing");
        StringAssert.Contains(e.Message, nameof(NotExportableTransformer));
        Assert.AreEqual(0L, output.Length);
    }

    [TestMethod]
    public void ForeignTransformerIsRejectedInsteadOfSilentlyDropped()
    {
        var (ml, train, _, _) = Data();
        var normalizer = ml.Transforms.NormalizeMinMax("Features").Fit(train);
        var (w, b) = AffineParameters();
        // Neither IOnnxExportable nor an Allauzen component: treated as native, which ML.NET cannot export.
        var foreign = new AffineCore(ml, "Features", "Affine", w, b);
        var tail = ml.Transforms.Concatenate("Combined", "Features", "Affine").Fit(foreign.Transform(normalizer.Transform(train)));
        var model = new TransformerChain<ITransformer>(normalizer, foreign, tail);

        // ML.NET's own converter used to accept this chain and silently start the graph after our transformer
        // (taking "Affine" as a graph input); it now gets an error naming ExportToOnnx from our view.
        using (var ms = new MemoryStream())
        {
            var refused = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ConvertToOnnx(model, train, ms));
            StringAssert.Contains(refused.Message, "ExportToOnnx");
            Assert.AreEqual(0L, ms.Length);
        }

        using var output = new MemoryStream();
        var e = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ExportToOnnx(model, train, output));
        StringAssert.Contains(e.Message, nameof(AffineCore));
    }

    [TestMethod]
    public void NativeTransformerMlNetCannotExportThrows()
    {
        var (ml, train, _, _) = Data();
        var mapping = ml.Transforms.CustomMapping<IrisRow, Extra>((_, dst) => dst.Constant = 1f, contractName: null).Fit(train);
        var tail = ml.Transforms.Concatenate("Combined", "Features", "Constant").Fit(mapping.Transform(train));
        var model = new TransformerChain<ITransformer>(mapping, tail);
        using var output = new MemoryStream();
        var e = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ExportToOnnx(model, train, output));
        Console.WriteLine(e.Message);
        Assert.AreEqual(0L, output.Length);
    }

    [TestMethod]
    public void InPlaceNativeTransformerMlNetSkipsSilentlyIsRejected()
    {
        var (ml, train, _, _) = Data();
        var doubling = ml.Transforms.CustomMapping<IrisRow, Doubled>(
            (src, dst) => dst.Features = src.Features.Select(v => 2 * v).ToArray(), contractName: null).Fit(train);
        var normalizer = ml.Transforms.NormalizeMinMax("Features").Fit(doubling.Transform(train));
        var model = new TransformerChain<ITransformer>(doubling, normalizer);

        // ML.NET's converter succeeds and silently drops the doubling (it only logs a warning).
        using (var ms = new MemoryStream())
        {
            ml.Model.ConvertToOnnx(model, train, ms);
            Assert.IsGreaterThan(0L, ms.Length);
        }

        using var output = new MemoryStream();
        var e = Assert.ThrowsExactly<NotSupportedException>(() => ml.Model.ExportToOnnx(model, train, output));
        Console.WriteLine(e.Message);
        StringAssert.Contains(e.Message, "CustomMappingTransformer");
        Assert.AreEqual(0L, output.Length);
    }

    [TestMethod]
    public void CatalogEnvironmentReadsAnyCatalog()
    {
        var ml = new MLContext(seed: 3);
        Assert.IsNotNull(CatalogEnvironment.Get(ml.Model));
        Assert.IsNotNull(CatalogEnvironment.Get(ml.Transforms));
        Assert.IsNotNull(CatalogEnvironment.Get(ml.MulticlassClassification.Trainers));
        Assert.AreSame(CatalogEnvironment.Get(ml.Model), CatalogEnvironment.Get(ml.MulticlassClassification.Trainers));
        var e = Assert.ThrowsExactly<NotSupportedException>(() => CatalogEnvironment.Get(new object()));
        StringAssert.Contains(e.Message, "System.Object");
        StringAssert.StartsWith(MlNetInternals.LoadedVersion, "Microsoft.ML 5.");
        Assert.ThrowsExactly<ArgumentNullException>(() => CatalogEnvironment.Get(null!));
    }

    [TestMethod]
    public void FlattenAndSplitFindSegments()
    {
        var (ml, train, _, _) = Data();
        var (model, _) = FitSandwich(ml, train);
        var flat = OnnxExporter.Flatten(model);
        Assert.HasCount(5, flat); // normalizer, affine, concat, value-to-key, SDCA prediction transformer
        var segments = OnnxExporter.Split(flat);
        CollectionAssert.AreEqual(new[] { true, false, true }, segments.Select(s => s.Native).ToArray());
        CollectionAssert.AreEqual(new[] { 1, 1, 3 }, segments.Select(s => s.Transformers.Count).ToArray());
    }
}
