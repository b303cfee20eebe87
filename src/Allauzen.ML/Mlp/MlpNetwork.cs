using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Allauzen.ML.Mlp;

/// <summary>The architecture of a trained MLP: what is needed to rebuild the network (persisted as JSON).</summary>
internal sealed record MlpArchitecture(int InputSize, int[] HiddenSizes, int Classes, MlpActivation Activation, double Dropout);

/// <summary>
/// The MLP as a TorchSharp module: <c>fc0 → act0 → drop0 → … → out</c>, returning logits. Layers are
/// named so that persistence, ONNX export and diagnostics address them by name.
/// </summary>
internal sealed class MlpNetwork : nn.Module<Tensor, Tensor>
{
    private readonly Sequential _layers;

    public MlpNetwork(MlpArchitecture a) : base("Mlp")
    {
        Architecture = a;
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        int width = a.InputSize;
        for (int i = 0; i < a.HiddenSizes.Length; i++)
        {
            modules.Add(($"fc{i}", nn.Linear(width, a.HiddenSizes[i])));
            modules.Add(($"act{i}", Activation(a.Activation)));
            if (a.Dropout > 0)
                modules.Add(($"drop{i}", nn.Dropout(a.Dropout)));
            width = a.HiddenSizes[i];
        }
        modules.Add(("out", nn.Linear(width, a.Classes)));
        _layers = nn.Sequential(modules);
        RegisterComponents();
    }

    public MlpArchitecture Architecture { get; }

    /// <summary>
    /// Name and shape of every parameter the network of <paramref name="a"/> has, in <c>named_parameters()</c> order,
    /// computed without building it (a loader checks the stored tensors against them first).
    /// </summary>
    public static IEnumerable<(string Name, long[] Shape)> ParameterShapes(MlpArchitecture a)
    {
        long width = a.InputSize;
        for (int i = 0; i <= a.HiddenSizes.Length; i++)
        {
            string layer = i < a.HiddenSizes.Length ? $"fc{i}" : "out";
            long size = i < a.HiddenSizes.Length ? a.HiddenSizes[i] : a.Classes;
            yield return ($"{nameof(_layers)}.{layer}.weight", [size, width]);
            yield return ($"{nameof(_layers)}.{layer}.bias", [size]);
            width = size;
        }
    }

    /// <summary>The linear layers in order, by name: fc0, fc1, …, out.</summary>
    public IEnumerable<(string Name, Linear Layer)> LinearLayers()
    {
        foreach (var (name, module) in _layers.named_children())
        {
            if (module is Linear l)
                yield return (name, l);
        }
    }

    public override Tensor forward(Tensor x) => _layers.forward(x);

    private static nn.Module<Tensor, Tensor> Activation(MlpActivation a) => a switch
    {
        MlpActivation.Tanh => nn.Tanh(),
        MlpActivation.Sigmoid => nn.Sigmoid(),
        MlpActivation.Gelu => nn.GELU(),
        MlpActivation.LeakyRelu => nn.LeakyReLU(0.01),
        _ => nn.ReLU(),
    };

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _layers.Dispose();
        base.Dispose(disposing);
    }
}
