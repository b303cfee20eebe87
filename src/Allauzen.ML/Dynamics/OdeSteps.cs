using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Dynamics;

/// <summary>
/// The explicit steps of the DLDE 2022 paper for an autonomous field f, in float64 (arrays) and float32
/// (TorchSharp tensors, rows = independent states). With f₁ = f(x), f₂ = f(x + h f₁), f₃ = f(x + h/4 (f₁ + f₂)):
/// A₁ = x + h/2 (f₁ + f₂) (Heun, order 2) and A₂ = x + h/6 (f₁ + f₂ + 4 f₃) (order 3); the Fehlberg 3(2) pair
/// is (A₁, A₂) and its error rate is r = |A₁ − A₂|₁ / h (eq. 2; the 1-norm over coordinates, as the reference code).
/// </summary>
internal static class OdeSteps
{
    /// <summary>One Euler step x + h f(x) (float64).</summary>
    public static double[] Euler(Func<double[], double[]> f, double[] x, double h) => Axpy(x, h, f(x));

    /// <summary>One RK3 step: A₂ of the Fehlberg pair (float64).</summary>
    public static double[] Rk3(Func<double[], double[]> f, double[] x, double h) => Fehlberg32(f, x, h).A2;

    /// <summary>The Fehlberg 3(2) pair (A₁, A₂) for one step h (float64).</summary>
    public static (double[] A1, double[] A2) Fehlberg32(Func<double[], double[]> f, double[] x, double h)
    {
        var f1 = f(x);
        var f2 = f(Axpy(x, h, f1));
        var f12 = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
            f12[i] = f1[i] + f2[i];
        var f3 = f(Axpy(x, h / 4, f12));
        var a1 = new double[x.Length];
        var a2 = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            a1[i] = x[i] + h / 2 * f12[i];
            a2[i] = x[i] + h / 6 * (f12[i] + 4 * f3[i]);
        }
        return (a1, a2);
    }

    /// <summary>The error rate r = |a − b|₁ / h (float64).</summary>
    public static double ErrorRate(double[] a, double[] b, double h)
    {
        double r = 0;
        for (int i = 0; i < a.Length; i++)
            r += Math.Abs(a[i] - b[i]);
        return r / h;
    }

    /// <summary>The Fehlberg 3(2) pair (A₁, A₂) for one step h on every row of <paramref name="x"/> (float32).</summary>
    public static (Tensor A1, Tensor A2) Fehlberg32(Func<Tensor, Tensor> f, Tensor x, double h)
    {
        using var kept = new KeptScalars();
        var f1 = f(x);
        var f2 = f(x.add(kept.Of(h) * f1, KeptScalars.One));
        var f12 = f1.add(f2, KeptScalars.One);
        var f3 = f(x.add(kept.Of(h / 4) * f12, KeptScalars.One));
        return (x.add(kept.Of(h / 2) * f12, KeptScalars.One), x.add(kept.Of(h / 6) * f12.add(kept.Of(4) * f3, KeptScalars.One), KeptScalars.One));
    }

    /// <summary>
    /// Integrates every row of <paramref name="x"/> over one sample interval (time 1 in index units) with
    /// <paramref name="steps"/> equal steps of <paramref name="solver"/>; Fehlberg32 propagates A₂ (RK3).
    /// </summary>
    public static Tensor Integrate(OdeSolver solver, Func<Tensor, Tensor> f, Tensor x, int steps)
    {
        double h = 1.0 / steps;
        using var kept = new KeptScalars();
        var hs = kept.Of(h);
        var y = x;
        for (int s = 0; s < steps; s++)
            y = solver == OdeSolver.Euler ? y.add(hs * f(y), KeptScalars.One) : Fehlberg32(f, y, h).A2;
        return y;
    }

    /// <summary>The error rate r = |a − b|₁ / h per row (float32).</summary>
    public static Tensor ErrorRate(Tensor a, Tensor b, double h)
    {
        using var kept = new KeptScalars();
        return (a - b).abs().sum(1) / kept.Of(h);
    }

    /// <summary>
    /// The step-count proposal of the paper: a row with r ≤ ε keeps one step; otherwise h' = S·h·√(ε/r) with h = 1,
    /// and the row needs 1/h' steps (before rounding), capped at <paramref name="maxSteps"/>. Returns 1/h' per row
    /// (1 for accepted rows).
    /// </summary>
    public static double ProposedSteps(double r, double tolerance, double safety, int maxSteps) =>
        r <= tolerance ? 1.0 : Math.Min(maxSteps, 1.0 / (safety * Math.Sqrt(tolerance / r)));

    /// <summary>Rounds a proposed step count up to whole steps in [1, <paramref name="maxSteps"/>].</summary>
    public static int WholeSteps(double proposed, int maxSteps) =>
        Math.Clamp((int)Math.Ceiling(proposed - 1e-9), 1, maxSteps);

    private static double[] Axpy(double[] x, double a, double[] y)
    {
        var r = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
            r[i] = x[i] + a * y[i];
        return r;
    }
}
