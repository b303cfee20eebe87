using Allauzen.ML.Core;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Foton.FotonTransformer), Allauzen.ML.Foton.FotonTransformer.Signature, "Foton")]

namespace Allauzen.ML.Foton;

/// <summary>
/// A trained FOTON network (whichever algorithm trained it): a bias-free MLP (optionally preceded by
/// patch-orthogonal convolutions) scored in batches. It appends
/// <c>Score</c> (class probabilities) and <c>PredictedLabel</c>, saves with <c>ml.Model.Save</c>, loads with
/// <c>ml.Model.Load</c> and exports to ONNX as a chain of Gemm and activation nodes.
/// </summary>
public sealed class FotonTransformer : AllauzenClassifierTransformerBase
{
    internal const string Signature = "ALZFOTON";
    private const int Version = 1;
    private readonly FotonArchitecture _arch;

    // The only copy of the weights: libtorch tensors, float32, contiguous, offset 0 in their own storage (so that a
    // freshly trained model and a reloaded one go through the same kernels and score bit-identically). Everything
    // that needs the values as floats (GetWeights, LipschitzBound, SavePayload, ONNX) copies one layer at a time.
    private OrthogonalMlp? _net;

    /// <summary>
    /// Takes ownership of <paramref name="network"/> (trained weights, on the CPU or a device; the transformer disposes
    /// them). Weights already float32, contiguous and at offset 0 of their storage are kept as they are (no copy);
    /// any other is replaced by a float32 contiguous copy on the same device.
    /// </summary>
    internal FotonTransformer(IHostEnvironment env, OrthogonalMlp network, FotonAlgorithm algorithm,
        string featureColumnName, LabelNames classes, string scoreColumnName, string predictedLabelColumnName)
        : base(env, "Allauzen.Foton", featureColumnName, network.Architecture.InputSize, classes, scoreColumnName, predictedLabelColumnName)
    {
        _arch = network.Architecture;
        Algorithm = algorithm;
        _net = ToScoringLayout(network);
    }

    /// <summary>
    /// Builds a transformer from row-major [d_out, d_in] weight arrays (used by <see cref="Load"/>): each is copied
    /// into a libtorch-allocated tensor and the arrays are not kept.
    /// </summary>
    internal static FotonTransformer FromArrays(IHostEnvironment env, FotonArchitecture architecture, float[][] weights, FotonAlgorithm algorithm,
        string featureColumnName, LabelNames classes, string scoreColumnName, string predictedLabelColumnName)
    {
        TorchRuntime.EnsureInitialized();
        var shapes = architecture.Shapes();
        if (weights.Length != shapes.Length)
            throw new ArgumentException($"Expected {shapes.Length} weight matrices, got {weights.Length}.", nameof(weights));
        var tensors = new Tensor[shapes.Length];
        try
        {
            for (int i = 0; i < shapes.Length; i++)
            {
                // Copied into libtorch-allocated (aligned) memory: a tensor over a pinned managed array may take
                // another kernel path, and scores must be bit-identical whichever way the weights arrived.
                using var view = torch.tensor(weights[i], [shapes[i].Out, shapes[i].In]);
                tensors[i] = view.clone().DetachFromDisposeScope();
            }
            return new FotonTransformer(env, new OrthogonalMlp(architecture, tensors), algorithm,
                featureColumnName, classes, scoreColumnName, predictedLabelColumnName);
        }
        catch
        {
            foreach (var t in tensors)
                t?.Dispose();
            throw;
        }
    }

    /// <summary>Makes every weight float32, contiguous and at offset 0 of its own storage, copying only those that are not.</summary>
    private static OrthogonalMlp ToScoringLayout(OrthogonalMlp network)
    {
        TorchRuntime.EnsureInitialized();
        var weights = network.Weights;
        for (int i = 0; i < weights.Length; i++)
        {
            var w = weights[i];
            if (w.dtype == ScalarType.Float32 && !w.requires_grad && w.is_contiguous() && w.storage_offset() == 0)
            {
                w.DetachFromDisposeScope();
                continue;
            }
            using (torch.NewDisposeScope())
            using (torch.no_grad())
            {
                var copy = torch.empty(w.shape, ScalarType.Float32, w.device);
                copy.copy_(w);
                weights[i] = copy.DetachFromDisposeScope();
            }
            w.Dispose();
        }
        return network;
    }

    /// <summary>The scoring network (internal: tests check its layout).</summary>
    internal OrthogonalMlp Network => Net;

    /// <summary>A fresh float[] copy of layer <paramref name="i"/>'s weights, row-major.</summary>
    private float[] LayerValues(int i)
    {
        var w = Net.Weights[i];
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return w.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
    }

    /// <summary>Widths of the hidden layers.</summary>
    public IReadOnlyList<int> HiddenSizes => _arch.HiddenSizes;

    /// <summary>Activation of the hidden layers.</summary>
    public FotonActivation Activation => _arch.Activation;

    /// <summary>The algorithm that trained the network.</summary>
    public FotonAlgorithm Algorithm { get; }

    /// <summary>Output channels of the convolution layers (empty when there are none).</summary>
    public IReadOnlyList<int> ConvolutionChannels => _arch.ConvChannels ?? [];

    /// <summary>Layer names, input side first: conv0, …, fc0, fc1, …, out.</summary>
    public IReadOnlyList<string> LayerNames => _arch.LayerNames();

    /// <summary>A copy of the weight matrix of layer <paramref name="name"/>, row-major [d_out, d_in] ([C_out, C_in·k·k] for a convolution).</summary>
    public float[] GetWeights(string name)
    {
        int i = Array.IndexOf(_arch.LayerNames(), name);
        if (i < 0)
            throw new ArgumentException($"No layer '{name}'; the layers are {string.Join(", ", _arch.LayerNames())}.", nameof(name));
        return LayerValues(i);
    }

    /// <summary>max |WWᵀ − I| (|WᵀW − I| for tall layers) of each layer, by name.</summary>
    public IReadOnlyDictionary<string, double> OrthogonalityErrors()
    {
        TorchRuntime.EnsureInitialized();
        var net = Net;
        return net.Names.Select((n, i) => (n, e: Bjorck.OrthogonalityError(net.Weights[i]))).ToDictionary(t => t.n, t => t.e);
    }

    /// <summary>
    /// Certified upper bound on the L2 Lipschitz constant of the map features → logits: the product of the layers'
    /// Gram-iteration spectral-norm bounds (float64). Every activation here (ReLU, tanh, MaxMin, identity) is
    /// 1-Lipschitz, and a patch-orthogonal convolution (stride = kernel, no padding) is block-diagonal over its
    /// patches, so its norm is that of its [C_out, C_in·k·k] matrix. For an orthonormal network the bound is ≈ 1
    /// (1 + the orthogonality error); usable by certifiers such as the randomized-smoothing transform.
    /// </summary>
    /// <param name="iterations">
    /// Gram iterations per layer (default 20; more is tighter, never below the true norm). An orthonormal layer of rank r
    /// has all its singular values equal, where the Gram bound r^(2^−t) converges slowest (1.0014 for r = 256 at t = 12,
    /// 1 + 5e-6 at t = 20), hence the higher default than the Mlp's.
    /// </param>
    public double LipschitzBound(int iterations = 20)
    {
        if (iterations < 1 || iterations > 30)
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "iterations must be in [1, 30].");
        var shapes = _arch.Shapes();
        double bound = 1;
        for (int i = 0; i < shapes.Length; i++)
            bound *= Lipschitz.SpectralNorm.Dense(LayerValues(i), shapes[i].Out, shapes[i].In, iterations).Value * (1 + 1e-12);
        return bound;
    }

    private OrthogonalMlp Net => _net ?? throw new ObjectDisposedException(nameof(FotonTransformer));

    private protected override torch.Device NetworkDevice => Net.Weights[0].device;

    private protected override Tensor ForwardLogits(Tensor features) => Net.Forward(features, null).Y!;

    private protected override double? LipschitzUpperBound() => LipschitzBound();

    private protected override string ComponentName => "Foton";

    private protected override string LoaderSignature => Signature;

    private protected override int PayloadVersion => Version;

    private protected override void SaveSettings(ModelPayloadWriter writer)
    {
        writer.WriteJson("architecture", _arch);
        writer.WriteString("algorithm", Algorithm.ToString());
    }

    private protected override void SaveNetwork(ModelPayloadWriter writer)
    {
        var shapes = _arch.Shapes();
        var names = _arch.LayerNames();
        for (int i = 0; i < names.Length; i++)
            writer.WriteTensor(names[i], LayerValues(i), [shapes[i].Out, shapes[i].In]);
    }

    /// <summary>
    /// Rebuilds a transformer from its payload (registered in <see cref="AllauzenLoaders"/>). The architecture is checked
    /// with <see cref="FotonOptions"/>' own rules, and every stored weight against the shape it implies, before anything is built.
    /// </summary>
    internal static FotonTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        var a = payload.ReadJson<FotonArchitecture>("architecture");
        CheckArchitecture(payload, a);
        var header = ClassifierHeader.Read(payload, a.Classes);
        string algorithmName = payload.ReadString("algorithm");
        if (!Enum.TryParse<FotonAlgorithm>(algorithmName, out var algorithm) || !Enum.IsDefined(algorithm))
            throw payload.Invalid("algorithm", "the algorithm", $"'{algorithmName}' is not a FotonAlgorithm");
        var shapes = a.Shapes();
        var names = a.LayerNames();
        var weights = new float[names.Length][];
        for (int i = 0; i < names.Length; i++)
            weights[i] = payload.ReadTensor(names[i], [shapes[i].Out, shapes[i].In]);
        return FromArrays(env, a, weights, algorithm, header.FeatureColumnName, header.Classes,
            header.ScoreColumnName, header.PredictedLabelColumnName);
    }

    /// <summary>The options' rules, then the widths: every layer's input is the previous layer's output, in range.</summary>
    private static void CheckArchitecture(ModelPayloadReader payload, FotonArchitecture a)
    {
        const string Entry = "architecture";
        payload.ValidateSettings(Entry, () => new FotonOptions
        {
            HiddenSizes = a.HiddenSizes, Activation = a.Activation, InputShape = a.InputShape,
            ConvolutionChannels = a.ConvChannels ?? [], ConvolutionKernel = a.ConvKernel,
        }.Validate());
        payload.Require(a.InputSize >= 1, Entry, nameof(a.InputSize), $"must be at least 1 (got {a.InputSize})");
        payload.Require(a.Classes >= 1, Entry, nameof(a.Classes), $"must be at least 1 (got {a.Classes})");
        if (a.ConvCount == 0)
            return;
        long c = a.InputShape![0], h = a.InputShape[1], w = a.InputShape[2], k = a.ConvKernel;
        payload.Require(c * h * w == a.InputSize, Entry, nameof(a.InputShape),
            $"[{string.Join(", ", a.InputShape)}] holds {c * h * w} values, not InputSize = {a.InputSize}");
        foreach (int channels in a.ConvChannels!)
        {
            h /= k;
            w /= k;
            payload.Require(c * k * k <= int.MaxValue && channels * h * w <= int.MaxValue, Entry, nameof(a.ConvChannels),
                $"give a layer wider than {int.MaxValue}");
            payload.Require(a.Activation != FotonActivation.MaxMin || channels * h * w % 2 == 0, Entry, nameof(a.ConvChannels),
                $"give a convolution output of {channels * h * w} values, odd with the MaxMin activation");
            c = channels;
        }
    }

    private protected override string EmitLogits(OnnxGraphBuilder graph, string features)
    {
        string x = features;
        var shapes = _arch.Shapes();
        var names = _arch.LayerNames();
        var widths = _arch.FlatWidths();
        for (int i = 0; i < names.Length; i++)
        {
            if (i < _arch.ConvCount)
            {
                // The patch-orthogonal convolution: a Conv with stride = kernel on the (C, H, W) view.
                var c = _arch.Conv(i);
                string w = graph.Initializer($"{names[i]}_weight", LayerValues(i), c.OutChannels, c.InChannels, c.Kernel, c.Kernel);
                string inShape = graph.Initializer($"{names[i]}_in_shape", new long[] { -1, c.InChannels, c.Height, c.Width }, 4);
                string outShape = graph.Initializer($"{names[i]}_out_shape", new long[] { -1, c.OutputSize }, 2);
                string image = graph.Node("Reshape", [x, inShape], $"{names[i]}_image");
                string conv = graph.Node("Conv", [image, w], $"{names[i]}_conv",
                    ("kernel_shape", new long[] { c.Kernel, c.Kernel }), ("strides", new long[] { c.Kernel, c.Kernel }));
                x = graph.Node("Reshape", [conv, outShape], $"{names[i]}_out");
            }
            else
            {
                string w = graph.Initializer($"{names[i]}_weight", LayerValues(i), shapes[i].Out, shapes[i].In);
                x = graph.Node("Gemm", [x, w], $"{names[i]}_out", ("transB", 1L));
            }
            if (i < names.Length - 1)
                x = EmitActivation(graph, x, $"act{i}", widths[i + 1]);
        }
        return x;
    }

    private string EmitActivation(OnnxGraphBuilder g, string x, string name, int width)
    {
        switch (Activation)
        {
            case FotonActivation.Tanh:
                return g.Node("Tanh", [x], name);
            case FotonActivation.Identity:
                return x;
            case FotonActivation.MaxMin:
                // a | b halves → max(a, b) | min(a, b)
                long half = width / 2;
                string axes = g.Initializer($"{name}_axes", [1L], 1);
                string s0 = g.Initializer($"{name}_s0", [0L], 1);
                string s1 = g.Initializer($"{name}_s1", [half], 1);
                string s2 = g.Initializer($"{name}_s2", [(long)width], 1);
                string a = g.Node("Slice", [x, s0, s1, axes], $"{name}_a");
                string b = g.Node("Slice", [x, s1, s2, axes], $"{name}_b");
                return g.Node("Concat", [g.Node("Max", [a, b], $"{name}_max"), g.Node("Min", [a, b], $"{name}_min")], name, ("axis", 1L));
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
