using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

// The centring's estimates of the Gram matrix's extreme eigenvalues: a few Lanczos steps on the host.
internal static partial class Bjorck
{
    /// <summary>
    /// Estimates of the smallest and largest eigenvalues of the symmetric <paramref name="p"/>: the extreme Ritz values
    /// of <see cref="LanczosSteps"/> Lanczos steps from a fixed start vector (deterministic), computed on the host in
    /// float64. Ritz values lie inside the spectrum and converge to its ends first.
    /// </summary>
    private static (double Lo, double Hi) ExtremeEigenvalues(Tensor p)
    {
        int n = (int)p.shape[0];
        var a = ArrayPool<double>.Shared.Rent(n * n);
        try
        {
            // P's float32 (or float64) values in float64, read in place from a contiguous host tensor: no tensor copy
            // and no new array per centring (the pool's).
            if (IsHost(p))
                ToDoubles(p.bytes, p.dtype, a.AsSpan(0, n * n));
            else
            {
                using var copy = p.to(ScalarType.Float64).cpu().contiguous();
                ToDoubles(copy.bytes, ScalarType.Float64, a.AsSpan(0, n * n));
            }
            return Lanczos(a, n);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(a);
        }
    }

    /// <summary>
    /// <see cref="ExtremeEigenvalues(Tensor)"/> for a row-major n×n float32 matrix in host memory: the products with
    /// the Lanczos vectors in float32 (the vector rounded to float32; the recurrence in float64). The estimates only
    /// choose the centring scale and the degrees, never the bound.
    /// </summary>
    private static (double Lo, double Hi) ExtremeEigenvalues(float[] p, int n)
    {
        var single = new float[n];
        var product = new float[n];
        return Lanczos(n, (q, w) =>
        {
            for (int i = 0; i < n; i++)
                single[i] = (float)q[i];
            SymmetricProduct(p, n, single, product);
            for (int i = 0; i < n; i++)
                w[i] = product[i];
        });
    }

    /// <summary>
    /// w = P·q for a symmetric row-major n×n float32 P, as w = Σ_j q_j·(row j of P) (rows are columns): four rows per
    /// pass over w, in vector lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    internal static void SymmetricProduct(ReadOnlySpan<float> p, int n, ReadOnlySpan<float> q, Span<float> w)
    {
        w[..n].Clear();
        int j = 0;
        if (Vector256.IsHardwareAccelerated && n >= Vector256<float>.Count)
        {
            const int W = 8; // Vector256<float>.Count
            int vectorEnd = n - n % W;
            for (; j + 4 <= n; j += 4)
            {
                var r0 = p.Slice(j * n, n);
                var r1 = p.Slice((j + 1) * n, n);
                var r2 = p.Slice((j + 2) * n, n);
                var r3 = p.Slice((j + 3) * n, n);
                var c0 = Vector256.Create(q[j]);
                var c1 = Vector256.Create(q[j + 1]);
                var c2 = Vector256.Create(q[j + 2]);
                var c3 = Vector256.Create(q[j + 3]);
                int i = 0;
                for (; i < vectorEnd; i += W)
                {
                    var sum = (c0 * Vector256.Create(r0.Slice(i, W)) + c1 * Vector256.Create(r1.Slice(i, W)))
                        + (c2 * Vector256.Create(r2.Slice(i, W)) + c3 * Vector256.Create(r3.Slice(i, W)));
                    (Vector256.Create(w.Slice(i, W)) + sum).CopyTo(w.Slice(i, W));
                }
                for (; i < n; i++)
                    w[i] += (q[j] * r0[i] + q[j + 1] * r1[i]) + (q[j + 2] * r2[i] + q[j + 3] * r3[i]);
            }
        }
        for (; j < n; j++)
        {
            var row = p.Slice(j * n, n);
            for (int i = 0; i < n; i++)
                w[i] += q[j] * row[i];
        }
    }

    private static (double Lo, double Hi) Lanczos(double[] a, int n) =>
        Lanczos(n, (q, w) =>
        {
            for (int i = 0; i < n; i++)
                w[i] = Dot(a.AsSpan(i * n, n), q);
        });

    /// <summary>Lanczos steps with the matrix given by its product with a vector (<paramref name="multiply"/>(q, w): w = A·q).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    private static (double Lo, double Hi) Lanczos(int n, Action<double[], double[]> multiply)
    {
        int m = Math.Min(LanczosSteps, n);
        var alpha = new double[m];
        var beta = new double[m];
        var q = new double[n];
        var prev = new double[n];
        var wv = new double[n];
        for (int i = 0; i < n; i++)
            q[i] = (1 + 0.5 * Math.Sin(i + 1)) / Math.Sqrt(n); // not orthogonal to any particular eigenvector
        double qn = Math.Sqrt(q.Sum(v => v * v));
        for (int i = 0; i < n; i++)
            q[i] /= qn;
        int steps = m;
        for (int j = 0; j < m; j++)
        {
            multiply(q, wv);
            if (j > 0)
            {
                for (int i = 0; i < n; i++)
                    wv[i] -= beta[j - 1] * prev[i];
            }
            double al = 0;
            for (int i = 0; i < n; i++)
                al += q[i] * wv[i];
            alpha[j] = al;
            double bn = 0;
            for (int i = 0; i < n; i++)
            {
                wv[i] -= al * q[i];
                bn += wv[i] * wv[i];
            }
            bn = Math.Sqrt(bn);
            if (j == m - 1 || bn < 1e-12)
            {
                steps = j + 1;
                break;
            }
            beta[j] = bn;
            (prev, q) = (q, prev);
            for (int i = 0; i < n; i++)
                q[i] = wv[i] / bn;
        }
        // Extreme eigenvalues of the tridiagonal T (alpha, beta) by bisection on its Sturm sequence.
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        for (int i = 0; i < steps; i++)
        {
            double radius = (i > 0 ? Math.Abs(beta[i - 1]) : 0) + (i < steps - 1 ? Math.Abs(beta[i]) : 0);
            lo = Math.Min(lo, alpha[i] - radius);
            hi = Math.Max(hi, alpha[i] + radius);
        }
        int Below(double x)
        {
            int count = 0;
            double d = 1;
            for (int i = 0; i < steps; i++)
            {
                d = alpha[i] - x - (i > 0 ? beta[i - 1] * beta[i - 1] / d : 0);
                if (d == 0)
                    d = 1e-300;
                if (d < 0)
                    count++;
            }
            return count;
        }
        double Bisect(int index)
        {
            // To a relative width of 1e-10 (the estimates pick a scale and degrees; 60 halvings were ~30 wasted Sturm
            // sequences, each a chain of dependent divisions).
            double l = lo, h = hi;
            for (int it = 0; it < 60 && h - l > 1e-10 * Math.Max(1, Math.Abs(l) + Math.Abs(h)); it++)
            {
                double mid = 0.5 * (l + h);
                if (Below(mid) > index)
                    h = mid;
                else
                    l = mid;
            }
            return 0.5 * (l + h);
        }
        return (Bisect(0), Bisect(steps - 1));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    private static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        var acc = Vector<double>.Zero;
        int i = 0;
        for (; i <= x.Length - Vector<double>.Count; i += Vector<double>.Count)
            acc += new Vector<double>(x[i..]) * new Vector<double>(y[i..]);
        double sum = Vector.Sum(acc);
        for (; i < x.Length; i++)
            sum += x[i] * y[i];
        return sum;
    }
}
