using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Allauzen.ML.Torch;

/// <summary>
/// The hidden layers every fully connected network of Allauzen.ML starts with (MLP, conditional quantizer, Neural ODE field):
/// <c>fc0 → act0 [→ drop0] → fc1 → …</c>, written once. The names are part of the saved models' parameter names
/// (<c>&lt;field&gt;.fc0.weight</c>, …) and the linear layers are created in order, fc0 first, so that a seeded
/// initialisation draws the same weights as before.
/// </summary>
internal static class LinearStack
{
    /// <summary>
    /// The named modules <c>fc{i}</c> (Linear), <c>act{i}</c> (a new <paramref name="activation"/>) and, when
    /// <paramref name="dropout"/> &gt; 0, <c>drop{i}</c>, for each hidden width in turn; the caller appends its output
    /// layer (of input size <see cref="OutputWidth"/>) and builds the <see cref="Sequential"/>.
    /// </summary>
    internal static List<(string, nn.Module<Tensor, Tensor>)> Hidden(int inputSize, int[] hiddenSizes,
        Func<nn.Module<Tensor, Tensor>> activation, double dropout = 0)
    {
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        int width = inputSize;
        for (int i = 0; i < hiddenSizes.Length; i++)
        {
            modules.Add(($"fc{i}", nn.Linear(width, hiddenSizes[i])));
            modules.Add(($"act{i}", activation()));
            if (dropout > 0)
                modules.Add(($"drop{i}", nn.Dropout(dropout)));
            width = hiddenSizes[i];
        }
        return modules;
    }

    /// <summary>The width the hidden layers end with: the last hidden size, or the input size when there is none.</summary>
    internal static int OutputWidth(int inputSize, int[] hiddenSizes) => hiddenSizes.Length == 0 ? inputSize : hiddenSizes[^1];

    /// <summary>
    /// Name and shape of the hidden layers' parameters (<c>{field}.fc{i}.weight</c>, <c>.bias</c>) in <c>named_parameters()</c>
    /// order, computed without building them; <paramref name="field"/> is the name of the network's <see cref="Sequential"/> field.
    /// </summary>
    internal static IEnumerable<(string Name, long[] Shape)> HiddenShapes(string field, int inputSize, int[] hiddenSizes)
    {
        long width = inputSize;
        for (int i = 0; i < hiddenSizes.Length; i++)
        {
            yield return ($"{field}.fc{i}.weight", [hiddenSizes[i], width]);
            yield return ($"{field}.fc{i}.bias", [hiddenSizes[i]]);
            width = hiddenSizes[i];
        }
    }

    /// <summary>The linear layers of <paramref name="layers"/> in order, by name.</summary>
    internal static IEnumerable<(string Name, Linear Layer)> LinearLayers(Sequential layers)
    {
        foreach (var (name, module) in layers.named_children())
        {
            if (module is Linear l)
                yield return (name, l);
        }
    }
}
