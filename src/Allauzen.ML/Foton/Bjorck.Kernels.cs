using System.Runtime.CompilerServices;
using System.Buffers;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

// The projection's kernels: the bounds' norms read on the host from the tensor's memory, and symmetric products.
internal static partial class Bjorck
{
    /// <summary>
    /// max|R|, the largest absolute row sum, ‖R‖_F and the largest row L2 norm of R, in float64: on the host from the
    /// tensor's own memory when it is a contiguous float32 or float64 CPU tensor (no copy), else through one read.
    /// </summary>
    private static double[] Norms(Tensor r)
    {
        if (IsHost(r))
        {
            int m = (int)r.shape[1];
            return r.dtype == ScalarType.Float64 ? HostNorms(MemoryMarshal.Cast<byte, double>(r.bytes), m)
                : HostNorms(MemoryMarshal.Cast<byte, float>(r.bytes), m, RowNorms);
        }
        using var scope = torch.NewDisposeScope();
        var ra = r.abs();
        var squares = r.square().sum(1);
        return torch.stack([ra.max(), ra.sum(1).max(), squares.sum().sqrt(), squares.max().sqrt()]).to(ScalarType.Float64).cpu().data<double>().ToArray();
    }

    private delegate (double MaxAbs, double Sum, double Squares) RowNormsOf<T>(ReadOnlySpan<T> row);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    private static double[] HostNorms<T>(ReadOnlySpan<T> r, int m, RowNormsOf<T>? rowNorms = null)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double maxAbs = 0, maxRowSum = 0, squares = 0, maxRowSquares = 0;
        for (int i = 0; i + m <= r.Length; i += m)
        {
            var row = r.Slice(i, m);
            var (rowMax, rowSum, rowSquares) = rowNorms is null ? ScalarRowNorms(row) : rowNorms(row);
            maxAbs = Math.Max(maxAbs, rowMax);
            if (!double.IsFinite(rowSum))
                return [double.NaN, double.NaN, double.NaN, double.NaN];
            maxRowSum = Math.Max(maxRowSum, rowSum);
            maxRowSquares = Math.Max(maxRowSquares, rowSquares);
            squares += rowSquares;
        }
        return [maxAbs, maxRowSum, Math.Sqrt(squares), Math.Sqrt(maxRowSquares)];
    }

    private static (double MaxAbs, double Sum, double Squares) ScalarRowNorms<T>(ReadOnlySpan<T> row)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double maxAbs = 0, sum = 0, squares = 0;
        foreach (var x in row)
        {
            double v = double.CreateTruncating(x), a = Math.Abs(v);
            maxAbs = a > maxAbs ? a : maxAbs;
            sum += a;
            squares += v * v;
        }
        return (maxAbs, sum, squares);
    }

    /// <summary>
    /// A float32 row's max |x| (exact), and upper bounds on Σ|x| and Σx², accumulated in float32 in sixteen lanes (two
    /// vectors of eight). A sum of m nonnegative terms rounded in float32 in any order is at least (1 − γ) times the
    /// exact one, γ = m·u/(1 − m·u), u = 2⁻²⁴; with each square's own rounding, m + 1 roundings, so multiplying by
    /// 1 + 2(m + 2)·u (≥ 1/(1 − γ) while (m + 2)·u ≤ ¼) and adding m times the smallest float32 (squares that underflow)
    /// makes both upper bounds, which is all the projection's bounds ask of them. A row whose float32 sums are not
    /// finite (huge entries) is summed again in float64.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    private static (double MaxAbs, double Sum, double Squares) RowNorms(ReadOnlySpan<float> row)
    {
        const int Width = 8; // Vector256<float>.Count
        if (!Vector256.IsHardwareAccelerated || row.Length < 2 * Width || row.Length > (1 << 20))
            return ScalarRowNorms(row);
        Vector256<float> max0 = default, max1 = default, sum0 = default, sum1 = default, sq0 = default, sq1 = default;
        int j = 0;
        for (; j + 2 * Width <= row.Length; j += 2 * Width)
        {
            var v0 = Vector256.Create(row.Slice(j, Width));
            var v1 = Vector256.Create(row.Slice(j + Width, Width));
            var a0 = Vector256.Abs(v0);
            var a1 = Vector256.Abs(v1);
            max0 = Vector256.Max(max0, a0);
            max1 = Vector256.Max(max1, a1);
            sum0 += a0;
            sum1 += a1;
            sq0 += v0 * v0;
            sq1 += v1 * v1;
        }
        float maxAbs = 0, sum = 0, squares = 0;
        for (; j < row.Length; j++)
        {
            float v = row[j], absolute = Math.Abs(v);
            maxAbs = Math.Max(maxAbs, absolute);
            sum += absolute;
            squares += v * v;
        }
        var maxAll = Vector256.Max(max0, max1);
        for (int k = 0; k < Width; k++)
            maxAbs = Math.Max(maxAbs, maxAll[k]);
        sum += Vector256.Sum(sum0 + sum1);
        squares += Vector256.Sum(sq0 + sq1);
        if (!float.IsFinite(sum) || !float.IsFinite(squares) || float.IsNaN(maxAbs))
            return ScalarRowNorms(row);
        double inflate = 1 + 2.0 * (row.Length + 2) * Math.ScaleB(1.0, -24);
        return (maxAbs, sum * inflate, squares * inflate + row.Length * (double)float.Epsilon);
    }

    private static bool IsHost(Tensor t) =>
        t.device_type == DeviceType.CPU && t.is_contiguous() && (t.dtype == ScalarType.Float32 || t.dtype == ScalarType.Float64);

    private static void ToDoubles(ReadOnlySpan<byte> bytes, ScalarType dtype, Span<double> destination)
    {
        if (dtype == ScalarType.Float64)
            MemoryMarshal.Cast<byte, double>(bytes).CopyTo(destination);
        else
        {
            var f = MemoryMarshal.Cast<byte, float>(bytes);
            for (int k = 0; k < destination.Length; k++)
                destination[k] = f[k];
        }
    }

    private const long SymmetricMinimum = 128;

    /// <summary>
    /// AB for a product known to be symmetric (a Gram matrix, or two commuting symmetric matrices). Where MKL's triangular
    /// product is available (<see cref="Torch.MklTriangularProduct"/>: the lower triangle alone, half the multiply-adds)
    /// it computes it. Otherwise only the block lower
    /// triangle is multiplied (row block k times the first k + 1 column blocks: 3 of 4 blocks with two row blocks, 10 of
    /// 16 with four), and the rest is its mirror, so the result is exactly symmetric. Four blocks when the inner
    /// dimension is at least twice the side (a wide layer's Gram matrix), two otherwise (at 256³ smaller blocks lose
    /// more to the calls than they save; docs/results/foton-speed.md). Sides below 128: one product.
    /// </summary>
    internal static Tensor SymmetricProduct(Tensor a, Tensor b)
    {
        if (Torch.MklTriangularProduct.TryMultiply(a, b) is { } triangular)
            return triangular;
        long n = a.shape[0];
        int blocks = a.shape[1] >= 2 * n ? 4 : 2;
        if (n < SymmetricMinimum || n % blocks != 0 || b.shape[1] != n)
            return a.mm(b);
        long bs = n / blocks;
        var c = torch.empty([n, n], a.dtype, a.device);
        for (int k = 0; k < blocks; k++)
        {
            using var target = c.narrow(0, k * bs, bs).narrow(1, 0, (k + 1) * bs);
            using var rows = a.narrow(0, k * bs, bs);
            using var columns = b.narrow(1, 0, (k + 1) * bs);
            target.addmm_(rows, columns, beta: 0, alpha: 1);
        }
        for (int k = 1; k < blocks; k++)
        {
            using var upper = c.narrow(0, 0, k * bs).narrow(1, k * bs, bs);
            using var lower = c.narrow(0, k * bs, bs).narrow(1, 0, k * bs);
            upper.copy_(lower.t());
        }
        return c;
    }
}
