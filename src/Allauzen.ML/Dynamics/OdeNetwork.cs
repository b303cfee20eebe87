using Allauzen.ML.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Allauzen.ML.Dynamics;

/// <summary>What is needed to rebuild f_θ (persisted as JSON): sizes and the fixed input standardisation.</summary>
internal sealed record NeuralOdeArchitecture(int StateSize, int[] HiddenSizes, float[] InputMean, float[] InputScale)
{
    /// <summary>Throws when the persisted fields are inconsistent (read from an untrusted file).</summary>
    public void Validate(string source)
    {
        if (StateSize < 1 || StateSize > 1 << 16 || HiddenSizes is null || HiddenSizes.Length > 64
            || HiddenSizes.Any(h => h < 1 || h > 1 << 16) || InputMean is null || InputScale is null
            || InputMean.Length != StateSize || InputScale.Length != StateSize
            || InputMean.Any(m => !float.IsFinite(m)) || InputScale.Any(s => !(s > 0) || !float.IsFinite(s)))
            throw new InvalidDataException($"NeuralOde model '{source}': the architecture is invalid.");
    }
}

/// <summary>
/// The vector field f_θ(x) = MLP((x − μ)/s): an MLP with ReLU hidden layers (<c>fc0 → relu → … → out</c>) applied to
/// the state standardised with the training states' mean μ and standard deviation s (fixed, not trained), returning
/// dx/dt in index time units (one sample interval = time 1).
/// </summary>
internal sealed class OdeNetwork : nn.Module<Tensor, Tensor>
{
    private readonly Sequential _layers;
    private readonly Tensor _mean;
    private readonly Tensor _scale;

    public OdeNetwork(NeuralOdeArchitecture a) : base("NeuralOde")
    {
        Architecture = a;
        var modules = LinearStack.Hidden(a.StateSize, a.HiddenSizes, () => nn.ReLU());
        modules.Add(("out", nn.Linear(LinearStack.OutputWidth(a.StateSize, a.HiddenSizes), a.StateSize)));
        _layers = nn.Sequential(modules);
        _mean = torch.tensor(a.InputMean, [1, a.StateSize]);
        _scale = torch.tensor(a.InputScale, [1, a.StateSize]);
        RegisterComponents();
    }

    public NeuralOdeArchitecture Architecture { get; }

    /// <summary>The linear layers in order, by name: fc0, fc1, …, out.</summary>
    public IEnumerable<(string Name, Linear Layer)> LinearLayers() => LinearStack.LinearLayers(_layers);

    /// <summary>The names and shapes of the parameters of the network <paramref name="a"/> describes, in order.</summary>
    public static IEnumerable<(string Name, long[] Shape)> ParameterShapes(NeuralOdeArchitecture a) =>
        LinearStack.HiddenShapes(nameof(_layers), a.StateSize, a.HiddenSizes).Concat(
        [
            ($"{nameof(_layers)}.out.weight", [a.StateSize, LinearStack.OutputWidth(a.StateSize, a.HiddenSizes)]),
            ($"{nameof(_layers)}.out.bias", [a.StateSize]),
        ]);

    public override Tensor forward(Tensor x) => _layers.forward((x - _mean) / _scale);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _layers.Dispose();
            _mean.Dispose();
            _scale.Dispose();
        }
        base.Dispose(disposing);
    }
}
