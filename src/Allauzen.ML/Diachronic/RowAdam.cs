using System.Runtime.CompilerServices;
using System.Numerics;
using System.Numerics.Tensors;

namespace Allauzen.ML.Diachronic;

/// <summary>
/// Adam (Kingma &amp; Ba 2015; PyTorch's <c>torch.optim.Adam</c> without weight decay: β₁ = 0.9, β₂ = 0.999, ε = 1e-8) on a
/// flat float32 parameter array, updated row by row so callers can run rows on several threads. A step is
/// <see cref="BeginStep"/> (one global step count, hence one bias correction) followed by <see cref="Update(Span{float}, ReadOnlySpan{float}, int, Span{float})"/> on the rows
/// to move: every row gives dense Adam; only the rows a minibatch touched gives lazy ("sparse") Adam, whose moments of
/// untouched rows are neither decayed nor applied (PyTorch's <c>SparseAdam</c>).
/// </summary>
internal sealed class RowAdam
{
    public const float Beta1 = 0.9f, Beta2 = 0.999f, Epsilon = 1e-8f;
    private readonly float[] _m, _v;
    private float _stepScale, _sqrtBc2;

    /// <summary>Moments for a parameter array of <paramref name="length"/> floats, all zero.</summary>
    public RowAdam(int length)
    {
        _m = new float[length];
        _v = new float[length];
    }

    /// <summary>Steps begun so far.</summary>
    public int Step { get; private set; }

    /// <summary>
    /// Starts step t + 1 with learning rate <paramref name="lr"/>: fixes the bias corrections of its row updates, and
    /// returns them (for <see cref="Update(Span{float}, ReadOnlySpan{float}, int, float, float)"/> on rows that run several steps in one pass).
    /// </summary>
    public (float StepScale, float SqrtBiasCorrection2) BeginStep(double lr)
    {
        Step++;
        _stepScale = (float)(-lr / (1 - Math.Pow(Beta1, Step)));
        _sqrtBc2 = (float)Math.Sqrt(1 - Math.Pow(Beta2, Step));
        return (_stepScale, _sqrtBc2);
    }

    /// <summary>
    /// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε) on the floats
    /// [<paramref name="offset"/>, offset + p.Length) of the moments; <paramref name="scratch"/> holds at least p.Length floats.
    /// </summary>
    public void Update(Span<float> p, ReadOnlySpan<float> g, int offset, Span<float> scratch)
    {
        if (scratch.Length < p.Length)
            throw new ArgumentException($"Scratch ({scratch.Length}) must hold the row's {p.Length} floats.");
        Update(p, g, offset, _stepScale, _sqrtBc2);
    }

    /// <summary>
    /// The update of a step begun earlier, whose <see cref="BeginStep"/> returned <paramref name="scale"/> and
    /// <paramref name="bc"/>: a row may run several steps in a row this way, each with its own bias corrections.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    public void Update(Span<float> p, ReadOnlySpan<float> g, int offset, float scale, float bc)
    {
        // One pass per row, element by element, with the operations of the ten-pass TensorPrimitives form in the same
        // order (multiplies and adds rounded separately, never fused; √ and ÷ exactly rounded): the same bits.
        var m = _m.AsSpan(offset, p.Length);
        var v = _v.AsSpan(offset, p.Length);
        if (g.Length < p.Length)
            throw new ArgumentException($"Gradient ({g.Length}) must hold the row's {p.Length} floats.");
        float b1 = Beta1, c1 = 1 - Beta1, b2 = Beta2, c2 = 1 - Beta2, eps = Epsilon;
        int i = 0;
        if (Vector.IsHardwareAccelerated && p.Length >= Vector<float>.Count)
        {
            var vb1 = new Vector<float>(b1); var vc1 = new Vector<float>(c1); var vb2 = new Vector<float>(b2);
            var vc2 = new Vector<float>(c2); var vbc = new Vector<float>(bc); var veps = new Vector<float>(eps);
            var vscale = new Vector<float>(scale);
            for (; i <= p.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var gi = new Vector<float>(g[i..]);
                var mi = gi * vc1 + new Vector<float>(m[i..]) * vb1;
                var vi = gi * gi * vc2 + new Vector<float>(v[i..]) * vb2;
                var step = mi / (Vector.SquareRoot(vi) / vbc + veps);
                (step * vscale + new Vector<float>(p[i..])).CopyTo(p[i..]);
                mi.CopyTo(m[i..]);
                vi.CopyTo(v[i..]);
            }
        }
        for (; i < p.Length; i++)
        {
            float gi = g[i];
            float mi = gi * c1 + m[i] * b1;
            float vi = gi * gi * c2 + v[i] * b2;
            p[i] = mi / (MathF.Sqrt(vi) / bc + eps) * scale + p[i];
            m[i] = mi;
            v[i] = vi;
        }
    }

    /// <summary>The ten-pass form of <see cref="Update(Span{float}, ReadOnlySpan{float}, int, Span{float})"/> (TensorPrimitives, one operation per pass): the reference the
    /// tests compare the fused loop with, bit for bit.</summary>
    internal void UpdateByPasses(Span<float> p, ReadOnlySpan<float> g, int offset, Span<float> scratch)
    {
        var m = _m.AsSpan(offset, p.Length);
        var v = _v.AsSpan(offset, p.Length);
        var tmp = scratch[..p.Length];
        TensorPrimitives.Multiply(m, Beta1, m);
        TensorPrimitives.MultiplyAdd(g, 1 - Beta1, m, m);
        TensorPrimitives.Multiply(g, g, tmp);
        TensorPrimitives.Multiply(v, Beta2, v);
        TensorPrimitives.MultiplyAdd(tmp, 1 - Beta2, v, v);
        TensorPrimitives.Sqrt(v, tmp);
        TensorPrimitives.Divide(tmp, _sqrtBc2, tmp);
        TensorPrimitives.Add(tmp, Epsilon, tmp);
        TensorPrimitives.Divide(m, tmp, tmp);
        TensorPrimitives.MultiplyAdd(tmp, _stepScale, p, p);
    }
}
