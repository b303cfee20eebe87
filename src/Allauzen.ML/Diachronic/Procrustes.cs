using Allauzen.ML.Torch;
using TorchSharp;

namespace Allauzen.ML.Diachronic;

/// <summary>Orthogonal Procrustes (Schönemann; Hamilton et al. 2016 for diachronic alignment).</summary>
internal static class Procrustes
{
    /// <summary>
    /// The orthogonal Q (K×K, row-major) minimising ‖X Q − Y‖_F for X, Y of n×K (row-major): with
    /// M = Xᵀ Y = U S Vᵀ, Q = U Vᵀ. Computed in float64.
    /// </summary>
    public static double[] Solve(double[] x, double[] y, int n, int k)
    {
        if (x.Length != (long)n * k || y.Length != (long)n * k)
            throw new ArgumentException($"Procrustes: X and Y must both be {n}×{k}.");
        var m = new double[k * k];
        for (int r = 0; r < n; r++)
        {
            int o = r * k;
            for (int i = 0; i < k; i++)
            {
                double xi = x[o + i];
                if (xi == 0)
                    continue;
                int mo = i * k;
                for (int j = 0; j < k; j++)
                    m[mo + j] += xi * y[o + j];
            }
        }
        TorchRuntime.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        var mt = torch.tensor(m, [k, k], torch.float64);
        var (u, _, vh) = torch.linalg.svd(mt, fullMatrices: false);
        var q = torch.matmul(u, vh).contiguous();
        return q.data<double>().ToArray();
    }

    /// <summary>Rows of <paramref name="a"/> (n×K) times Q, into a new array.</summary>
    public static float[] Apply(float[] a, int n, int k, double[] q)
    {
        var result = new float[(long)n * k];
        var tmp = new double[k];
        for (int r = 0; r < n; r++)
        {
            Array.Clear(tmp);
            int o = r * k;
            for (int i = 0; i < k; i++)
            {
                double ai = a[o + i];
                if (ai == 0)
                    continue;
                int qo = i * k;
                for (int j = 0; j < k; j++)
                    tmp[j] += ai * q[qo + j];
            }
            for (int j = 0; j < k; j++)
                result[o + j] = (float)tmp[j];
        }
        return result;
    }

    /// <summary>L2-normalises each row in place (zero rows stay zero).</summary>
    public static void NormalizeRows(float[] a, int n, int k)
    {
        for (int r = 0; r < n; r++)
        {
            var row = a.AsSpan(r * k, k);
            double s = 0;
            foreach (float v in row)
                s += (double)v * v;
            if (s <= 0)
                continue;
            float inv = (float)(1 / Math.Sqrt(s));
            for (int i = 0; i < k; i++)
                row[i] *= inv;
        }
    }
}
