namespace Allauzen.ML.Smoothing;

/// <summary>The maps from logits to the probability simplex used by LVM-RS.</summary>
public enum SimplexMapKind
{
    /// <summary>softmax(t·z).</summary>
    Softmax = 0,

    /// <summary>sparsemax(t·z), the Euclidean projection onto the simplex (Martins and Astudillo 2016).</summary>
    Sparsemax = 1,
}

/// <summary>One LVM-RS simplex map h(z) = map(t·z): t multiplies the logits (an inverse temperature).</summary>
/// <param name="Kind">softmax or sparsemax.</param>
/// <param name="T">The logit multiplier t &gt; 0 (t = 1e7 is effectively a one-hot vote).</param>
public readonly record struct SimplexMap(SimplexMapKind Kind, double T)
{
    /// <summary>
    /// The grid of the LVM-RS reference code: t ∈ {1} ∪ linspace(0.1, 50, 100) ∪ {1e7}, for sparsemax then
    /// softmax (204 maps).
    /// </summary>
    public static IReadOnlyList<SimplexMap> PublishedGrid { get; } = BuildPublishedGrid();

    /// <summary>
    /// The small fixed set used by <see cref="SmoothingMethod.LvmSound"/> by default: softmax and sparsemax at
    /// t ∈ {0.5, 1, 2, 5, 10, 20} (12 maps; with the vote candidate, M = 13).
    /// </summary>
    public static IReadOnlyList<SimplexMap> SoundDefault { get; } =
        [.. new[] { 0.5, 1, 2, 5, 10, 20 }.SelectMany(t => new[] { new SimplexMap(SimplexMapKind.Softmax, t), new SimplexMap(SimplexMapKind.Sparsemax, t) })];

    /// <summary>Applies the map to <paramref name="logits"/>, writing the probabilities to <paramref name="output"/>.</summary>
    /// <param name="logits">The K logits.</param>
    /// <param name="output">K probabilities (may not alias <paramref name="logits"/>).</param>
    public void Apply(ReadOnlySpan<double> logits, Span<double> output)
    {
        if (Kind == SimplexMapKind.Softmax)
            SimplexMaps.Softmax(logits, T, output);
        else
            SimplexMaps.Sparsemax(logits, T, output);
    }

    private static SimplexMap[] BuildPublishedGrid()
    {
        var ts = new List<double> { 1.0 };
        for (int i = 0; i < 100; i++)
            ts.Add(0.1 + (50.0 - 0.1) * i / 99.0);
        ts.Add(1e7);
        return [.. new[] { SimplexMapKind.Sparsemax, SimplexMapKind.Softmax }.SelectMany(k => ts.Select(t => new SimplexMap(k, t)))];
    }
}

/// <summary>softmax and sparsemax of t·z.</summary>
internal static class SimplexMaps
{
    public static void Softmax(ReadOnlySpan<double> z, double t, Span<double> output)
    {
        double max = double.NegativeInfinity;
        foreach (double v in z)
            max = Math.Max(max, v);
        double sum = 0;
        for (int i = 0; i < z.Length; i++)
        {
            output[i] = Math.Exp(t * (z[i] - max));
            sum += output[i];
        }
        for (int i = 0; i < z.Length; i++)
            output[i] /= sum;
    }

    public static void Sparsemax(ReadOnlySpan<double> z, double t, Span<double> output)
    {
        Span<int> order = z.Length <= 256 ? stackalloc int[z.Length] : new int[z.Length];
        SortDescending(z, order);
        Sparsemax(z, t, order, output);
    }

    /// <summary>Indices of <paramref name="z"/> by decreasing value (lower index first on ties).</summary>
    public static void SortDescending(ReadOnlySpan<double> z, Span<int> order)
    {
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        // insertion sort: K is small, and the order is shared by every t
        for (int i = 1; i < order.Length; i++)
        {
            int cur = order[i];
            int j = i - 1;
            while (j >= 0 && z[order[j]] < z[cur])
            {
                order[j + 1] = order[j];
                j--;
            }
            order[j + 1] = cur;
        }
    }

    /// <summary>sparsemax(t·z) given the descending order of z (the same for every t &gt; 0).</summary>
    public static void Sparsemax(ReadOnlySpan<double> z, double t, ReadOnlySpan<int> order, Span<double> output)
    {
        // k* = max{k : 1 + k·u_(k) > Σ_{j≤k} u_(j)}, τ = (Σ_{j≤k*} u_(j) − 1)/k*, output max(u − τ, 0), u = t·z
        double cumulative = 0, tauSum = 0;
        int kStar = 1;
        for (int k = 1; k <= order.Length; k++)
        {
            double u = t * z[order[k - 1]];
            cumulative += u;
            if (1 + k * u > cumulative)
            {
                kStar = k;
                tauSum = cumulative;
            }
        }
        double tau = (tauSum - 1) / kStar;
        for (int i = 0; i < z.Length; i++)
            output[i] = Math.Max(t * z[i] - tau, 0.0);
    }
}
