using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Lipschitz;

/// <summary>
/// The trainable certified network: input normalisation → (conv: reshape → channel padding → conv blocks → sum pooling →
/// flatten) → dense blocks → last linear layer with normalised rows. Every block is 1-Lipschitz by construction.
/// </summary>
internal sealed class LipschitzNetwork : nn.Module<Tensor, Tensor>
{
    private readonly List<LipschitzModule> _layers;

    public LipschitzNetwork(LipschitzClassifierOptions o, int features, int classes, float[] mean, double scale) : base("LipschitzNetwork")
    {
        _layers = [new InputNormalize(mean, scale)];
        int f = features;
        if (o.Convolutional)
        {
            int c = o.ImageChannels, h = o.ImageHeight, w = o.ImageWidth, k = o.KernelSize;
            _layers.Add(new ReshapeImage(c, h, w));
            _layers.Add(new PadChannels(c, o.Width));
            for (int i = 0; i < o.Depth; i++)
            {
                _layers.Add(o.Architecture switch
                {
                    LipschitzArchitecture.Sll => new SllConv(o.Width, o.Width, k, h, w),
                    LipschitzArchitecture.SpectralRescalingResidual => new SllConv(o.Width, o.Width, k, h, w, iterations: o.RescalingIterations),
                    LipschitzArchitecture.Cpl => new CplConv(o.Width, o.Width, k, h, w),
                    LipschitzArchitecture.Aol => new AolConv(o.Width, o.Width, k, h, w, relu: true),
                    _ => new SrConv(o.Width, o.Width, k, h, w, o.RescalingIterations, relu: true),
                });
            }
            _layers.Add(new SumPool(o.PoolSize));
            _layers.Add(new FlattenImage());
            f = o.Width * (h / o.PoolSize) * (w / o.PoolSize);
            AddDense(o.DenseDepth, o.DenseWidth);
        }
        else
        {
            AddDense(o.Depth, o.Width);
        }
        _layers.Add(new LinearNormalized(f, classes));
        for (int i = 0; i < _layers.Count; i++)
            register_module($"l{i}", _layers[i]);

        void AddDense(int depth, int width)
        {
            for (int i = 0; i < depth; i++)
            {
                switch (o.Architecture)
                {
                    case LipschitzArchitecture.Sll:
                        _layers.Add(new SllDense(f, width));
                        break;
                    case LipschitzArchitecture.SpectralRescalingResidual:
                        _layers.Add(new SllDense(f, width, iterations: o.RescalingIterations));
                        break;
                    case LipschitzArchitecture.Cpl:
                        _layers.Add(new CplDense(f, width));
                        break;
                    case LipschitzArchitecture.Aol:
                        _layers.Add(new AolDense(f, width, relu: true));
                        f = width;
                        break;
                    default:
                        _layers.Add(new SrDense(f, width, o.RescalingIterations, relu: true));
                        f = width;
                        break;
                }
            }
        }
    }

    public IReadOnlyList<LipschitzModule> Layers => _layers;

    public override Tensor forward(Tensor x)
    {
        foreach (var l in _layers)
            x = l.forward(x);
        return x;
    }

    public IReadOnlyList<PlainLayer> Fold() => _layers.Select(l => l.Fold()).ToArray();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var l in _layers)
                l.Dispose();
        }
        base.Dispose(disposing);
    }
}
