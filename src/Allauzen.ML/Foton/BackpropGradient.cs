using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>The backprop reference: ∂(mean CE(τY))/∂W_i by autograd on copies of the weights, with the same masks.</summary>
internal static class BackpropGradient
{
    public static (Tensor[] Gradients, Tensor Logits) Compute(OrthogonalMlp net, Tensor x, Tensor labels, Tensor?[]? masks, double temperature)
    {
        using var grad = torch.enable_grad();
        var w = net.Weights.Select(t => t.detach().requires_grad_(true)).ToArray();
        var (_, y) = net.Forward(x, masks, weights: w);
        using var k = new KeptScalars();
        var loss = nn.functional.cross_entropy(k.Of(temperature) * y!, labels);
        var g = torch.autograd.grad([loss], w);
        return ([.. g], y!.detach());
    }
}
