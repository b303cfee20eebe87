using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Allauzen.ML.Lipschitz;

/// <summary>(x − mean)·scale on the flat features. The scale multiplies the network's Lipschitz constant.</summary>
internal sealed class InputNormalize : LipschitzModule
{
    private readonly Tensor mean;
    private readonly double _scale;

    public InputNormalize(float[] meanValues, double scale, ScalarType dtype = ScalarType.Float32) : base("InputNormalize")
    {
        mean = torch.tensor(meanValues).to(dtype);
        _scale = scale;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var kept = new KeptScalars();
        return (x - mean) * kept.Of(_scale);
    }

    public override PlainLayer Fold() => new(PlainKind.Normalize, [(int)mean.shape[0]], _scale, false) { Tensors = { ["mean"] = Arr(mean) } };
}

/// <summary>Flat → (C, H, W).</summary>
internal sealed class ReshapeImage(int c, int h, int w) : LipschitzModule("Reshape")
{
    public override Tensor forward(Tensor x) => x.reshape(x.shape[0], c, h, w);

    public override PlainLayer Fold() => new(PlainKind.Reshape, [c, h, w], 0, false);
}

/// <summary>Zero channels appended (SLL's PaddingChannels): an isometry.</summary>
internal sealed class PadChannels(int from, int to) : LipschitzModule("PadChannels")
{
    public override Tensor forward(Tensor x) =>
        to == from ? x : F.pad(x, [0, 0, 0, 0, 0, to - from]);

    public override PlainLayer Fold() => new(PlainKind.PadChannels, [from, to], 0, false);
}

/// <summary>k×k window sums divided by k (AvgPool2d(k, divisor_override = k)): 1-Lipschitz.</summary>
internal sealed class SumPool(int k) : LipschitzModule("SumPool")
{
    public override Tensor forward(Tensor x)
    {
        if (k == 1)
            return x;
        using var kept = new KeptScalars();
        return F.avg_pool2d(x, k) * kept.Of(k);
    }

    public override PlainLayer Fold() => new(PlainKind.SumPool, [k], 0, false);
}

/// <summary>(C, H, W) → flat.</summary>
internal sealed class FlattenImage() : LipschitzModule("Flatten")
{
    public override Tensor forward(Tensor x) => x.flatten(1);

    public override PlainLayer Fold() => new(PlainKind.Flatten, [], 0, false);
}
