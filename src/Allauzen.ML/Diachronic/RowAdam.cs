using System.Numerics.Tensors;

namespace Allauzen.ML.Diachronic;

/// <summary>
/// Adam (Kingma &amp; Ba 2015; PyTorch's <c>torch.optim.Adam</c> without weight decay: β₁ = 0.9, β₂ = 0.999, ε = 1e-8) on a
/// flat float32 parameter array, updated row by row so callers can run rows on several threads. A step is
/// <see cref="BeginStep"/> (one global step count, hence one bias correction) followed by <see cref="Update"/> on the rows
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

    /// <summary>Starts step t + 1 with learning rate <paramref name="lr"/>: fixes the bias corrections of its row updates.</summary>
    public void BeginStep(double lr)
    {
        Step++;
        _stepScale = (float)(-lr / (1 - Math.Pow(Beta1, Step)));
        _sqrtBc2 = (float)Math.Sqrt(1 - Math.Pow(Beta2, Step));
    }

    /// <summary>
    /// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε) on the floats
    /// [<paramref name="offset"/>, offset + p.Length) of the moments; <paramref name="scratch"/> holds at least p.Length floats.
    /// </summary>
    public void Update(Span<float> p, ReadOnlySpan<float> g, int offset, Span<float> scratch)
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
