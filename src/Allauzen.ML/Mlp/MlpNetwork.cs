using Allauzen.ML.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Allauzen.ML.Mlp;

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
        var modules = LinearStack.Hidden(a.InputSize, a.HiddenSizes, () => Activation(a.Activation), a.Dropout);
        modules.Add(("out", nn.Linear(LinearStack.OutputWidth(a.InputSize, a.HiddenSizes), a.Classes)));
        _layers = nn.Sequential(modules);
        RegisterComponents();
    }

    public MlpArchitecture Architecture { get; }

    /// <summary>
    /// Name and shape of every parameter the network of <paramref name="a"/> has, in <c>named_parameters()</c> order,
    /// computed without building it (a loader checks the stored tensors against them first).
    /// </summary>
    public static IEnumerable<(string Name, long[] Shape)> ParameterShapes(MlpArchitecture a) =>
        LinearStack.HiddenShapes(nameof(_layers), a.InputSize, a.HiddenSizes).Concat(
        [
            ($"{nameof(_layers)}.out.weight", [a.Classes, LinearStack.OutputWidth(a.InputSize, a.HiddenSizes)]),
            ($"{nameof(_layers)}.out.bias", [a.Classes]),
        ]);

    /// <summary>The linear layers in order, by name: fc0, fc1, …, out.</summary>
    public IEnumerable<(string Name, Linear Layer)> LinearLayers() => LinearStack.LinearLayers(_layers);

    public override Tensor forward(Tensor x) => _layers.forward(x);

    private static nn.Module<Tensor, Tensor> Activation(MlpActivation a) => a switch
    {
        MlpActivation.Tanh => nn.Tanh(),
        MlpActivation.Sigmoid => nn.Sigmoid(),
        MlpActivation.Gelu => nn.GELU(),
        MlpActivation.LeakyRelu => new LeakyRelu(0.01),
        _ => nn.ReLU(),
    };

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _layers.Dispose();
        base.Dispose(disposing);
    }
}
