namespace Allauzen.ML.Foton;

// A projection step that is not the last one: the polynomial fitted to the whole estimated spectrum.
internal static partial class Bjorck
{
    private const int FitNodes = 64;
    private const int FitCheckPoints = 257;

    /// <summary>
    /// The degree-k polynomial p(r) = Σ c_j r^j (R = I − P, so r = 1 − λ for an eigenvalue λ of P) that makes the
    /// residual 1 − (1 − r)p(r)² small over the whole interval |r| ≤ <paramref name="radius"/>, with that residual's
    /// largest value there; <see langword="null"/> when the fit fails.
    /// </summary>
    /// <remarks>
    /// The Taylor polynomial of (1 − r)^(−½) is exact at r = 0 and leaves ≈ c·radius^(k+1) at the ends, which decides the
    /// next step's degree. Fitted over the interval instead (least squares of 1 − √(1 − r)·p(r) at 64 Chebyshev nodes, close
    /// to the minimax fit), the same k products leave a residual several times smaller, so the next (last) step needs a
    /// lower degree. Only for a step that is not the last: the stopping bound is always the last step's (Taylor) bound,
    /// computed from the Gram matrix the fitted step leaves, measured and not predicted; the radius (the smaller of the
    /// Lanczos estimate and the proven bound on ‖R‖₂) only chooses the polynomial.
    /// </remarks>
    internal static (double[] Coefficients, double Residual)? FittedStep(int degree, double radius)
    {
        if (degree < 1 || !(radius > 1e-3 && radius < 0.95))
            return null;
        int m = degree + 1;
        var normal = new double[m, m];
        var right = new double[m];
        Span<double> row = stackalloc double[m];
        for (int i = 0; i < FitNodes; i++)
        {
            // In t = r/radius ∈ [−1, 1] for conditioning; the coefficients are rescaled below.
            double t = Math.Cos(Math.PI * (i + 0.5) / FitNodes), root = Math.Sqrt(1 - radius * t), power = 1;
            for (int j = 0; j < m; j++, power *= t)
                row[j] = root * power;
            for (int a = 0; a < m; a++)
            {
                right[a] += row[a];
                for (int b = 0; b < m; b++)
                    normal[a, b] += row[a] * row[b];
            }
        }
        var beta = SolveSymmetric(normal, right);
        if (beta is null)
            return null;
        var c = new double[m];
        double scale = 1;
        for (int j = 0; j < m; j++, scale *= radius)
            c[j] = beta[j] / scale;
        double worst = 0;
        for (int i = 0; i < FitCheckPoints; i++)
        {
            double r = radius * (2.0 * i / (FitCheckPoints - 1) - 1), p = 0;
            for (int j = m - 1; j >= 0; j--)
                p = p * r + c[j];
            worst = Math.Max(worst, Math.Abs(1 - (1 - r) * p * p));
        }
        return double.IsFinite(worst) ? (c, worst) : null;
    }

    /// <summary>Gaussian elimination with partial pivoting on a small system; <see langword="null"/> if singular.</summary>
    private static double[]? SolveSymmetric(double[,] a, double[] b)
    {
        int n = b.Length;
        for (int k = 0; k < n; k++)
        {
            int pivot = k;
            for (int i = k + 1; i < n; i++)
                if (Math.Abs(a[i, k]) > Math.Abs(a[pivot, k]))
                    pivot = i;
            if (!(Math.Abs(a[pivot, k]) > 1e-300))
                return null;
            if (pivot != k)
            {
                for (int j = 0; j < n; j++)
                    (a[k, j], a[pivot, j]) = (a[pivot, j], a[k, j]);
                (b[k], b[pivot]) = (b[pivot], b[k]);
            }
            for (int i = k + 1; i < n; i++)
            {
                double f = a[i, k] / a[k, k];
                for (int j = k; j < n; j++)
                    a[i, j] -= f * a[k, j];
                b[i] -= f * b[k];
            }
        }
        var x = new double[n];
        for (int i = n - 1; i >= 0; i--)
        {
            double sum = b[i];
            for (int j = i + 1; j < n; j++)
                sum -= a[i, j] * x[j];
            x[i] = sum / a[i, i];
        }
        return x;
    }
}
