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

    /// <summary>
    /// The random-walk prior's gradient and Adam on the <paramref name="slices"/> rows of one word in one pass, element by
    /// element: row t of the word is <paramref name="p"/>[t·<paramref name="stride"/> + <paramref name="offset"/> + i] (and
    /// of the moments at the same index), its likelihood gradient <paramref name="g"/>[<paramref name="gOffset"/> +
    /// t·<paramref name="gStride"/> + i], i &lt; <paramref name="k"/>. Per element the operations and their order are those of
    /// MultiplyAdd(ρ₀, λ₀) into g₀, then for t = 1…T−1 g_t += λ(ρ_t − ρ_{t−1}), g_{t−1} −= λ(ρ_t − ρ_{t−1}) (from the rows
    /// before the step), then <see cref="Update(Span{float}, ReadOnlySpan{float}, int, float, float)"/> on each row: the
    /// same bits, without writing the gradient back or passing over the rows twice. <paramref name="g"/> is left unspecified.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    public void RandomWalkUpdate(Span<float> p, int stride, int offset, int k, int slices, Span<float> g, int gOffset, int gStride,
        float l0, float lam, float scale, float bc)
    {
        var m = _m.AsSpan();
        var v = _v.AsSpan();
        float nlam = -lam, b1 = Beta1, c1 = 1 - Beta1, b2 = Beta2, c2 = 1 - Beta2, eps = Epsilon;
        int i = 0, width = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && k >= width)
        {
            var vl0 = new Vector<float>(l0); var vlam = new Vector<float>(lam); var vnlam = new Vector<float>(nlam);
            var vb1 = new Vector<float>(b1); var vc1 = new Vector<float>(c1); var vb2 = new Vector<float>(b2);
            var vc2 = new Vector<float>(c2); var vbc = new Vector<float>(bc); var veps = new Vector<float>(eps);
            var vscale = new Vector<float>(scale);
            for (; i <= k - width; i += width)
            {
                int at = offset + i;
                var prev = new Vector<float>(p[at..]);
                var gPrev = prev * vl0 + new Vector<float>(g[(gOffset + i)..]);
                for (int t = 1; t <= slices; t++)
                {
                    var cur = Vector<float>.Zero;
                    var gCur = Vector<float>.Zero;
                    if (t < slices)
                    {
                        cur = new Vector<float>(p[(at + stride)..]);
                        var d = cur - prev;
                        gCur = d * vlam + new Vector<float>(g[(gOffset + t * gStride + i)..]);
                        gPrev = d * vnlam + gPrev;
                    }
                    // row t − 1's gradient is complete: its Adam step
                    var mi = gPrev * vc1 + new Vector<float>(m[at..]) * vb1;
                    var vi = gPrev * gPrev * vc2 + new Vector<float>(v[at..]) * vb2;
                    var step = mi / (Vector.SquareRoot(vi) / vbc + veps);
                    (step * vscale + prev).CopyTo(p[at..]);
                    mi.CopyTo(m[at..]);
                    vi.CopyTo(v[at..]);
                    (prev, gPrev, at) = (cur, gCur, at + stride);
                }
            }
        }
        for (; i < k; i++)
        {
            int at = offset + i;
            float prev = p[at];
            float gPrev = prev * l0 + g[gOffset + i];
            for (int t = 1; t <= slices; t++)
            {
                float cur = 0, gCur = 0;
                if (t < slices)
                {
                    cur = p[at + stride];
                    float d = cur - prev;
                    gCur = d * lam + g[gOffset + t * gStride + i];
                    gPrev = d * nlam + gPrev;
                }
                float mi = gPrev * c1 + m[at] * b1;
                float vi = gPrev * gPrev * c2 + v[at] * b2;
                p[at] = mi / (MathF.Sqrt(vi) / bc + eps) * scale + prev;
                m[at] = mi;
                v[at] = vi;
                (prev, gPrev, at) = (cur, gCur, at + stride);
            }
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
