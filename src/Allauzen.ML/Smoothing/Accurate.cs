namespace Allauzen.ML.Smoothing;

/// <summary>log(1 + x) and exp(x) − 1 without cancellation (.NET's LogP1/ExpM1 are the naive forms).</summary>
internal static class Accurate
{
    /// <summary>log(1 + x), accurate to a few ulps for small x (Goldberg's correction).</summary>
    public static double Log1P(double x)
    {
        double u = 1.0 + x;
        if (u == 1.0)
            return x;
        if (double.IsInfinity(u) || u <= 0)
            return Math.Log(u);
        return Math.Log(u) * x / (u - 1.0);
    }

    /// <summary>exp(x) − 1, accurate to a few ulps for small x (Kahan's correction).</summary>
    public static double ExpM1(double x)
    {
        double u = Math.Exp(x);
        if (u == 1.0)
            return x;
        double um1 = u - 1.0;
        if (um1 == -1.0 || double.IsInfinity(u))
            return um1;
        return um1 * x / Math.Log(u);
    }
}
