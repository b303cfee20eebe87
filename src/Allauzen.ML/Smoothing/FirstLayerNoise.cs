using System.Runtime.InteropServices;
using Allauzen.ML.Core;
using Microsoft.ML.OnnxRuntime;
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
/// Two kinds of base models get it. An Allauzen network (<see cref="TryCreate(ILogitsModel)"/>) that exposes its network
/// (<see cref="ILogitsModel.Network"/>) as a chain of modules starting with a <see cref="Linear"/> layer; an ONNX classifier
/// (<see cref="TryCreate(OnnxBaseModel)"/>) whose input feeds first a Gemm or a MatMul (+ Add) with constant parameters
/// (<see cref="OnnxFirstLayerSplit"/>), the rest of the graph running in its own ONNX Runtime session. In both cases
/// W·Wᵀ must be positive definite and a probe forward pass through the split model must reproduce the whole model;
/// otherwise the sampler adds d-dimensional noise to the input (the direct path).
/// </remarks>
internal sealed class FirstLayerNoise : IDisposable
{
    /// <summary>What runs after the first layer: first-layer outputs [N, h] on the model's device → scores.</summary>
    internal interface IRest : IDisposable
    {
        /// <summary>The model's raw outputs [N, K] (logits, or probabilities for an ONNX model that outputs them).</summary>
        Tensor Output(Tensor y);

        /// <summary>Votes (argmax, lowest index on ties, NaN never wins) and optionally the logits of the rows of <paramref name="y"/>.</summary>
        void Classify(Tensor y, int count, long[] votes, float[]? logits);
    }

    private readonly Tensor _weight;
    private readonly Tensor? _bias;
    private readonly Tensor _mixT;
    private readonly IRest _rest;
    private readonly bool _ownsParameters;

    private FirstLayerNoise(Tensor weight, Tensor? bias, Tensor mixT, IRest rest, bool ownsParameters)
    {
        _weight = weight;
        _bias = bias;
        _mixT = mixT;
        _rest = rest;
        _ownsParameters = ownsParameters;
    }

    /// <summary>h: the width of the first layer, i.e. the dimension of the noise drawn per sample.</summary>
    public int Width => (int)_mixT.shape[0];

    /// <summary>Lᵀ (float32, h × h) with L·Lᵀ = W·Wᵀ: a row z of standard normals maps to the row (L·z)ᵀ = zᵀ·Lᵀ.</summary>
    internal Tensor MixTransposed => _mixT;

    /// <summary>The first layer's weight W [h, d].</summary>
    internal Tensor Weight => _weight;

    /// <summary>The first layer's bias b [h], or null.</summary>
    internal Tensor? Bias => _bias;

    /// <summary>The noiseless first-layer outputs W·x + b of rows x [N, d].</summary>
    public Tensor Project(Tensor x) => nn.functional.linear(x, _weight, _bias);

    /// <summary>Maps noise rows z [N, h] (already scaled by σ) to the rows (L·z)ᵀ [N, h].</summary>
    public Tensor Mix(Tensor z) => z.mm(_mixT);

    /// <summary>The rest of the model: first-layer outputs [N, h] → raw outputs [N, K].</summary>
    public Tensor Rest(Tensor y) => _rest.Output(y);

    /// <summary>The votes (and optionally logits) of first-layer outputs y [count, h], as the base model would give for the inputs.</summary>
    public void Classify(Tensor y, int count, long[] votes, float[]? logits) => _rest.Classify(y, count, votes, logits);

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
        // Same operations on both sides of the probe (libtorch's linear, then the same modules): rounding aside, equal.
        return Create(first.weight!.detach(), first.bias?.detach(), new TorchRest(rest), model.FeatureCount, model.ForwardLogits,
            ownsParameters: false, rtol: 1e-4, atol: 1e-5);
    }

    /// <summary>The shortcut for an ONNX classifier, or null when its graph does not start with a constant linear layer (see <see cref="OnnxFirstLayerSplit"/>).</summary>
    public static FirstLayerNoise? TryCreate(OnnxBaseModel model)
    {
        var split = OnnxFirstLayerSplit.TryCreate(model.Bytes, model.InputName, model.OutputName, model.FeatureCount);
        if (split is null || model.OpenRest(split) is not { } rest)
            return null;
        using var noGrad = torch.no_grad();
        var weight = torch.tensor(split.Weight, [split.Width, split.Features]).DetachFromDisposeScope();
        var bias = torch.tensor(split.Bias, [split.Width]).DetachFromDisposeScope();
        // The whole model's first layer runs in ONNX Runtime's GEMM, the split's in libtorch's: two summation orders,
        // each within d·2⁻²⁴·Σ|W||x| of the exact product, then amplified by the rest; a wrong split differs by O(1).
        FirstLayerNoise? shortcut = null;
        try
        {
            shortcut = Create(weight, bias, rest, model.FeatureCount, model.RawOutputs, ownsParameters: true, rtol: 1e-3, atol: 1e-3);
        }
        catch (Exception e) when (e is OnnxRuntimeException or InvalidOperationException)
        {
            // The rest did not run on the probe (e.g. a shape it does not accept): keep the direct path.
        }
        if (shortcut is null)
        {
            weight.Dispose();
            bias.Dispose();
            rest.Dispose();
        }
        return shortcut;
    }

    /// <summary>
    /// The shortcut for first layer (<paramref name="weight"/>, <paramref name="bias"/>) followed by <paramref name="rest"/>, or null
    /// when W·Wᵀ is singular, h ≥ d, or the split model's outputs on a probe differ from <paramref name="full"/>'s by more
    /// than rtol·|full| + atol·max(1, max |full|).
    /// </summary>
    private static FirstLayerNoise? Create(Tensor weight, Tensor? bias, IRest rest, int featureCount, Func<Tensor, Tensor> full,
        bool ownsParameters, double rtol, double atol)
    {
        using var scope = torch.NewDisposeScope();
        long h = weight.shape[0], d = weight.shape[1];
        if (d != featureCount || h >= d)
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
        var shortcut = new FirstLayerNoise(weight, bias, mixT, rest, ownsParameters);
        // Probe: the split model must reproduce the model's forward pass.
        using var gen = new torch.Generator(0x5EED, weight.device);
        var probe = torch.empty([8, d], torch.float32, weight.device).normal_(0, 1, gen);
        var direct = full(probe).to(torch.float32);
        var split = shortcut.Rest(shortcut.Project(probe)).to(torch.float32);
        if (!direct.shape.SequenceEqual(split.shape))
            return null;
        double scale = Math.Max(1, direct.abs().max().item<float>());
        if (!torch.allclose(direct, split, rtol: rtol, atol: atol * scale))
            return null;
        mixT.DetachFromDisposeScope();
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

    /// <summary>The modules after an Allauzen network's first linear layer.</summary>
    private sealed class TorchRest(nn.Module<Tensor, Tensor>[] modules) : IRest
    {
        public Tensor Output(Tensor y)
        {
            foreach (var m in modules)
                y = m.forward(y);
            return y;
        }

        public void Classify(Tensor y, int count, long[] votes, float[]? logits) => SmoothingBaseModel.VotesOf(Output(y), count, votes, logits);

        public void Dispose()
        {
        }
    }

    public void Dispose()
    {
        _mixT.Dispose();
        _rest.Dispose();
        if (_ownsParameters)
        {
            _weight.Dispose();
            _bias?.Dispose();
        }
    }
}
