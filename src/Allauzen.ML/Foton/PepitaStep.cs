using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// The PEPITA update (Dellaferrera and Kreiman 2022; papers/foton.md §2), in the variant of the FOTON
/// authors' measurements: X̃ = X + E·Fᵀ with a fixed random F (U(±a), a = scale·√(6/d_0)), modulated pass
/// with the same masks, G_i = (H_i − H̃_i)ᵀ·H̃_{i−1}/B with the <em>modulated</em> pre-synaptic activity
/// (X̃ for i = 0), and G_L = Eᵀ·H̃_{L−1}/B with the first-pass error (Srinivasan et al.'s choice).
/// </summary>
internal static class PepitaStep
{
    /// <summary>The fixed feedback matrix, stored transposed [C, d_0].</summary>
    public static Tensor Feedback(int classes, int inputSize, double scale, Generator generator, ScalarType dtype, Device device)
    {
        double a = scale * Math.Sqrt(6.0 / inputSize);
        var f = torch.empty([classes, inputSize], dtype: dtype, device: device);
        nn.init.uniform_(f, -a, a, generator);
        return f;
    }

    public static ForwardOnlyUpdate Compute(OrthogonalMlp net, Tensor x, Tensor targets, Tensor?[]? masks, Tensor feedbackTranspose, double temperature,
        double? divisor = null)
    {
        var (h, a, y) = net.ForwardWithPreActivations(x, masks);
        var e = nn.functional.softmax(temperature * y!, 1) - targets;
        var delta0 = -e.mm(feedbackTranspose);
        var xMod = x - delta0;
        var d = net.ModulatedDifferences(h, a, delta0, masks);
        var hMod = h.Zip(d, (hi, di) => hi - di).ToArray();
        double b = divisor ?? x.shape[0];
        int l = net.OutputIndex;
        var g = new Tensor[l + 1];
        for (int i = 0; i < l; i++)
        {
            var pre = i == 0 ? xMod : hMod[i - 1];
            g[i] = net.OuterProduct(i, d[i], pre) / b;
        }
        g[l] = net.OuterProduct(l, e, l == 0 ? xMod : hMod[l - 1]) / b;
        return new ForwardOnlyUpdate(h, y!, e, xMod, hMod, g);
    }
}
