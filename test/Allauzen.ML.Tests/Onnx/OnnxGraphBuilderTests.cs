using Allauzen.ML.Onnx;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Allauzen.ML.Tests.Onnx;

[TestClass]
public sealed class OnnxGraphBuilderTests
{
    private const int D = 4, H = 6, K = 3, N = 5;

    private static float[] RandomArray(Random rng, int n, float scale = 1f) =>
        Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2) - 1) * scale).ToArray();

    /// <summary>Linear (y = x Wᵀ + b) → ReLU → Linear → softmax, computed in double then rounded.</summary>
    private static float[] Reference(float[] x, float[] w1, float[] b1, float[] w2, float[] b2)
    {
        var result = new float[N * K];
        for (int r = 0; r < N; r++)
        {
            var h = new double[H];
            for (int i = 0; i < H; i++)
            {
                double s = b1[i];
                for (int j = 0; j < D; j++)
                    s += (double)w1[(i * D) + j] * x[(r * D) + j];
                h[i] = Math.Max(0, s);
            }
            var z = new double[K];
            for (int i = 0; i < K; i++)
            {
                double s = b2[i];
                for (int j = 0; j < H; j++)
                    s += w2[(i * H) + j] * h[j];
                z[i] = s;
            }
            double max = z.Max();
            double sum = z.Sum(v => Math.Exp(v - max));
            for (int i = 0; i < K; i++)
                result[(r * K) + i] = (float)(Math.Exp(z[i] - max) / sum);
        }
        return result;
    }

    [TestMethod]
    public void GemmReluSoftmaxMatchesReferenceInOnnxRuntime()
    {
        var rng = new Random(42);
        float[] w1 = RandomArray(rng, H * D), b1 = RandomArray(rng, H, 0.1f);
        float[] w2 = RandomArray(rng, K * H), b2 = RandomArray(rng, K, 0.1f);
        float[] x = RandomArray(rng, N * D, 3f);

        var g = new OnnxGraphBuilder();
        Assert.AreEqual(12, g.Opset);
        g.AddInput("X", OnnxElementType.Float, [-1, D]);
        var h = g.Node("Gemm", ["X", g.Initializer("W1", w1, H, D), g.Initializer("b1", b1, H)], "h", ("transB", 1L));
        var r = g.Node("Relu", [h], "relu");
        var z = g.Node("Gemm", [r, g.Initializer("W2", w2, K, H), g.Initializer("b2", b2, K)], "z", ("transB", 1));
        var p = g.Node("Softmax", [z], "probs", ("axis", 1));
        g.AddOutput(p, OnnxElementType.Float, [-1, K]);
        g.SetMetadata("allauzen.test", "mlp");
        var model = g.Build("Allauzen.ML.Tests");

        Assert.AreEqual(7L, model.IrVersion);
        Assert.AreEqual(12L, model.OpsetImport.Single(o => o.Domain.Length == 0).Version);
        Assert.AreEqual("N", model.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimParam);

        using var session = new InferenceSession(model.ToByteArray());
        Assert.AreEqual("mlp", session.ModelMetadata.CustomMetadataMap["allauzen.test"]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("X", new DenseTensor<float>(x, [N, D]))]);
        var actual = results.Single(v => v.Name == p).AsTensor<float>().ToArray();

        var expected = Reference(x, w1, b1, w2, b2);
        Assert.AreEqual(expected.Length, actual.Length);
        double maxDiff = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Console.WriteLine($"builder MLP: max |ORT - reference| = {maxDiff:E2}");
        Assert.IsTrue(maxDiff <= 1e-6, $"max diff {maxDiff}");
        // The probabilities are not trivially uniform (the test would pass for a broken graph otherwise).
        Assert.IsTrue(actual.Max() - actual.Min() > 0.1f);
    }

    [TestMethod]
    public void MultiOutputSplitAndIntegerInitializersRunInOnnxRuntime()
    {
        var g = new OnnxGraphBuilder(opset: 12);
        g.AddInput("X", OnnxElementType.Float, [-1, 4]);
        var parts = g.Node("Split", ["X"], ["left", "right"], ("axis", 1), ("split", new long[] { 1, 3 }));
        Assert.HasCount(2, parts);
        // Gather with an INT64 index and reshape with an INT64 shape; an INT32 initializer cast to float.
        var idx = g.Initializer("idx", (ReadOnlySpan<long>)[2, 0], 2);
        var gathered = g.Node("Gather", [parts[1], idx], "gathered", ("axis", 1));
        var i32 = g.Initializer("i32", (ReadOnlySpan<int>)[10, 20], 1, 2);
        var asFloat = g.Node("Cast", [i32], "i32f", ("to", (long)OnnxElementType.Float));
        var sum = g.Node("Add", [gathered, asFloat], "sum");
        g.AddOutput(parts[0], OnnxElementType.Float, [-1, 1]);
        g.AddOutput(sum, OnnxElementType.Float, [-1, 2]);

        using var session = new InferenceSession(g.Build("test").ToByteArray());
        float[] x = [1, 2, 3, 4, 5, 6, 7, 8];
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("X", new DenseTensor<float>(x, [2, 4]))]);
        CollectionAssert.AreEqual(new float[] { 1, 5 }, results.Single(v => v.Name == parts[0]).AsTensor<float>().ToArray());
        CollectionAssert.AreEqual(new float[] { 14, 22, 18, 26 }, results.Single(v => v.Name == sum).AsTensor<float>().ToArray());
    }

    [TestMethod]
    public void NamesArePrefixedUniqueAndSharedBetweenBuilders()
    {
        var registry = new HashSet<string>(StringComparer.Ordinal) { "allauzen_1_W" };
        var a = new OnnxGraphBuilder(12, "allauzen_1_", registry);
        var b = new OnnxGraphBuilder(12, "allauzen_1_", registry);
        string first = a.UniqueName("W"), second = b.UniqueName("W"), third = a.Initializer("W", (ReadOnlySpan<float>)[1f], 1);
        Assert.AreEqual("allauzen_1_W_1", first);
        Assert.AreEqual("allauzen_1_W_2", second);
        Assert.AreEqual("allauzen_1_W_3", third);
        Assert.AreEqual("allauzen_1_relu", a.Node("Relu", [third], "relu"));
        Assert.IsTrue(a.Graph.Node[0].Name.StartsWith("allauzen_1_Relu", StringComparison.Ordinal));
        Assert.IsFalse(a.Reserve("allauzen_1_relu"));
    }

    [TestMethod]
    public void AttributesAreTypedAndBadInputsAreRejected()
    {
        var g = new OnnxGraphBuilder(opset: 17, prefix: "p_");
        var t = g.Initializer("s", new[] { "one", "two" }, 2);
        g.NodeInDomain(OnnxGraphBuilder.MlDomain, "LabelEncoder", [t], ["enc"],
            ("keys_strings", new[] { "one", "two" }), ("values_int64s", new long[] { 1, 2 }), ("default_int64", -1L));
        g.Node("Dummy", [t], "d", ("f", 0.5f), ("s", "text"), ("fs", new[] { 1f, 2f }), ("is", new[] { 1, 2 }));
        var model = g.Build("test");

        var attrs = model.Graph.Node[1].Attribute.ToDictionary(a => a.Name);
        Assert.AreEqual(global::Onnx.AttributeProto.Types.AttributeType.Float, attrs["f"].Type);
        Assert.AreEqual("text", attrs["s"].S.ToStringUtf8());
        CollectionAssert.AreEqual(new float[] { 1, 2 }, attrs["fs"].Floats.ToArray());
        CollectionAssert.AreEqual(new long[] { 1, 2 }, attrs["is"].Ints.ToArray());
        Assert.AreEqual(OnnxGraphBuilder.MlDomain, model.Graph.Node[0].Domain);
        Assert.AreEqual(2L, model.OpsetImport.Single(o => o.Domain == OnnxGraphBuilder.MlDomain).Version);
        Assert.AreEqual(17L, model.OpsetImport.Single(o => o.Domain.Length == 0).Version);
        Assert.AreEqual(8L, model.IrVersion);
        Assert.AreEqual((int)OnnxElementType.String, model.Graph.Initializer[0].DataType);
        Assert.AreEqual("two", model.Graph.Initializer[0].StringData[1].ToStringUtf8());

        Assert.ThrowsExactly<ArgumentException>(() => g.Initializer("bad", (ReadOnlySpan<float>)[1f, 2f, 3f], 2, 2));
        Assert.ThrowsExactly<ArgumentException>(() => g.Node("Relu", [t], "x", ("bad", new object())));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new OnnxGraphBuilder(opset: 5));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => g.AddInput("Y", OnnxElementType.Float, [-2, 3]));
    }
}
