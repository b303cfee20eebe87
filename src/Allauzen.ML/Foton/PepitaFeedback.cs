using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// PEPITA's fixed random feedback (Dellaferrera and Kreiman 2022, in the variant of the FOTON authors'
/// measurements; docs/components/foton.md, "The algorithm"): F with entries U(±a), a = scale·√(6/d_0), never
/// learned. The step itself is <see cref="FotonStep.Run"/> with <see cref="ForwardOnlyRule.Pepita"/>: X̃ = X + E·Fᵀ,
/// the same masks in both passes, G_i = (H_i − H̃_i)ᵀ·H̃_{i−1}/B with the <em>modulated</em> pre-synaptic activity
/// (X̃ for i = 0) and G_L = Eᵀ·H̃_{L−1}/B with the first-pass error (Srinivasan et al.'s choice).
/// </summary>
internal static class PepitaFeedback
{
    /// <summary>The fixed feedback matrix, stored transposed [C, d_0].</summary>
    public static Tensor Create(int classes, int inputSize, double scale, Generator generator, ScalarType dtype, Device device)
    {
        double a = scale * Math.Sqrt(6.0 / inputSize);
        var f = torch.empty([classes, inputSize], dtype: dtype, device: device);
        nn.init.uniform_(f, -a, a, generator);
        return f;
    }
}
