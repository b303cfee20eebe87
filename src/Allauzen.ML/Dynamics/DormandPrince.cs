namespace Allauzen.ML.Dynamics;

/// <summary>
/// The explicit Runge–Kutta 5(4) pair of Dormand and Prince (1980) with step-size control, in float64:
/// the generator of reference trajectories (the paper's data come from the same scheme, SciPy's <c>RK45</c>).
/// The 5th-order solution is propagated; the embedded 4th-order one estimates the local error, and the step
/// is accepted when the scaled RMS error is at most 1.
/// </summary>
internal static class DormandPrince
{
    // Butcher tableau (Dormand & Prince 1980): the weights b of the 5th-order solution are the last row of a (FSAL); e = b − b̂.
    private static readonly double[][] A =
    [
        [],
        [1.0 / 5],
        [3.0 / 40, 9.0 / 40],
        [44.0 / 45, -56.0 / 15, 32.0 / 9],
        [19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729],
        [9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656],
        [35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84],
    ];

    private static readonly double[] E =
    [
        35.0 / 384 - 5179.0 / 57600, 0, 500.0 / 1113 - 7571.0 / 16695, 125.0 / 192 - 393.0 / 640,
        -2187.0 / 6784 + 92097.0 / 339200, 11.0 / 84 - 187.0 / 2100, -1.0 / 40,
    ];

    /// <summary>Advances <paramref name="x"/> (in place) by <paramref name="duration"/> under the autonomous field <paramref name="f"/>.</summary>
    /// <param name="f">The vector field: writes ẋ = f(x) into its second argument.</param>
    /// <param name="x">The state, overwritten with the state after <paramref name="duration"/>.</param>
    /// <param name="duration">The time to integrate over (positive).</param>
    /// <param name="rtol">Relative tolerance of the local error.</param>
    /// <param name="atol">Absolute tolerance of the local error.</param>
    /// <param name="h">The step to try first; on return, the step to try next.</param>
    public static void Advance(Action<double[], double[]> f, double[] x, double duration, double rtol, double atol, ref double h)
    {
        int n = x.Length;
        var k = new double[7][];
        for (int s = 0; s < 7; s++)
            k[s] = new double[n];
        var y = new double[n];
        var err = new double[n];
        double t = 0;
        if (!(h > 0))
            h = duration;
        f(x, k[0]);
        while (t < duration)
        {
            bool last = t + h >= duration;
            double step = last ? duration - t : h;
            for (int s = 1; s < 7; s++)
            {
                for (int i = 0; i < n; i++)
                {
                    double acc = x[i];
                    for (int j = 0; j < s; j++)
                        acc += step * A[s][j] * k[j][i];
                    y[i] = acc;
                }
                f(y, k[s]);
            }
            // y now holds the 5th-order solution (stage 7 is evaluated at it: FSAL).
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                double e = 0;
                for (int s = 0; s < 7; s++)
                    e += E[s] * k[s][i];
                e *= step;
                double scale = atol + rtol * Math.Max(Math.Abs(x[i]), Math.Abs(y[i]));
                sum += e / scale * (e / scale);
            }
            double norm = Math.Sqrt(sum / n);
            if (norm <= 1)
            {
                t = last ? duration : t + step;
                Array.Copy(y, x, n);
                (k[0], k[6]) = (k[6], k[0]);
                if (!last)
                    h = step * Math.Min(5, 0.9 * Math.Pow(Math.Max(norm, 1e-10), -0.2));
            }
            else
            {
                h = step * Math.Max(0.2, 0.9 * Math.Pow(norm, -0.2));
            }
            if (h < 1e-14 * Math.Max(1, duration))
                throw new InvalidOperationException("The reference integrator's step size underflowed: the system is too stiff or diverged.");
        }
    }
}
