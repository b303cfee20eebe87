using TorchSharp;

namespace Allauzen.ML.Torch;

/// <summary>
/// Scalars handed to TorchSharp, kept reachable until this object is disposed. TorchSharp 0.107 passes a
/// <see cref="Scalar"/> to libtorch as its raw handle and does not keep the managed object alive during the call, so an
/// implicit conversion (<c>t * 0.5</c>, <c>t.clamp_min(1e-30)</c>) makes a temporary that becomes unreachable as soon
/// as its handle is read: a GC on another thread can then run its finalizer, which frees the native scalar while
/// libtorch still reads it ("Unknown scalar type", or silent garbage). A value taken from <see cref="Of(double)"/> stays
/// alive until <see cref="Dispose"/> (the end of the <c>using</c> scope), then its native scalar is freed at once.
/// </summary>
/// <remarks>
/// Each overload makes exactly the Scalar the implicit conversion of the same C# type makes (<c>int</c>, <c>long</c>,
/// <c>float</c>, <c>double</c>, <c>bool</c>), and TorchSharp has a <see cref="Scalar"/> overload for every operator it
/// has a primitive one for (<c>k.Of(2) * t</c> and <c>2 * t</c> both call <c>t.mul</c>), so results are bit-identical.
/// Usage: <c>using var kept = new KeptScalars(); var y = kept.Of(h) * f1 + x.clamp_min(kept.Of(1e-30));</c>
/// </remarks>
internal sealed class KeptScalars : IDisposable
{
    /// <summary>
    /// The integer Scalar 1, created once and never disposed (alive for the whole process): the <c>alpha</c> of a tensor
    /// addition. TorchSharp's <c>a + b</c>, <c>a.add(b)</c>, <c>a.add_(b)</c>, <c>t + s</c> and <c>s + t</c> all call
    /// <c>add(…, 1)</c> with a temporary Scalar made from the <c>int</c> 1, which the race above can free during the call;
    /// <c>a.add(b, KeptScalars.One)</c> is the same native call with the same (int) alpha, so the same bits.
    /// </summary>
    internal static readonly Scalar One = 1.ToScalar();

    private readonly List<Scalar> _kept = new(4);

    /// <summary>A float64 Scalar, alive until <see cref="Dispose"/>.</summary>
    public Scalar Of(double value) => Keep(value.ToScalar());

    /// <summary>A float32 Scalar, alive until <see cref="Dispose"/>.</summary>
    public Scalar Of(float value) => Keep(value.ToScalar());

    /// <summary>An integer Scalar (from an <c>int</c>), alive until <see cref="Dispose"/>.</summary>
    public Scalar Of(int value) => Keep(value.ToScalar());

    /// <summary>An integer Scalar (from a <c>long</c>), alive until <see cref="Dispose"/>.</summary>
    public Scalar Of(long value) => Keep(value.ToScalar());

    /// <summary>A boolean Scalar, alive until <see cref="Dispose"/>.</summary>
    public Scalar Of(bool value) => Keep(value.ToScalar());

    private Scalar Keep(Scalar s)
    {
        _kept.Add(s);
        return s;
    }

    /// <summary>Frees every Scalar handed out (they must not be used after this).</summary>
    public void Dispose()
    {
        foreach (var s in _kept)
            s.Dispose();
        _kept.Clear();
    }
}
