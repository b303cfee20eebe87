namespace Allauzen.ML.Evaluation;

/// <summary>
/// The PRDC definitions evaluated literally, pair by pair in float64, without blocks or torch: O(n·m·d) time, O(1) extra
/// memory. The reference the blocked computation (<see cref="VectorSetMetrics"/>) is tested and benchmarked against.
/// </summary>
internal static class PrdcDefinition
{
    /// <summary>Exact squared k-NN radii within one set, by full scans.</summary>
    public static double[] SquaredRadii(VectorSet x, int k) =>
        Enumerable.Range(0, x.Rows).Select(i => VectorSetMetrics.ExactKth(x, i, x, k, excludeSelf: true)).ToArray();

    /// <summary>The counts of <see cref="VectorSetMetrics.CrossIndicators"/>, from the exact distances of every pair.</summary>
    public static PrdcCounts Counts(VectorSet q, VectorSet p, double[] r2Q, double[] r2P)
    {
        long precision = 0, density = 0;
        var covered = new bool[p.Rows];
        var recalled = new bool[p.Rows];
        for (int i = 0; i < q.Rows; i++)
        {
            bool any = false;
            for (int j = 0; j < p.Rows; j++)
            {
                double d2 = q.ExactSquaredDistance(i, p, j);
                if (d2 < r2P[j])
                {
                    any = true;
                    density++;
                    covered[j] = true;
                }
                recalled[j] |= d2 < r2Q[i];
            }
            precision += any ? 1 : 0;
        }
        return new PrdcCounts(precision, recalled.Count(b => b), density, covered.Count(b => b));
    }
}
