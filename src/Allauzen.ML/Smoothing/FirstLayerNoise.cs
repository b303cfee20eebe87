using System.Runtime.InteropServices;
using Allauzen.ML.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Allauzen.ML.Smoothing;

/// <summary>
/// An exact shortcut for base networks whose first layer is linear, y = W·x + b with W of shape [h, d] and h &lt; d:
/// W(x + σε) + b = (W·x + b) + σ·W·ε, and W·ε ~ N(0, W·Wᵀ) for ε ~ N(0, I_d). With L the Cholesky factor of
/// W·Wᵀ (h × h, computed once in float64), σ·L·z with z ~ N(0, I_h) has exactly that law, so the first layer's
/// noisy output is (W·x + b) + σ·L·z: h normals and an h × h product per sample instead of d normals and an
/// h × d product. Everything after the first layer sees the same distribution, hence the vote counts (and every
/// certificate) have the same distribution as with the direct path; only the particular random draws differ.
/// </summary>
/// <remarks>
/// Used only when the model exposes its network (<see cref="ILogitsModel.Network"/>) as a chain of modules that
/// starts with a <see cref="Linear"/> layer, W·Wᵀ is positive definite, and a probe forward pass through the
/// split chain reproduces <see cref="ILogitsModel.ForwardLogits"/>; otherwise the sampler adds d-dimensional noise
/// to the input (the direct path).
/// </remarks>
internal sealed class FirstLayerNoise : IDisposable
{
    private readonly Tensor _weight;
    private readonly Tensor? _bias;
    private readonly Tensor _mixT;
    private readonly nn.Module<Tensor, Tensor>[] _rest;

    private FirstLayerNoise(Tensor weight, Tensor? bias, Tensor mixT, nn.Module<Tensor, Tensor>[] rest)
    {
        _weight = weight;
        _bias = bias;
        _mixT = mixT;
        _rest = rest;
    }

    /// <summary>h: the width of the first layer, i.e. the dimension of the noise drawn per sample.</summary>
    public int Width => (int)_mixT.shape[0];

    /// <summary>Lᵀ (float32, h × h) with L·Lᵀ = W·Wᵀ: a row z of standard normals maps to the row (L·z)ᵀ = zᵀ·Lᵀ.</summary>
    internal Tensor MixTransposed => _mixT;

    /// <summary>The first layer's weight W [h, d].</summary>
    internal Tensor Weight => _weight;

    /// <summary>The noiseless first-layer outputs W·x + b of rows x [N, d].</summary>
    public Tensor Project(Tensor x) => nn.functional.linear(x, _weight, _bias);

    /// <summary>Maps noise rows z [N, h] (already scaled by σ) to the rows (L·z)ᵀ [N, h].</summary>
    public Tensor Mix(Tensor z) => z.mm(_mixT);

    /// <summary>The rest of the network: first-layer outputs [N, h] → logits [N, K].</summary>
    public Tensor Rest(Tensor y)
    {
        foreach (var m in _rest)
            y = m.forward(y);
        return y;
    }

    /// <summary>The shortcut for <paramref name="model"/>, or null when it does not apply (see the remarks).</summary>
    public static FirstLayerNoise? TryCreate(ILogitsModel model)
    {
        if (model.Network is not { } network)
            return null;
        var chain = Chain(network);
        if (chain is null || chain.Count < 1 || chain[0] is not Linear first)
            return null;
        var rest = new nn.Module<Tensor, Tensor>[chain.Count - 1];
        for (int i = 1; i < chain.Count; i++)
        {
            if (chain[i] is not nn.Module<Tensor, Tensor> m)
                return null;
            rest[i - 1] = m;
        }
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var weight = first.weight!.detach();
        var bias = first.bias?.detach();
        long h = weight.shape[0], d = weight.shape[1];
        if (d != model.FeatureCount || h >= d)
            return null;
        var w64 = weight.to(torch.float64).cpu();
        var gram = torch.mm(w64, w64.t());
        Tensor lower;
        try
        {
            lower = torch.linalg.cholesky(gram);
        }
        catch (Exception e) when (e is ExternalException or InvalidOperationException or ArgumentException)
        {
            return null; // W·Wᵀ is singular: keep the direct path
        }
        if (!torch.isfinite(lower).all().item<bool>())
            return null;
        var mixT = lower.t().contiguous().to(torch.float32).to(weight.device);
        var shortcut = new FirstLayerNoise(weight, bias, mixT, rest);
        // Probe: the split chain must reproduce the model's forward pass.
        using var gen = new torch.Generator(0x5EED, weight.device);
        var probe = torch.empty([8, d], torch.float32, weight.device).normal_(0, 1, gen);
        var direct = model.ForwardLogits(probe).to(torch.float32);
        var split = shortcut.Rest(shortcut.Project(probe)).to(torch.float32);
        if (!direct.shape.SequenceEqual(split.shape) || !torch.allclose(direct, split, rtol: 1e-4, atol: 1e-5))
            return null;
        weight.MoveToOuterDisposeScope();
        bias?.MoveToOuterDisposeScope();
        mixT.MoveToOuterDisposeScope();
        return shortcut;
    }

    /// <summary>The modules of a network as an ordered chain: a Sequential's children, or the chain of a module with a single Sequential child.</summary>
    private static List<nn.Module>? Chain(nn.Module network)
    {
        if (network is Sequential seq)
            return [.. seq.children()];
        var children = network.children().ToList();
        if (children.Count == 1 && children[0] is Sequential inner)
            return [.. inner.children()];
        return null;
    }

    public void Dispose()
    {
        _mixT.Dispose();
    }
}
