using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Evaluation;

/// <summary>
/// Squared Euclidean distances between the rows of two <see cref="VectorSet"/>s, one block of at most
/// <see cref="BlockSize"/>×<see cref="BlockSize"/> at a time: d²(x, y) = ‖x‖² + ‖y‖² − 2x·y in float32 (one matrix
/// product per block), clamped at 0. <see cref="Tolerance"/> bounds its error: for every pair,
/// |d²_float32 − d²_exact| ≤ c·(‖x‖² + ‖y‖²) with c = 2·(2γ_d + 10u), u = 2⁻²⁴, γ_d = d·u/(1 − d·u) (the dot-product
/// and norm error bounds of Higham, §3.1, doubled for safety); d²_exact is <see cref="VectorSet.ExactSquaredDistance"/>.
/// Callers decide every comparison that falls inside this band with the exact float64 distance, so the float32 products
/// never change a result.
/// </summary>
internal sealed class PairwiseBlocks : IDisposable
{
    private const double U = 1.0 / (1 << 24);
    private readonly Tensor _x, _y, _x2, _y2;

    /// <summary>Copies both sets into float32 tensors (O((n + m)·d) memory, nothing quadratic).</summary>
    public PairwiseBlocks(VectorSet x, VectorSet y, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        if (x.Dimensions != y.Dimensions)
            throw new ArgumentException($"Both sets must have the same dimension ({x.Dimensions} vs {y.Dimensions}).");
        TorchRuntime.EnsureInitialized();
        X = x;
        Y = y;
        BlockSize = blockSize;
        SameSet = ReferenceEquals(x, y);
        XNorms = Norms(x);
        YNorms = SameSet ? XNorms : Norms(y);
        MaxYNorm = YNorms.Length == 0 ? 0 : YNorms.Max();
        int d = x.Dimensions;
        double gamma = d * U / (1 - d * U);
        Tolerance = 2 * (2 * gamma + 10 * U);
        _x = FromSet(x);
        _y = SameSet ? _x : FromSet(y);
        _x2 = SquaredNorms(_x);
        _y2 = SameSet ? _x2 : SquaredNorms(_y);
    }

    /// <summary>The row set.</summary>
    public VectorSet X { get; }

    /// <summary>The column set.</summary>
    public VectorSet Y { get; }

    /// <summary>True when both sets are the same object (blocks on the diagonal hold the self pairs).</summary>
    public bool SameSet { get; }

    /// <summary>Largest block side.</summary>
    public int BlockSize { get; }

    /// <summary>The error coefficient c: |d²_float32 − d²_exact| ≤ c·(‖x‖² + ‖y‖²).</summary>
    public double Tolerance { get; }

    /// <summary>‖x_i‖² in float64.</summary>
    public double[] XNorms { get; }

    /// <summary>‖y_j‖² in float64.</summary>
    public double[] YNorms { get; }

    /// <summary>max_j ‖y_j‖².</summary>
    public double MaxYNorm { get; }

    /// <summary>The blocks (start, count) of the rows of a set of <paramref name="rows"/> points.</summary>
    public IEnumerable<(int Start, int Count)> Blocks(int rows)
    {
        for (int s = 0; s < rows; s += BlockSize)
            yield return (s, Math.Min(BlockSize, rows - s));
    }

    /// <summary>The float32 block d²(x_i, y_j), i ∈ [i0, i0 + bi), j ∈ [j0, j0 + bj), clamped at 0; its diagonal is
    /// set to +∞ when <paramref name="infiniteSelf"/> and the block holds the self pairs.</summary>
    public Tensor SquaredDistances(int i0, int bi, int j0, int bj, bool infiniteSelf = false)
    {
        using var kept = new KeptScalars();
        var d2 = torch.addmm(_y2.narrow(0, j0, bj).unsqueeze(0), _x.narrow(0, i0, bi), _y.narrow(0, j0, bj).t(), beta: 1, alpha: -2);
        d2.add_(_x2.narrow(0, i0, bi).unsqueeze(1), KeptScalars.One).clamp_min_(kept.Of(0));
        if (infiniteSelf && SameSet && i0 == j0)
            d2.diagonal().fill_(kept.Of(double.PositiveInfinity));
        return d2;
    }

    /// <summary>Writes the float32 block d²(x_i, y_j) (i ∈ [i0, i0 + bi), j ∈ [j0, j0 + bj)), clamped at 0, into the
    /// bi×bj tensor <paramref name="target"/> (a reused buffer: no allocation of its size).</summary>
    public void SquaredDistancesInto(Tensor target, int i0, int bi, int j0, int bj)
    {
        target.copy_(_y2.narrow(0, j0, bj).unsqueeze(0));
        target.addmm_(_x.narrow(0, i0, bi), _y.narrow(0, j0, bj).t(), beta: 1, alpha: -2);
        using var kept = new KeptScalars();
        target.add_(_x2.narrow(0, i0, bi).unsqueeze(1), KeptScalars.One).clamp_min_(kept.Of(0));
    }

    /// <summary>A float32 tensor of c·‖·‖² + <paramref name="extra"/>·v for the given range, v = <paramref name="values"/>.</summary>
    public static Tensor ToleranceVector(double[] norms, int start, int count, double c, double[]? values = null, double extra = 0)
    {
        var t = new float[count];
        for (int i = 0; i < count; i++)
            t[i] = (float)(c * norms[start + i] + (values is null ? 0 : extra * values[start + i]));
        return Copy(t, count);
    }

    /// <summary>A float32 tensor of <paramref name="values"/>[start .. start + count).</summary>
    public static Tensor Slice(double[] values, int start, int count)
    {
        var t = new float[count];
        for (int i = 0; i < count; i++)
            t[i] = (float)values[start + i];
        return Copy(t, count);
    }

    /// <summary>Unit roundoff of float32 (2⁻²⁴), for callers that round float64 values to float32.</summary>
    public static double Float32Roundoff => U;

    /// <summary>A float32 tensor holding a copy of the set.</summary>
    internal static Tensor FromSet(VectorSet s) => Copy(s.Data, s.Rows, s.Dimensions);

    /// <summary>
    /// A new tensor of <paramref name="shape"/> holding a copy of <paramref name="data"/>, through an accessor:
    /// <c>torch.tensor(T[])</c> was measured (TorchSharp 0.107) to keep its native copy after disposal until the
    /// garbage collector runs, which grows the working set by the size of every array turned into a tensor.
    /// </summary>
    internal static Tensor Copy<T>(T[] data, params long[] shape) where T : unmanaged
    {
        var type = typeof(T) == typeof(float) ? ScalarType.Float32 : typeof(T) == typeof(double) ? ScalarType.Float64
            : typeof(T) == typeof(long) ? ScalarType.Int64 : throw new NotSupportedException(typeof(T).Name);
        var t = torch.empty(shape, type);
        if (data.Length > 0)
        {
            using var accessor = t.data<T>();
            accessor.CopyFrom(data);
        }
        return t;
    }

    /// <summary>A copy of a tensor's values, with the accessor disposed.</summary>
    internal static T[] ToArray<T>(Tensor t) where T : unmanaged
    {
        using var accessor = t.data<T>();
        return accessor.ToArray();
    }

    private static Tensor SquaredNorms(Tensor x)
    {
        using var square = x.square();
        return square.sum(1);
    }

    private static double[] Norms(VectorSet s)
    {
        var n = new double[s.Rows];
        for (int i = 0; i < s.Rows; i++)
            n[i] = s.SquaredNorm(i);
        return n;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _x.Dispose();
        _x2.Dispose();
        if (!SameSet)
        {
            _y.Dispose();
            _y2.Dispose();
        }
    }
}
