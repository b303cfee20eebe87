using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// The dropout masks of one training step, shared by every pass of it (FOTON's and PEPITA's two passes, backprop's
/// forward): hidden layer i keeps a unit with probability 1 − p, from a generator seeded by (run seed, step, i), so
/// a mask can be asked for again and is the same. Each keep mask is drawn once, as bytes, into one buffer for all
/// layers (one allocation per step rather than one small heap block per layer, which would fragment the heap).
/// </summary>
internal sealed class DropoutMasks : IDisposable
{
    private readonly double _p;
    private readonly int _seed;
    private readonly long _step;
    private readonly int _batch;
    private readonly long[] _offsets;
    private readonly ScalarType _dtype;
    private readonly Device _device;
    private readonly Tensor?[] _keep;
    private readonly Scalar _scale; // a field: kept alive during the native calls
    private Tensor? _buffer;

    /// <param name="p">Dropout probability; 0 gives no masks.</param>
    /// <param name="seed">Run seed.</param>
    /// <param name="step">Step counter (1-based).</param>
    /// <param name="batch">Rows of the mini-batch.</param>
    /// <param name="offsets">Cumulative hidden widths: units before hidden layer i, then the total.</param>
    /// <param name="dtype">Dtype of the scaled masks (the weights').</param>
    /// <param name="device">Device of the masks.</param>
    public DropoutMasks(double p, int seed, long step, int batch, long[] offsets, ScalarType dtype, Device device)
    {
        (_p, _seed, _step, _batch, _offsets, _dtype, _device) = (p, seed, step, batch, offsets, dtype, device);
        _keep = new Tensor?[offsets.Length - 1];
        _scale = (1 / (1 - p)).ToScalar();
    }

    /// <summary>The scaled mask M_i (0 or 1/(1 − p)) of hidden layer <paramref name="i"/>, a new tensor; null without dropout.</summary>
    public Tensor? Layer(int i)
    {
        if (_p == 0)
            return null;
        if (_keep[i] is null)
        {
            _buffer ??= torch.empty([_batch * _offsets[^1]], ScalarType.Bool, _device).DetachFromDisposeScope();
            long width = _offsets[i + 1] - _offsets[i];
            using var drawn = Keep(_seed, _step, i, _batch, width, _p, _dtype, _device);
            var view = _buffer.narrow(0, _batch * _offsets[i], _batch * width).view(_batch, width);
            view.copy_(drawn);
            _keep[i] = view.DetachFromDisposeScope();
        }
        return _keep[i]!.to(_dtype).mul_(_scale);
    }

    /// <summary>Every hidden layer's scaled mask (for the autograd pass); null without dropout.</summary>
    public Tensor?[]? All() => _p == 0 ? null : [.. Enumerable.Range(0, _keep.Length).Select(Layer)];

    /// <summary>The boolean keep mask [batch, width] of hidden layer <paramref name="layer"/> at step <paramref name="step"/>, from its own seed.</summary>
    public static Tensor Keep(int seed, long step, int layer, int batch, long width, double p, ScalarType dtype, Device device)
    {
        using var g = new Generator(FotonTrainStep.DeriveSeed(seed, ((ulong)step << 16) + (ulong)layer + 0x10000UL), device);
        using var u = torch.rand([batch, width], dtype: dtype, device: device, generator: g);
        return u.ge(p);
    }

    public void Dispose()
    {
        foreach (var k in _keep)
            k?.Dispose();
        _buffer?.Dispose();
        _scale.Dispose();
    }
}
