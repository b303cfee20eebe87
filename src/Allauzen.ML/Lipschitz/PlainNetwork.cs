using Allauzen.ML.Torch;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Allauzen.ML.Lipschitz;

/// <summary>
/// A certified network with every constraint folded into plain weights: the form that is scored, saved and
/// exported to ONNX (Gemm / Conv / Relu / Sub / AveragePool). Its Lipschitz constant is recomputed in float64
/// from the stored float32 weights, layer by layer, as a guaranteed upper bound (see <see cref="LayerBound"/>).
/// </summary>
internal sealed class PlainNetwork : IDisposable
{
    private readonly List<Dictionary<string, Tensor>> _tensors = [];

    public PlainNetwork(IReadOnlyList<PlainLayer> layers)
    {
        Layers = layers;
        foreach (var l in layers)
        {
            var d = new Dictionary<string, Tensor>();
            foreach (var (name, (data, shape)) in l.Tensors)
                d[name] = torch.tensor(data, shape);
            _tensors.Add(d);
        }
        LayerBounds = layers.Select(LayerBound).ToArray();
        LipschitzConstant = LayerBounds.Aggregate(1.0, (a, b) => a * b);
    }

    public IReadOnlyList<PlainLayer> Layers { get; }

    /// <summary>Upper bound on each layer's l2 Lipschitz constant.</summary>
    public IReadOnlyList<double> LayerBounds { get; }

    /// <summary>Product of <see cref="LayerBounds"/>: an upper bound on the network's l2 Lipschitz constant (input → logits).</summary>
    public double LipschitzConstant { get; }

    /// <summary>Logits for a batch of flat features.</summary>
    public Tensor Forward(Tensor x)
    {
        using var kept = new KeptScalars();
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            var t = _tensors[i];
            x = l.Kind switch
            {
                PlainKind.Normalize => (x - t["mean"]) * kept.Of((float)l.Step),
                PlainKind.Reshape => x.reshape(x.shape[0], l.Dims[0], l.Dims[1], l.Dims[2]),
                PlainKind.PadChannels => l.Dims[1] == l.Dims[0] ? x : F.pad(x, [0, 0, 0, 0, 0, l.Dims[1] - l.Dims[0]]),
                PlainKind.Dense => Act(F.linear(x, t["W"], t["b"]), l.Relu),
                PlainKind.Conv => Act(F.conv2d(x, t["W"], t["b"], padding: [l.Dims[2] / 2, l.Dims[3] / 2]), l.Relu),
                PlainKind.ResidualDense => x - F.linear(F.relu(F.linear(x, t["V"], t["b"])), t["A"]),
                PlainKind.ResidualConv => x - F.conv2d(F.relu(F.conv2d(x, t["V"], t["b"], padding: [l.Dims[2] / 2, l.Dims[3] / 2])),
                    t["A"], padding: [l.Dims[2] / 2, l.Dims[3] / 2]),
                PlainKind.SumPool => l.Dims[0] == 1 ? x : F.avg_pool2d(x, l.Dims[0]) * kept.Of(l.Dims[0]),
                PlainKind.Flatten => x.flatten(1),
                _ => throw new InvalidOperationException($"Unknown layer kind {l.Kind}."),
            };
        }
        return x;
    }

    private static Tensor Act(Tensor x, bool relu) => relu ? F.relu(x) : x;

    /// <summary>Guaranteed upper bound on one layer's Lipschitz constant, from its stored weights (float64).</summary>
    internal static double LayerBound(PlainLayer l)
    {
        // Gram iteration in float64 can sit ~1e-15 below the exact value once converged: cover the rounding.
        const double Round = 1 + 1e-12;
        using var scope = torch.NewDisposeScope();
        using var kept = new KeptScalars();
        Tensor D(string name)
        {
            var (data, shape) = l.T(name);
            return torch.tensor(data, shape).to(ScalarType.Float64);
        }
        switch (l.Kind)
        {
            case PlainKind.Normalize:
                return Math.Abs(l.Step);
            case PlainKind.Dense:
                return GramIteration.Dense(D("W"), 12).item<double>() * Round;
            case PlainKind.Conv:
            {
                var k = D("W");
                return ZeroPadBound(k, l.Dims[4], l.Dims[5]) * Round;
            }
            case PlainKind.ResidualDense:
            {
                var v = D("V");
                double s = GramIteration.Dense(v, 12).item<double>() * Round;
                double e = (D("A") - v.t() * kept.Of(l.Step)).norm().item<double>();
                return ResidualBound(l.Step, s, e);
            }
            case PlainKind.ResidualConv:
            {
                var v = D("V");
                double s = ZeroPadBound(v, l.Dims[4], l.Dims[5]) * Round;
                // ‖conv(E)‖ ≤ Σ_spatial ‖E_s‖₂ ≤ Σ_spatial ‖E_s‖_F.
                var err = D("A") - LipschitzModule.AdjointKernel(v) * kept.Of(l.Step);
                double e = err.square().sum([0, 1]).sqrt().sum().item<double>();
                return ResidualBound(l.Step, s, e);
            }
            default:
                return 1.0;
        }
    }

    /// <summary>
    /// x − A·ReLU(Vx + b) with A = hVᵀ + E: the Jacobian I − hVᵀDV − EDV (D diagonal in [0, 1]) has norm at most
    /// max(1, hσ² − 1) + ‖E‖σ.
    /// </summary>
    internal static double ResidualBound(double h, double sigma, double e) => Math.Max(1, h * sigma * sigma - 1) + e * sigma;

    /// <summary>Zero-padding bound: circular Gram on the (h+k−1) × (w+k−1) grid.</summary>
    internal static double ZeroPadBound(Tensor k, int h, int w) =>
        GramIteration.Circular(k, h + (int)k.shape[2] - 1, w + (int)k.shape[3] - 1, 10).item<double>();

    public void Save(ModelPayloadWriter writer)
    {
        writer.WriteJson("layers", Layers);
        for (int i = 0; i < Layers.Count; i++)
        {
            foreach (var (name, (data, shape)) in Layers[i].Tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                writer.WriteTensor($"layer{i}.{name}", data, shape);
        }
    }

    /// <summary>
    /// Reads the layers back, checking the chain before any tensor is read or built: the first layer is the input
    /// normalisation of <paramref name="featureCount"/> features, every layer's dimensions continue the previous layer's
    /// output, the last gives <paramref name="outputs"/> flat logits, and every tensor has the shape its layer implies.
    /// </summary>
    public static List<PlainLayer> ReadLayers(ModelPayloadReader reader, int featureCount, out int outputs)
    {
        var specs = reader.ReadJson<PlainLayer?[]>("layers");
        reader.Require(specs.Length >= 1, "layers", "the layer list", "is empty");
        var layers = new List<PlainLayer>();
        var shapes = new List<(string Name, long[] Shape)>[specs.Length];
        long f = featureCount, c = 0, h = 0, w = 0;
        bool image = false;
        for (int i = 0; i < specs.Length; i++)
        {
            string at = $"layer {i}";
            if (specs[i] is not { Dims: not null } l || !Enum.IsDefined(l.Kind))
                throw reader.Invalid("layers", at, "is not a defined layer");
            var d = l.Dims;
            void Need(bool ok, string rule) => reader.Require(ok, "layers", $"{at} ({l.Kind}, dims [{string.Join(", ", d)}])", rule);
            void Dims(int count) => Need(d.Length == count && d.All(x => x >= 1), $"needs {count} positive dimensions");
            bool takesImage = l.Kind is PlainKind.PadChannels or PlainKind.Conv or PlainKind.ResidualConv or PlainKind.SumPool or PlainKind.Flatten;
            Need(takesImage == image, takesImage ? "needs an image input" : "needs flat features");
            Need(i > 0 || l.Kind == PlainKind.Normalize, "must be the input normalisation");
            var t = shapes[i] = [];
            switch (l.Kind)
            {
                case PlainKind.Normalize:
                    Dims(1);
                    Need(d[0] == f && double.IsFinite(l.Step), $"must take the {f} features it receives, with a finite scale");
                    t.Add(("mean", [f]));
                    break;
                case PlainKind.Reshape:
                    Dims(3);
                    Need((long)d[0] * d[1] * d[2] == f, $"must reshape the {f} features it receives");
                    (c, h, w, image) = (d[0], d[1], d[2], true);
                    break;
                case PlainKind.PadChannels:
                    Dims(2);
                    Need(d[0] == c && d[1] >= d[0], $"must pad the {c} channels it receives");
                    c = d[1];
                    break;
                case PlainKind.Dense:
                    Dims(2);
                    Need(d[1] == f, $"must take the {f} features it receives");
                    t.Add(("W", [d[0], d[1]]));
                    t.Add(("b", [d[0]]));
                    f = d[0];
                    break;
                case PlainKind.ResidualDense:
                    Dims(2);
                    Need(d[1] == f && double.IsFinite(l.Step), $"must take the {f} features it receives, with a finite step");
                    t.Add(("V", [d[0], d[1]]));
                    t.Add(("b", [d[0]]));
                    t.Add(("A", [d[1], d[0]]));
                    break;
                case PlainKind.Conv:
                case PlainKind.ResidualConv:
                    Dims(6);
                    bool residual = l.Kind == PlainKind.ResidualConv;
                    Need(d[1] == c && d[4] == h && d[5] == w && d[2] % 2 == 1 && d[3] % 2 == 1 && (!residual || double.IsFinite(l.Step)),
                        $"must take the {c}×{h}×{w} image it receives with an odd kernel");
                    t.Add((residual ? "V" : "W", [d[0], d[1], d[2], d[3]]));
                    t.Add(("b", [d[0]]));
                    if (residual)
                        t.Add(("A", [d[1], d[0], d[2], d[3]]));
                    else
                        c = d[0];
                    break;
                case PlainKind.SumPool:
                    Dims(1);
                    Need(d[0] <= h && d[0] <= w, $"must fit the {h}×{w} image it receives");
                    (h, w) = (h / d[0], w / d[0]);
                    break;
                case PlainKind.Flatten:
                    (f, image) = (c * h * w, false);
                    break;
            }
        }
        reader.Require(!image && f >= 1, "layers", "the last layer", "must give flat logits");
        outputs = (int)f;
        for (int i = 0; i < specs.Length; i++)
        {
            var tensors = new Dictionary<string, (float[], long[])>();
            foreach (var (name, shape) in shapes[i])
                tensors[name] = (reader.ReadTensor($"layer{i}.{name}", shape), shape);
            layers.Add(specs[i]! with { Tensors = tensors });
        }
        return layers;
    }

    /// <summary>Emits the logits graph; returns the logits tensor name.</summary>
    public string EmitOnnx(OnnxGraphBuilder g, string x)
    {
        for (int i = 0; i < Layers.Count; i++)
        {
            var l = Layers[i];
            string p = $"lip{i}";
            string Init(string name)
            {
                var (data, shape) = l.T(name);
                return g.Initializer($"{p}_{name}", data, shape);
            }
            long[] Pads() => [l.Dims[2] / 2, l.Dims[3] / 2, l.Dims[2] / 2, l.Dims[3] / 2];
            switch (l.Kind)
            {
                case PlainKind.Normalize:
                    x = g.Node("Sub", [x, Init("mean")], $"{p}_centred");
                    x = g.Node("Mul", [x, g.Initializer($"{p}_scale", [(float)l.Step], 1)], $"{p}_normalized");
                    break;
                case PlainKind.Reshape:
                    x = g.Node("Reshape", [x, g.Initializer($"{p}_shape", [-1L, l.Dims[0], l.Dims[1], l.Dims[2]], 4)], $"{p}_image");
                    break;
                case PlainKind.PadChannels:
                    if (l.Dims[1] != l.Dims[0])
                        x = g.Node("Pad", [x, g.Initializer($"{p}_pads", [0L, 0, 0, 0, 0, l.Dims[1] - l.Dims[0], 0, 0], 8)], $"{p}_padded");
                    break;
                case PlainKind.Dense:
                    x = g.Node("Gemm", [x, Init("W"), Init("b")], $"{p}_gemm", ("transB", 1L));
                    if (l.Relu)
                        x = g.Node("Relu", [x], $"{p}_relu");
                    break;
                case PlainKind.Conv:
                    x = g.Node("Conv", [x, Init("W"), Init("b")], $"{p}_conv", ("pads", Pads()));
                    if (l.Relu)
                        x = g.Node("Relu", [x], $"{p}_relu");
                    break;
                case PlainKind.ResidualDense:
                {
                    string u = g.Node("Relu", [g.Node("Gemm", [x, Init("V"), Init("b")], $"{p}_inner", ("transB", 1L))], $"{p}_relu");
                    string a = g.Node("Gemm", [u, Init("A")], $"{p}_back", ("transB", 1L));
                    x = g.Node("Sub", [x, a], $"{p}_out");
                    break;
                }
                case PlainKind.ResidualConv:
                {
                    string u = g.Node("Relu", [g.Node("Conv", [x, Init("V"), Init("b")], $"{p}_inner", ("pads", Pads()))], $"{p}_relu");
                    string a = g.Node("Conv", [u, Init("A")], $"{p}_back", ("pads", Pads()));
                    x = g.Node("Sub", [x, a], $"{p}_out");
                    break;
                }
                case PlainKind.SumPool:
                    if (l.Dims[0] > 1)
                    {
                        long k = l.Dims[0];
                        x = g.Node("AveragePool", [x], $"{p}_pool", ("kernel_shape", new[] { k, k }), ("strides", new[] { k, k }));
                        x = g.Node("Mul", [x, g.Initializer($"{p}_k", [(float)k], 1)], $"{p}_sum");
                    }
                    break;
                case PlainKind.Flatten:
                    x = g.Node("Flatten", [x], $"{p}_flat", ("axis", 1L));
                    break;
            }
        }
        return x;
    }

    public void Dispose()
    {
        foreach (var d in _tensors)
        {
            foreach (var t in d.Values)
                t.Dispose();
        }
        _tensors.Clear();
    }
}
