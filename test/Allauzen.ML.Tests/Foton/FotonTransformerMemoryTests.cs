using System.Collections;
using System.Reflection;
using System.Text.Json;
using Allauzen.ML.Core;
using Allauzen.ML.Foton;
using Allauzen.ML.Persistence;
using Allauzen.ML.Tests.TestSupport;
using Allauzen.ML.Torch;
using Microsoft.ML;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Foton;

/// <summary>
/// A trained FOTON transformer holds its weights once (the libtorch tensors it scores with), takes the trainer's
/// tensors without copying them, and still saves the same payload (version 1) as when it also kept float[] copies.
/// </summary>
[TestClass]
public sealed class FotonTransformerMemoryTests
{
    private static FotonOptions Dense() => new() { HiddenSizes = [8, 6], Activation = FotonActivation.Tanh, Epochs = 2, BatchSize = 32, Seed = 1 };

    private static FotonOptions Conv() => new() { HiddenSizes = [4], InputShape = [2, 2, 2], ConvolutionChannels = [4], Epochs = 2, BatchSize = 32, Seed = 2 };

    private static FotonOptions Options(bool conv) => conv ? Conv() : Dense();

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void TrainedWeights_AreContiguousFloat32Tensors_EqualToGetWeightsBeforeSaveAndAfterReload(bool conv)
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 96);
        using var model = ml.MulticlassClassification.Trainers.Foton(Options(conv)).Fit(data);
        var before = model.LayerNames.ToDictionary(n => n, model.GetWeights);

        var loaded = SaveAndReload(ml, model, data.Schema);
        var reloaded = Find(loaded);

        var shapes = model.Network.Architecture.Shapes();
        foreach (var t in new[] { model, reloaded })
        {
            var weights = t.Network.Weights;
            for (int i = 0; i < weights.Length; i++)
            {
                var w = weights[i];
                string name = t.LayerNames[i];
                Assert.AreEqual(ScalarType.Float32, w.dtype, name);
                Assert.IsTrue(w.is_contiguous(), name);
                Assert.AreEqual(0L, w.storage_offset(), name);
                CollectionAssert.AreEqual(new long[] { shapes[i].Out, shapes[i].In }, w.shape, name);
                AssertBits(before[name], w.data<float>().ToArray(), $"{name}: the transformer's tensor vs GetWeights before save");
                AssertBits(before[name], t.GetWeights(name), $"{name}: GetWeights after reload");
            }
        }
        // GetWeights hands out copies: changing one does not touch the model.
        var copy = model.GetWeights("out");
        copy[0] += 1;
        AssertBits(before["out"], model.GetWeights("out"), "GetWeights returns a copy");
        (loaded as IDisposable)?.Dispose();
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void TrainedAndReloadedTransformers_HoldOneCopyOfTheWeights(bool conv)
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 96);
        using var model = ml.MulticlassClassification.Trainers.Foton(Options(conv)).Fit(data);
        long expected = model.Network.Architecture.Shapes().Sum(s => 4L * s.Out * s.In);
        Assert.AreEqual(expected, RetainedWeightBytes(model), "trained: Σ d_out·d_in·4 bytes of float arrays and tensors reachable from the transformer");

        var loaded = SaveAndReload(ml, model, data.Schema);
        Assert.AreEqual(expected, RetainedWeightBytes(Find(loaded)), "reloaded");
        (loaded as IDisposable)?.Dispose();
    }

    [TestMethod]
    public void Constructor_KeepsTensorsInScoringLayout_CopiesTheOthers_ScoresAsFromArrays()
    {
        TorchRuntime.EnsureInitialized();
        var ml = new MLContext(seed: 1);
        var arch = new FotonArchitecture(6, [5, 4], 3, FotonActivation.Tanh);
        var shapes = arch.Shapes();
        using var g = new Generator(7, torch.CPU);
        var values = shapes.Select(s => torch.randn([s.Out, s.In], generator: g)).ToArray();
        var arrays = values.Select(v => v.data<float>().ToArray()).ToArray();

        // fc0 as float64, fc1 transposed (not contiguous), out a contiguous slice at a non-zero storage offset.
        var fc0 = values[0].to(ScalarType.Float64);
        var fc1 = values[1].t().contiguous().t();
        var big = torch.cat([torch.zeros(1, shapes[2].In), values[2]], 0);
        var outLayer = big.narrow(0, 1, shapes[2].Out);
        Assert.IsFalse(fc1.is_contiguous());
        Assert.AreNotEqual(0L, outLayer.storage_offset());
        var ready = values[2].clone();

        using var mixed = new FotonTransformer(ml, new OrthogonalMlp(arch, [fc0, fc1, outLayer]), FotonAlgorithm.Foton,
            "Features", LabelNames.Default(3), "Score", "PredictedLabel");
        using var kept = new FotonTransformer(ml, new OrthogonalMlp(arch, [values[0].clone(), values[1].clone(), ready]), FotonAlgorithm.Foton,
            "Features", LabelNames.Default(3), "Score", "PredictedLabel");
        using var fromArrays = FotonTransformer.FromArrays(ml, arch, arrays, FotonAlgorithm.Foton,
            "Features", LabelNames.Default(3), "Score", "PredictedLabel");

        Assert.AreSame(ready, kept.Network.Weights[2], "a float32 contiguous tensor is taken as it is, not copied");
        Assert.IsTrue(fc0.IsInvalid && fc1.IsInvalid && outLayer.IsInvalid, "the replaced tensors are disposed");
        foreach (var w in mixed.Network.Weights)
        {
            Assert.AreEqual(ScalarType.Float32, w.dtype);
            Assert.IsTrue(w.is_contiguous());
            Assert.AreEqual(0L, w.storage_offset());
        }
        for (int i = 0; i < shapes.Length; i++)
        {
            AssertBits(arrays[i], mixed.GetWeights(mixed.LayerNames[i]), $"mixed {mixed.LayerNames[i]}");
            AssertBits(arrays[i], fromArrays.GetWeights(fromArrays.LayerNames[i]), $"from arrays {mixed.LayerNames[i]}");
        }

        var rng = new Random(3);
        var features = Enumerable.Range(0, 7 * 6).Select(_ => (float)TestData.Gaussian(rng)).ToArray();
        var expected = Score(fromArrays, features, 7);
        AssertBits(expected, Score(mixed, features, 7), "mixed vs from arrays");
        AssertBits(expected, Score(kept, features, 7), "kept vs from arrays");
        foreach (var v in values)
            v.Dispose();
        big.Dispose();
    }

    [TestMethod]
    [DataRow("dense_tanh")]
    [DataRow("conv_relu")]
    public void PayloadSavedBeforeTheChange_ScoresAsStoredWithinFloat32Rounding_AndSavesTheSameBytes(string name)
    {
        // Saved by the version that also kept float[] copies of the weights (see "provenance" in the file).
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "Foton", "foton_payload_v1.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        var m = root.GetProperty("models").GetProperty(name);
        var payload = Convert.FromBase64String(m.GetProperty("payload").GetString()!);
        var features = root.GetProperty("features").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetSingle())).ToArray();
        var scores = m.GetProperty("scores").EnumerateArray().Select(v => BitConverter.Int32BitsToSingle(v.GetInt32())).ToArray();
        int rows = root.GetProperty("features").GetArrayLength();

        using var t = FotonTransformer.Load(new MLContext(seed: 1), new ModelPayloadReader(payload, name));
        // The stored scores were computed on another CPU: libtorch's GEMM/conv summation order and its tanh/exp kernels
        // differ across instruction sets (AVX2 vs AVX-512), so the probabilities may differ in the last bits (seen: 1 ulp
        // on an AVX-512 Xeon). Tolerance from float32 rounding: 3 layers of dot products of length 8 (dense 8 inputs,
        // conv 2 channels × 2×2 kernel) with orthonormal rows and ‖x‖ ≲ 3 give |Δlogit| ≲ 3·8·2^-24·3 ≈ 4.3e-6 in the
        // worst case, so |Δp|/p ≲ 2·|Δlogit| + a few ulp of tanh/exp ≈ 9e-6 ≈ 80 ulp (typical: √8 instead of 8, ~25 ulp).
        // 128 ulp relative + 1e-7 absolute; a misread weight moves the scores by orders of magnitude more.
        FloatTolerance.AssertClose(scores, Score(t, features, rows), relUlps: 128, abs: 1e-7, "scores of the old payload");
        // Rewriting the payload from the loaded weights happens on this machine: bit-exact.
        CollectionAssert.AreEqual(payload, ModelPayloadWriter.Serialize(t), "the payload saved again is byte-identical");
    }

    [TestMethod]
    public void Disposed_ThrowsObjectDisposed()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 64);
        var model = ml.MulticlassClassification.Trainers.Foton(Dense()).Fit(data);
        model.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.GetWeights("out"));
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.LipschitzBound());
        Assert.ThrowsExactly<ObjectDisposedException>(() => model.OrthogonalityErrors());
        Assert.ThrowsExactly<ObjectDisposedException>(() => ModelPayloadWriter.Serialize(model));
        Assert.ThrowsExactly<ObjectDisposedException>(() => Score(model, new float[8], 1));
        CollectionAssert.AreEqual(new[] { "fc0", "fc1", "out" }, model.LayerNames.ToArray(), "the architecture stays readable");
    }

    /// <summary>Saves <paramref name="model"/> to memory and loads it in a fresh MLContext.</summary>
    private static ITransformer SaveAndReload(MLContext ml, ITransformer model, DataViewSchema schema)
    {
        var ms = new MemoryStream();
        ml.Model.Save(model, schema, ms);
        ms.Position = 0;
        var ml2 = new MLContext(seed: 2);
        ml2.UseAllauzen();
        return ml2.Model.Load(ms, out _);
    }

    private static FotonTransformer Find(ITransformer model) => model switch
    {
        FotonTransformer f => f,
        IEnumerable<ITransformer> chain => chain.Select(Find).Single(),
        _ => throw new AssertFailedException($"no FotonTransformer in {model.GetType().Name}"),
    };

    private static float[] Score(FotonTransformer t, float[] features, int rows)
    {
        var probabilities = new float[rows * t.Network.Architecture.Classes];
        t.Forward(features, rows, probabilities);
        return probabilities;
    }

    private static void AssertBits(float[] expected, float[] actual, string message)
    {
        Assert.HasCount(expected.Length, actual, message);
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{message}: [{i}] {expected[i]:R} vs {actual[i]:R}");
        }
    }

    /// <summary>
    /// Bytes of float/double arrays and tensors reachable from <paramref name="root"/> through the fields of
    /// Allauzen.ML objects, arrays and collections (a tensor counts its elements; it is not looked into).
    /// </summary>
    private static long RetainedWeightBytes(object root)
    {
        var library = typeof(FotonTransformer).Assembly;
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<object>();
        pending.Push(root);
        long bytes = 0;
        while (pending.TryPop(out var o))
        {
            if (!seen.Add(o))
                continue;
            switch (o)
            {
                case Tensor t:
                    bytes += t.NumberOfElements * t.ElementSize;
                    continue;
                case float[] f:
                    bytes += 4L * f.Length;
                    continue;
                case double[] d:
                    bytes += 8L * d.Length;
                    continue;
                case string:
                    continue;
                case IEnumerable items when o.GetType().Assembly != library:
                    foreach (var item in items)
                    {
                        if (item is not null && !item.GetType().IsPrimitive)
                            pending.Push(item);
                    }
                    continue;
            }
            for (var type = o.GetType(); type is not null && type.Assembly == library; type = type.BaseType)
            {
                foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                {
                    if (!field.FieldType.IsPrimitive && field.GetValue(o) is object value)
                        pending.Push(value);
                }
            }
        }
        return bytes;
    }
}
