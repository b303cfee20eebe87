using Allauzen.ML.Onnx;
using Allauzen.ML.Smoothing;
using Allauzen.ML.Torch;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Allauzen.ML.Tests.Smoothing;

/// <summary>The exact first-layer noise shortcut (<see cref="FirstLayerNoise"/>) for ONNX base models: the graph split and the certifier through it.</summary>
[TestClass]
public sealed class OnnxFirstLayerShortcutTests
{
    public sealed class Row4
    {
        [VectorType(4)]
        public float[] Features { get; set; } = [];
    }

    public sealed class Row16
    {
        [VectorType(16)]
        public float[] Features { get; set; } = [];
    }

    /// <summary>How the test graph's first layer is written.</summary>
    public enum FirstLayer
    {
        /// <summary>Gemm(x, B [h, d], C [h]) with transB = 1, alpha = 0.5, beta = 2.</summary>
        GemmTransB,
        /// <summary>Gemm(x, B [d, h], C [1, h]) with transB = 0, alpha = 1.5.</summary>
        GemmNoTransB,
        /// <summary>Two Identity nodes, then Gemm(x, B [h, d], C [1]) with transB = 1 (scalar bias).</summary>
        IdentitiesThenGemm,
        /// <summary>MatMul(x, B [d, h]), then Add(b, ·) (the bias first).</summary>
        MatMulThenAdd,
        /// <summary>MatMul(x, B [d, h]) without a bias.</summary>
        MatMulOnly,
        /// <summary>A single Gemm whose output is the graph's output (a linear classifier: the rest is the identity).</summary>
        GemmOnly,
    }

    /// <summary>A test graph: the first layer's W [h, d] and b [h] as the graph defines them, and the rest's V [k, h] and c [k] (null: none).</summary>
    private sealed record Graph(byte[] Bytes, string Output, float[] W, float[] B, float[]? V, float[]? C, int D, int H, int K);

    private static float[] Uniform(Random rng, int n, float scale = 1) => [.. Enumerable.Range(0, n).Select(_ => scale * (float)(2 * rng.NextDouble() - 1))];

    /// <summary>x → first layer (<paramref name="kind"/>) → ReLU → Gemm(V, c) → logits (or the first layer alone for <see cref="FirstLayer.GemmOnly"/>).</summary>
    private static Graph Build(FirstLayer kind, int d, int h, int k, int seed)
    {
        var rng = new Random(seed);
        var g = new OnnxGraphBuilder(opset: 13, prefix: "t_");
        g.AddInput("x", OnnxElementType.Float, [-1, d]);
        var w = new float[h * d];
        var b = new float[h];
        string y;
        switch (kind)
        {
            case FirstLayer.GemmTransB or FirstLayer.IdentitiesThenGemm or FirstLayer.GemmOnly:
            {
                var raw = Uniform(rng, h * d);
                float alpha = kind == FirstLayer.GemmTransB ? 0.5f : 1f, beta = kind == FirstLayer.GemmTransB ? 2f : 1f;
                var c = kind == FirstLayer.IdentitiesThenGemm ? Uniform(rng, 1) : Uniform(rng, h);
                for (int j = 0; j < h; j++)
                {
                    for (int i = 0; i < d; i++)
                        w[j * d + i] = alpha * raw[j * d + i];
                    b[j] = beta * c[kind == FirstLayer.IdentitiesThenGemm ? 0 : j];
                }
                string x = kind == FirstLayer.IdentitiesThenGemm ? g.Node("Identity", [g.Node("Identity", ["x"], "id1")], "id2") : "x";
                y = g.Node("Gemm", [x, g.Initializer("B", raw, h, d), g.Initializer("C", c, c.Length)], "first",
                    ("transB", 1L), ("alpha", alpha), ("beta", beta));
                break;
            }
            case FirstLayer.GemmNoTransB:
            {
                var raw = Uniform(rng, d * h);
                var c = Uniform(rng, h);
                for (int j = 0; j < h; j++)
                {
                    for (int i = 0; i < d; i++)
                        w[j * d + i] = 1.5f * raw[i * h + j];
                    b[j] = c[j];
                }
                y = g.Node("Gemm", ["x", g.Initializer("B", raw, d, h), g.Initializer("C", c, 1, h)], "first", ("alpha", 1.5f));
                break;
            }
            default:
            {
                var raw = Uniform(rng, d * h);
                for (int j = 0; j < h; j++)
                {
                    for (int i = 0; i < d; i++)
                        w[j * d + i] = raw[i * h + j];
                }
                y = g.Node("MatMul", ["x", g.Initializer("B", raw, d, h)], "first");
                if (kind == FirstLayer.MatMulThenAdd)
                {
                    b = Uniform(rng, h);
                    y = g.Node("Add", [g.Initializer("bias", b, h), y], "first_biased");
                }
                break;
            }
        }
        if (kind == FirstLayer.GemmOnly)
        {
            g.AddOutput(y, OnnxElementType.Float, [-1, h]);
            return new Graph(g.Build("test").ToByteArray(), y, w, b, null, null, d, h, h);
        }
        var v = Uniform(rng, k * h);
        var cv = Uniform(rng, k);
        string logits = g.Node("Gemm", [g.Node("Relu", [y], "relu"), g.Initializer("V", v, k, h), g.Initializer("c", cv, k)], "logits", ("transB", 1L));
        g.AddOutput(logits, OnnxElementType.Float, [-1, k]);
        return new Graph(g.Build("test").ToByteArray(), logits, w, b, v, cv, d, h, k);
    }

    /// <summary>γ_n = n·u/(1 − n·u), u = 2⁻²⁴: the worst-case relative error of a float32 sum of n products, in any order, FMA or not.</summary>
    private static double Gamma(int n) => n * Math.Pow(2, -24) / (1 - n * Math.Pow(2, -24));

    [TestMethod]
    [DataRow(FirstLayer.GemmTransB)]
    [DataRow(FirstLayer.GemmNoTransB)]
    [DataRow(FirstLayer.IdentitiesThenGemm)]
    [DataRow(FirstLayer.MatMulThenAdd)]
    [DataRow(FirstLayer.MatMulOnly)]
    [DataRow(FirstLayer.GemmOnly)]
    public void SplitModelGivesTheFullModelsOutputs(FirstLayer kind)
    {
        TorchRuntime.EnsureInitialized();
        const int d = 24, rows = 64;
        var t = Build(kind, d, h: 7, k: 4, seed: (int)kind + 1);
        using var model = new OnnxBaseModel(t.Bytes, kind.ToString(), "x", t.Output, probabilities: false, t.D);
        var split = OnnxFirstLayerSplit.TryCreate(t.Bytes, "x", t.Output, d);
        Assert.IsNotNull(split, $"{kind}: the first layer is a constant linear layer with h < d");
        // W and b are read exactly: the same float32 products alpha·B and beta·C as the graph defines.
        CollectionAssert.AreEqual(t.W, split.Weight, "W");
        CollectionAssert.AreEqual(t.B, split.Bias, "b");
        Assert.AreEqual(t.H, split.Width);
        var shortcut = model.FirstLayer;
        Assert.IsNotNull(shortcut, "the sampler's shortcut");
        Assert.AreEqual(t.H, shortcut.Width);

        var rng = new Random(7);
        var x = Uniform(rng, rows * d, 3);
        using var xt = torch.tensor(x, [rows, d]);
        using var fullT = model.RawOutputs(xt);
        using var splitT = shortcut.Rest(shortcut.Project(xt)).contiguous();
        var full = fullT.data<float>().ToArray();
        var viaSplit = splitT.data<float>().ToArray();
        Assert.AreEqual(rows * t.K, viaSplit.Length);
        // Tolerance: both sides compute the first layer in float32 with different kernels (ONNX Runtime's GEMM, libtorch's
        // linear): each within γ_{d+2}·(Σ|W_ji·x_i| + |b_j|) of the exact value (d products, the alpha and beta scalings), so
        // they differ by at most E_j = 2γ_{d+2}(…). ReLU is 1-Lipschitz; the last Gemm turns E into Σ_j |V_kj|·E_j and adds
        // its own rounding on both sides, 2γ_{h+2}(Σ_j |V_kj|(|r_j| + E_j) + |c_k|). A wrong split differs by O(1).
        double worst = 0;
        for (int r = 0; r < rows; r++)
        {
            var e = new double[t.H];
            var relu = new double[t.H];
            for (int j = 0; j < t.H; j++)
            {
                double sum = t.B[j], abs = Math.Abs(t.B[j]);
                for (int i = 0; i < d; i++)
                {
                    sum += (double)t.W[j * d + i] * x[r * d + i];
                    abs += Math.Abs((double)t.W[j * d + i] * x[r * d + i]);
                }
                e[j] = 2 * Gamma(d + 2) * abs;
                relu[j] = Math.Max(0, sum);
            }
            for (int k = 0; k < t.K; k++)
            {
                double bound;
                if (t.V is null)
                    bound = e[k];
                else
                {
                    double propagated = 0, magnitude = Math.Abs(t.C![k]);
                    for (int j = 0; j < t.H; j++)
                    {
                        propagated += Math.Abs(t.V[k * t.H + j]) * e[j];
                        magnitude += Math.Abs(t.V[k * t.H + j]) * (relu[j] + e[j]);
                    }
                    bound = propagated + 2 * Gamma(t.H + 2) * magnitude;
                }
                double diff = Math.Abs(full[r * t.K + k] - viaSplit[r * t.K + k]);
                Assert.IsLessThanOrEqualTo(bound, diff, $"{kind}: row {r}, output {k}: full {full[r * t.K + k]:R}, split {viaSplit[r * t.K + k]:R}");
                worst = Math.Max(worst, diff / bound);
            }
        }
        Console.WriteLine($"{kind}: largest difference {worst:P1} of the float32 bound");
    }

    /// <summary>Graphs whose first layer must not be split, d = 16 (name, model bytes, output).</summary>
    private static IEnumerable<(string Name, byte[] Bytes, string Output)> NotMatching()
    {
        const int d = 16;
        var rng = new Random(3);
        (OnnxGraphBuilder G, string X) Start()
        {
            var g = new OnnxGraphBuilder(opset: 13, prefix: "t_");
            g.AddInput("x", OnnxElementType.Float, [-1, d]);
            return (g, "x");
        }
        (byte[], string) Finish(OnnxGraphBuilder g, string y, int h)
        {
            string logits = g.Node("Gemm", [g.Node("Relu", [y], "relu"), g.Initializer("V", Uniform(rng, 3 * h), 3, h)], "logits", ("transB", 1L));
            g.AddOutput(logits, OnnxElementType.Float, [-1, 3]);
            return (g.Build("test").ToByteArray(), logits);
        }
        {
            // A convolution first (on the 4×4 image the row holds).
            var (g, x) = Start();
            string image = g.Node("Reshape", [x, g.Initializer("shape", new long[] { -1, 1, 4, 4 }, 4)], "image");
            string conv = g.Node("Conv", [image, g.Initializer("K", Uniform(rng, 2 * 9), 2, 1, 3, 3), g.Initializer("kb", Uniform(rng, 2), 2)], "conv");
            var (bytes, output) = Finish(g, g.Node("Flatten", [conv], "flat"), 8);
            yield return ("Conv first", bytes, output);
        }
        foreach (int h in new[] { d, d + 4 })
        {
            var (g, x) = Start();
            var (bytes, output) = Finish(g, g.Node("Gemm", [x, g.Initializer("W", Uniform(rng, h * d), h, d)], "first", ("transB", 1L)), h);
            yield return ($"h = {h} ≥ d", bytes, output);
        }
        {
            // The weight is computed by a node (here a transpose of an initializer), not read from one.
            var (g, x) = Start();
            string wt = g.Node("Transpose", [g.Initializer("W", Uniform(rng, 5 * d), 5, d)], "wt");
            var (bytes, output) = Finish(g, g.Node("MatMul", [x, wt], "first"), 5);
            yield return ("weight computed by a node", bytes, output);
        }
        {
            // The input is read again further on (a skip connection around the first layer).
            var (g, x) = Start();
            string y = g.Node("Gemm", [x, g.Initializer("W", Uniform(rng, 5 * d), 5, d)], "first", ("transB", 1L));
            string logits = g.Node("Add", [g.Node("Gemm", [g.Node("Relu", [y], "relu"), g.Initializer("V", Uniform(rng, 15), 3, 5)], "h2", ("transB", 1L)),
                g.Node("MatMul", [x, g.Initializer("P", Uniform(rng, d * 3), d, 3)], "skip")], "logits");
            g.AddOutput(logits, OnnxElementType.Float, [-1, 3]);
            yield return ("input read again", g.Build("test").ToByteArray(), logits);
        }
    }

    [TestMethod]
    public void OtherFirstLayersKeepTheDirectPath()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 3).Select(i => new Row16 { Features = [.. Enumerable.Range(0, 16).Select(j => 0.1f * ((i + j) % 5))] }));
        foreach (var (name, bytes, output) in NotMatching())
        {
            Assert.IsNull(OnnxFirstLayerSplit.TryCreate(bytes, "x", output, 16), $"{name}: split");
            using (var model = new OnnxBaseModel(bytes, name, "x", output, probabilities: false, 16))
                Assert.IsNull(model.FirstLayer, $"{name}: no shortcut");
            // The certifier runs it on the direct path: the same counts with the shortcut allowed or not.
            string path = Path.Combine(Path.GetTempPath(), $"rs-noshortcut-{Guid.NewGuid():N}.onnx");
            try
            {
                File.WriteAllBytes(path, bytes);
                double[][] Counts(bool shortcut)
                {
                    var t = ml.Transforms.SampleRandomizedSmoothing(new RandomizedSmoothingOptions
                    {
                        BaseModelOnnxPath = path, OnnxInputName = "x", OnnxOutputName = output, Sigma = 0.5, SelectionSamples = 10, EstimationSamples = 300, Seed = 4,
                    }).Fit(data);
                    t.Sampler.UseFirstLayerShortcut = shortcut;
                    return [.. t.Transform(data).GetColumn<VBuffer<double>>(SmoothingColumnNames.EstimationCounts).Select(v => v.DenseValues().ToArray())];
                }
                var allowed = Counts(true);
                var direct = Counts(false);
                for (int r = 0; r < allowed.Length; r++)
                    CollectionAssert.AreEqual(direct[r], allowed[r], $"{name}: row {r}");
            }
            finally
            {
                File.Delete(path);
            }
        }
    }

    private static double[][] EstimationCounts(MLContext ml, RandomizedSmoothingOptions options, IDataView data, bool shortcut, bool expectShortcut)
    {
        var t = ml.Transforms.SampleRandomizedSmoothing(options).Fit(data);
        t.Sampler.UseFirstLayerShortcut = shortcut;
        Assert.AreEqual(expectShortcut, t.Sampler.Model.FirstLayer is not null, "whether the base model has the shortcut");
        return [.. t.Transform(data).GetColumn<VBuffer<double>>(SmoothingColumnNames.EstimationCounts).Select(v => v.DenseValues().ToArray())];
    }

    [TestMethod]
    public void ExportedMlpGetsTheTorchShortcutsCountsAndTheDirectPathsDistribution()
    {
        var ml = new MLContext(seed: 1);
        var model = SmoothingShortcutAndLipschitzTests.TinyModel(ml);
        var data = SmoothingShortcutAndLipschitzTests.TinyPoints(ml);
        string path = Path.Combine(Path.GetTempPath(), $"rs-tiny-{Guid.NewGuid():N}.onnx");
        try
        {
            ml.Model.ExportToOnnx(model, ml.Transforms.SelectColumns("Features").Fit(data).Transform(data), path);
            RandomizedSmoothingOptions Options(bool onnx, int seed) => new()
            {
                BaseModel = onnx ? null : model, BaseModelOnnxPath = onnx ? path : null, OnnxInputName = onnx ? "Features" : null,
                OnnxOutputName = onnx ? "Score.output" : null, BaseModelOutputsProbabilities = onnx,
                Sigma = 0.5, SelectionSamples = 1, EstimationSamples = 20_000, Seed = seed, BatchSize = 4096,
            };
            var onnxShortcut = EstimationCounts(ml, Options(onnx: true, seed: 1), data, shortcut: true, expectShortcut: true);
            // The same h = 3 normals per sample, the same W (read from the initializers) and hence the same Cholesky factor as
            // TorchSharp's shortcut: the counts are equal but for samples whose two best scores are within float32 rounding of a
            // tie (ONNX's Gemm and Softmax against libtorch's linear layer), expected ≪ 1 in 100,000 samples; 2 allowed.
            var torchShortcut = EstimationCounts(ml, Options(onnx: false, seed: 1), data, shortcut: true, expectShortcut: true);
            double moved = onnxShortcut.Zip(torchShortcut).Sum(p => p.First.Zip(p.Second).Sum(c => Math.Abs(c.First - c.Second))) / 2;
            Console.WriteLine($"votes that differ between the ONNX and the TorchSharp shortcut: {moved} of {onnxShortcut.Sum(r => r.Sum())}");
            Assert.IsLessThanOrEqualTo(2.0, moved, "votes that differ between the ONNX and the TorchSharp shortcut");
            // Against ONNX's direct path (d = 6 normals, another seed): the same distribution (χ² homogeneity test at 0.1 %).
            var direct = EstimationCounts(ml, Options(onnx: true, seed: 2), data, shortcut: false, expectShortcut: true);
            foreach (var row in onnxShortcut)
                Assert.IsGreaterThanOrEqualTo(2, row.Count(c => c >= 500), "the test points split their votes (otherwise the comparison is void)");
            var (stat, df) = SmoothingShortcutAndLipschitzTests.ChiSquare(onnxShortcut, direct);
            Console.WriteLine($"χ² = {stat:F2} on {df} df (0.1 % critical value {SmoothingShortcutAndLipschitzTests.ChiSquareQuantile999(df):F2})");
            Assert.IsLessThanOrEqualTo(SmoothingShortcutAndLipschitzTests.ChiSquareQuantile999(df), stat, $"χ² = {stat:F2} on {df} df: shortcut vs direct counts");
            var sameSeedDirect = EstimationCounts(ml, Options(onnx: true, seed: 1), data, shortcut: false, expectShortcut: true);
            Assert.IsFalse(onnxShortcut.Zip(sameSeedDirect).All(p => p.First.SequenceEqual(p.Second)), "the shortcut draws other noise than the direct path");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    [DataRow(SmoothingMethod.Cohen)]
    [DataRow(SmoothingMethod.BridgingCpm)]
    public void ShortcutCertificatesAreSoundOnABinaryLinearOnnxModelOver400Seeds(SmoothingMethod method)
    {
        // Logits W·x + b with W = [[1, 0.5, 0, 0], [−1, 0.5, 0.3, 0]], b = (0.1, −0.1): class 0 wins where a·x + 0.2 > 0,
        // a = W₀ − W₁ = (2, 0, −0.3, 0), so the smoothed classifier's exact radius is the distance to that hyperplane,
        // (a·x + 0.2)/|a|, and P(class 0) = Φ(radius/σ). A single Gemm with h = 2 < d = 4: the rest is the identity.
        const double alpha = 0.05, sigma = 0.25, exact = 0.3;
        var g = new OnnxGraphBuilder(opset: 13, prefix: "t_");
        g.AddInput("x", OnnxElementType.Float, [-1, 4]);
        string logits = g.Node("Gemm", ["x", g.Initializer("W", [1f, 0.5f, 0, 0, -1f, 0.5f, 0.3f, 0], 2, 4), g.Initializer("b", [0.1f, -0.1f], 2)], "logits",
            ("transB", 1L));
        g.AddOutput(logits, OnnxElementType.Float, [-1, 2]);
        double norm = Math.Sqrt(4 + 0.3f * (double)0.3f);
        float x0 = (float)((exact * norm - 0.14) / 2);
        double radius0 = (2.0 * x0 - 0.3f * (double)0.2f + (0.1f - (double)-0.1f)) / norm; // (a·x + b₀ − b₁)/|a| at x = (x0, 0.1, 0.2, −0.1)
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 400).Select(_ => new Row4 { Features = [x0, 0.1f, 0.2f, -0.1f] }));
        string path = Path.Combine(Path.GetTempPath(), $"rs-linear4-{Guid.NewGuid():N}.onnx");
        try
        {
            File.WriteAllBytes(path, g.Build("test").ToByteArray());
            var estimator = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
            {
                BaseModelOnnxPath = path, OnnxInputName = "x", OnnxOutputName = logits, Sigma = sigma, SelectionSamples = 50, EstimationSamples = 500,
                Alpha = alpha, Method = method, Seed = 7,
            });
            var transformer = estimator.Fit(data);
            Assert.IsNotNull(transformer.Sampler.Model.FirstLayer, "a Gemm with h = 2 < d = 4 gets the shortcut");
            var v = transformer.Transform(data);
            var pred = v.GetColumn<uint>(SmoothingColumnNames.PredictedLabel).ToArray();
            var radius = v.GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray();
            var abstained = v.GetColumn<bool>(SmoothingColumnNames.Abstained).ToArray();
            int failures = 0;
            for (int i = 0; i < pred.Length; i++)
            {
                if (!abstained[i] && (pred[i] != 1 || radius[i] > radius0))
                    failures++;
            }
            double bound = alpha + 3 * Math.Sqrt(alpha * (1 - alpha) / pred.Length);
            Assert.IsLessThanOrEqualTo(bound, (double)failures / pred.Length, $"{method}: {failures} of {pred.Length} certificates exceed the exact radius {radius0:F4}");
            if (method == SmoothingMethod.Cohen)
            {
                // Tightness: the mean radius is close to σΦ⁻¹(CP_lo(E[count])) with E[count] = n·Φ(radius/σ).
                double expectedCount = 500 * Normal.Cdf(radius0 / sigma);
                double typical = sigma * Normal.InverseCdf(ConfidenceBounds.ClopperPearsonLower((long)Math.Round(expectedCount), 500, alpha));
                Assert.AreEqual(typical, radius.Average(), 0.01, "mean Cohen radius");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
