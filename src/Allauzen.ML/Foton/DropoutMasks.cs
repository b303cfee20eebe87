using System.Buffers;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Allauzen.ML.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// The dropout masks of one training step, shared by every pass of it (FOTON's and PEPITA's two passes, backprop's
/// forward): hidden layer i keeps unit j of row r with probability 1 − p, decided by element r·width + j of the
/// counter-based uniform stream (key = <see cref="Key"/>(run seed), stream = step, domain = i) of
/// <see cref="GaussianNoise.FillBits"/>: kept when the 32-bit word is below (1 − p)·2³². The stream is a function of
/// its coordinates, so a mask asked for again is the same. Each keep mask is drawn once per step, as bytes, into one
/// pooled buffer for all layers; the scaled mask M_i (0 or 1/(1 − p)) is written straight into a new tensor.
/// </summary>
internal sealed class DropoutMasks : IDisposable
{
    private readonly double _p;
    private readonly ulong _key;
    private readonly long _step;
    private readonly int _batch;
    private readonly long[] _offsets;
    private readonly ScalarType _dtype;
    private readonly Device _device;
    private readonly bool[] _drawn;
    private byte[]? _keep; // 1 = kept, 0 = dropped; [batch, width] per layer at batch·offsets[i]

    /// <param name="p">Dropout probability; 0 gives no masks.</param>
    /// <param name="seed">Run seed.</param>
    /// <param name="step">Step counter (1-based).</param>
    /// <param name="batch">Rows of the mini-batch.</param>
    /// <param name="offsets">Cumulative hidden widths: units before hidden layer i, then the total.</param>
    /// <param name="dtype">Dtype of the scaled masks (the weights').</param>
    /// <param name="device">Device of the masks.</param>
    public DropoutMasks(double p, int seed, long step, int batch, long[] offsets, ScalarType dtype, Device device)
    {
        (_p, _key, _step, _batch, _offsets, _dtype, _device) = (p, Key(seed), step, batch, offsets, dtype, device);
        _drawn = new bool[offsets.Length - 1];
    }

    /// <summary>The counter-based (ARS) key of a run's dropout masks (its own stream of the run seed).</summary>
    public static ulong Key(int seed) => FotonTrainStep.DeriveSeed(seed, 4);

    /// <summary>Largest 32-bit word that keeps a unit: words below (1 − p)·2³², i.e. at most this value.</summary>
    public static uint KeepThreshold(double p) => (uint)Math.Min(uint.MaxValue, Math.Round((1 - p) * 4294967296.0) - 1);

    /// <summary>The scaled mask M_i (0 or 1/(1 − p)) of hidden layer <paramref name="i"/>, a new tensor; null without dropout.</summary>
    public Tensor? Layer(int i)
    {
        if (_p == 0)
            return null;
        long width = _offsets[i + 1] - _offsets[i];
        int count = checked((int)(_batch * width));
        var keep = KeepBytes(i, count);
        bool host = _device.type == DeviceType.CPU && (_dtype == ScalarType.Float32 || _dtype == ScalarType.Float64);
        var mask = torch.empty([_batch, width], host ? _dtype : ScalarType.Float32, torch.CPU);
        double scale = 1 / (1 - _p);
        // The tensor's own memory (contiguous, on the host): written in place, no managed copy.
        Span<byte> memory = mask.bytes;
        if (mask.dtype == ScalarType.Float64)
            Expand(keep, MemoryMarshal.Cast<byte, double>(memory), scale);
        else
            Expand(keep, MemoryMarshal.Cast<byte, float>(memory), (float)scale);
        if (host)
            return mask;
        using (mask)
            return mask.to(_dtype, _device);
    }

    /// <summary>
    /// Layer <paramref name="i"/>'s keep bytes (1 kept, 0 dropped; [batch, width] row-major) and the scale 1/(1 − p) in
    /// float32, for the host float32 kernels that form keep·scale in registers: the values of <see cref="Layer"/>'s
    /// mask, without a tensor. False without dropout, or when the masks are not host float32.
    /// </summary>
    public bool TryKeep(int i, out ReadOnlySpan<byte> keep, out float scale)
    {
        keep = default;
        scale = 0;
        if (_p == 0 || _device.type != DeviceType.CPU || _dtype != ScalarType.Float32)
            return false;
        long width = _offsets[i + 1] - _offsets[i];
        keep = KeepBytes(i, checked((int)(_batch * width)));
        scale = (float)(1 / (1 - _p));
        return true;
    }

    /// <summary>Every hidden layer's scaled mask (for the autograd pass); null without dropout.</summary>
    public Tensor?[]? All() => _p == 0 ? null : [.. Enumerable.Range(0, _drawn.Length).Select(Layer)];

    private ReadOnlySpan<byte> KeepBytes(int i, int count)
    {
        _keep ??= ArrayPool<byte>.Shared.Rent(checked((int)(_batch * _offsets[^1])));
        var keep = _keep.AsSpan(checked((int)(_batch * _offsets[i])), count);
        if (!_drawn[i])
        {
            Draw(keep, _key, _step, i, _p);
            _drawn[i] = true;
        }
        return keep;
    }

    /// <summary>
    /// The keep mask of layer <paramref name="layer"/> at step <paramref name="step"/> (1 = kept), element e from word e
    /// of the stream (<paramref name="key"/>, step, layer): kept when the word is at most <see cref="KeepThreshold"/>.
    /// </summary>
    public static void Draw(Span<byte> keep, ulong key, long step, int layer, double p)
    {
        var words = ArrayPool<uint>.Shared.Rent(keep.Length);
        try
        {
            var w = words.AsSpan(0, keep.Length);
            GaussianNoise.FillBits(w, key, (ulong)step, (uint)layer);
            uint threshold = KeepThreshold(p);
            int j = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var t = Vector256.Create(threshold);
                var one = Vector256.Create((byte)1);
                var wv = MemoryMarshal.Cast<uint, Vector256<uint>>(w);
                for (; j + 4 * Vector256<uint>.Count <= w.Length; j += 4 * Vector256<uint>.Count)
                {
                    int v = j / Vector256<uint>.Count;
                    // Unsigned word ≤ threshold → all ones; narrowed 32 → 16 → 8 bits and masked to 0/1.
                    var a = Vector256.Narrow(Vector256.LessThanOrEqual(wv[v], t), Vector256.LessThanOrEqual(wv[v + 1], t));
                    var b = Vector256.Narrow(Vector256.LessThanOrEqual(wv[v + 2], t), Vector256.LessThanOrEqual(wv[v + 3], t));
                    (Vector256.Narrow(a, b) & one).CopyTo(keep[j..]);
                }
            }
            for (; j < w.Length; j++)
                keep[j] = w[j] <= threshold ? (byte)1 : (byte)0;
        }
        finally
        {
            ArrayPool<uint>.Shared.Return(words);
        }
    }

    private static void Expand(ReadOnlySpan<byte> keep, Span<float> mask, float scale)
    {
        int j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            for (; j + Vector256<byte>.Count <= keep.Length; j += Vector256<byte>.Count)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create(keep.Slice(j, Vector256<byte>.Count)));
                var (a, b) = Vector256.Widen(lo);
                var (c, d) = Vector256.Widen(hi);
                (Vector256.ConvertToSingle(a) * s).CopyTo(mask[j..]);
                (Vector256.ConvertToSingle(b) * s).CopyTo(mask[(j + 8)..]);
                (Vector256.ConvertToSingle(c) * s).CopyTo(mask[(j + 16)..]);
                (Vector256.ConvertToSingle(d) * s).CopyTo(mask[(j + 24)..]);
            }
        }
        for (; j < keep.Length; j++)
            mask[j] = keep[j] * scale;
    }

    private static void Expand(ReadOnlySpan<byte> keep, Span<double> mask, double scale)
    {
        for (int j = 0; j < keep.Length; j++)
            mask[j] = keep[j] * scale;
    }

    public void Dispose()
    {
        if (_keep is not null)
            ArrayPool<byte>.Shared.Return(_keep);
        _keep = null;
    }
}
