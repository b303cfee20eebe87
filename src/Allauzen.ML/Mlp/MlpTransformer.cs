using Allauzen.ML.Core;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Mlp.MlpTransformer), Allauzen.ML.Mlp.MlpTransformer.Signature, "Mlp")]

namespace Allauzen.ML.Mlp;

/// <summary>
/// A trained MLP classifier. It appends <c>Score</c> (class probabilities) and <c>PredictedLabel</c>,
/// scoring rows in batches; it saves with <c>ml.Model.Save</c>, loads with <c>ml.Model.Load</c> and
/// exports to ONNX with <c>ml.Model.ExportToOnnx</c>.
/// </summary>
public sealed class MlpTransformer : AllauzenClassifierTransformerBase
{
    internal const string Signature = "ALZ-MLP_";
    private const int Version = 1;
    private MlpNetwork? _net;

    internal MlpTransformer(IHostEnvironment env, MlpNetwork net, string featureColumnName, LabelNames classes,
        string scoreColumnName, string predictedLabelColumnName)
        : base(env, "Allauzen.Mlp", featureColumnName, net.Architecture.InputSize, classes, scoreColumnName, predictedLabelColumnName)
    {
        _net = net;
        _net.eval();
    }

    /// <summary>Widths of the hidden layers.</summary>
    public IReadOnlyList<int> HiddenSizes => Net.Architecture.HiddenSizes;

    /// <summary>Activation of the hidden layers.</summary>
    public MlpActivation Activation => Net.Architecture.Activation;

    /// <summary>
    /// Certified upper bound on the L2 Lipschitz constant of the map features → logits (before the softmax): the product of
    /// the linear layers' Gram-iteration bounds (float64) and of the activations' constants (ReLU, leaky ReLU, tanh: 1;
    /// sigmoid: 1/4; GELU: 1.13). Usable by certifiers (e.g. a radius (top1 − top2)/(√2·L) on the logits).
    /// </summary>
    /// <param name="iterations">Gram iterations per layer (default 12; more is tighter, never below the true norm).</param>
    public double LipschitzBound(int iterations = 12)
    {
        if (iterations < 1 || iterations > 30)
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "iterations must be in [1, 30].");
        double bound = 1;
        var layers = Net.LinearLayers().ToArray();
        foreach (var (_, layer) in layers)
        {
            using var w = layer.weight!.detach().cpu().contiguous();
            bound *= Lipschitz.SpectralNorm.Dense(w.data<float>().ToArray(), (int)w.shape[0], (int)w.shape[1], iterations).Value * (1 + 1e-12);
        }
        double act = Activation switch
        {
            MlpActivation.Sigmoid => 0.25,
            MlpActivation.Gelu => 1.13,
            _ => 1.0,
        };
        return bound * Math.Pow(act, layers.Length - 1);
    }

    private MlpNetwork Net => _net ?? throw new ObjectDisposedException(nameof(MlpTransformer));

    private protected override string ComponentName => "Mlp";

    private protected override string LoaderSignature => Signature;

    private protected override int PayloadVersion => Version;

    private protected override torch.Device NetworkDevice => Net.LinearLayers().First().Layer.weight!.device;

    private protected override Tensor ForwardLogits(Tensor features) => Net.forward(features);

    private protected override torch.nn.Module LogitsNetwork => Net;

    private protected override double? LipschitzUpperBound() => LipschitzBound();

    private protected override void SaveSettings(ModelPayloadWriter writer) => writer.WriteJson("architecture", Net.Architecture);

    private protected override void SaveNetwork(ModelPayloadWriter writer)
    {
        foreach (var (name, p) in Net.named_parameters())
        {
            using var cpu = p.detach().cpu().contiguous();
            writer.WriteTensor(name, cpu.data<float>().ToArray(), cpu.shape);
        }
    }

    /// <summary>
    /// Rebuilds a transformer from its payload (registered in <see cref="AllauzenLoaders"/>). The architecture is checked
    /// with <see cref="MlpOptions"/>' own rules, and every stored tensor against the shape it implies, before the network is built.
    /// </summary>
    internal static MlpTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        var a = payload.ReadJson<MlpArchitecture>("architecture");
        payload.ValidateSettings("architecture", () => new MlpOptions { HiddenSizes = a.HiddenSizes, Activation = a.Activation, Dropout = a.Dropout }.Validate());
        payload.Require(a.InputSize >= 1, "architecture", nameof(a.InputSize), $"must be at least 1 (got {a.InputSize})");
        payload.Require(a.Classes >= 1, "architecture", nameof(a.Classes), $"must be at least 1 (got {a.Classes})");
        var header = ClassifierHeader.Read(payload, a.Classes);
        var tensors = MlpNetwork.ParameterShapes(a).Select(p => (p.Name, p.Shape, Data: payload.ReadTensor(p.Name, p.Shape))).ToArray();

        TorchRuntime.EnsureInitialized();
        var net = new MlpNetwork(a);
        try
        {
            using (torch.no_grad())
            {
                var parameters = net.named_parameters().ToArray();
                if (parameters.Length != tensors.Length)
                    throw new InvalidOperationException($"Mlp: the network has {parameters.Length} parameters, the architecture implies {tensors.Length}.");
                for (int i = 0; i < parameters.Length; i++)
                {
                    var (name, p) = parameters[i];
                    if (name != tensors[i].Name || !p.shape.SequenceEqual(tensors[i].Shape))
                        throw new InvalidOperationException($"Mlp: parameter '{name}' [{string.Join(", ", p.shape)}] does not match '{tensors[i].Name}'.");
                    using var t = torch.tensor(tensors[i].Data, tensors[i].Shape);
                    p.copy_(t);
                }
            }
            return new MlpTransformer(env, net, header.FeatureColumnName, header.Classes, header.ScoreColumnName, header.PredictedLabelColumnName);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    private protected override string EmitLogits(OnnxGraphBuilder graph, string features)
    {
        string x = features;
        var layers = Net.LinearLayers().ToArray();
        for (int i = 0; i < layers.Length; i++)
        {
            var (name, layer) = layers[i];
            using var w = layer.weight!.detach().cpu().contiguous();
            using var b = layer.bias!.detach().cpu().contiguous();
            string wt = graph.Initializer($"{name}_weight", w.data<float>().ToArray(), w.shape);
            string bt = graph.Initializer($"{name}_bias", b.data<float>().ToArray(), b.shape);
            x = graph.Node("Gemm", [x, wt, bt], $"{name}_out", ("transB", 1L));
            if (i < layers.Length - 1)
                x = EmitActivation(graph, x, $"act{i}");
        }
        return x;
    }

    private string EmitActivation(OnnxGraphBuilder g, string x, string name)
    {
        switch (Activation)
        {
            case MlpActivation.Tanh:
                return g.Node("Tanh", [x], name);
            case MlpActivation.Sigmoid:
                return g.Node("Sigmoid", [x], name);
            case MlpActivation.LeakyRelu:
                return g.Node("LeakyRelu", [x], name, ("alpha", 0.01f));
            case MlpActivation.Gelu:
                // gelu(x) = 0.5 · x · (1 + erf(x / √2))
                string sqrt2 = g.Initializer($"{name}_sqrt2", [MathF.Sqrt(2f)], 1);
                string half = g.Initializer($"{name}_half", [0.5f], 1);
                string one = g.Initializer($"{name}_one", [1f], 1);
                string erf = g.Node("Erf", [g.Node("Div", [x, sqrt2], $"{name}_div")], $"{name}_erf");
                string inner = g.Node("Add", [erf, one], $"{name}_add");
                return g.Node("Mul", [g.Node("Mul", [x, half], $"{name}_halfx"), inner], name);
            default:
                return g.Node("Relu", [x], name);
        }
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _net?.Dispose();
            _net = null;
        }
        base.Dispose(disposing);
    }
}
