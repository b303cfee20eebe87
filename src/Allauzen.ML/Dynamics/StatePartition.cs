namespace Allauzen.ML.Dynamics;

/// <summary>
/// A regular partition of the state space into Bins^d boxes over the bounding box of the training states, and the
/// visitation entropy of a trajectory window on it: H = −Σ_k p_k ln p_k, p_k = (points of the window in box k) / (points
/// of the window). States outside the bounding box count in the nearest edge box. H = 0 for a window that stays in one
/// box; H = ln m for a window spread evenly over m boxes.
/// </summary>
internal sealed record StatePartition(double[] Min, double[] Max, int Bins)
{
    public int Dimension => Min.Length;

    /// <summary>The partition over the bounding box of the states in <paramref name="flat"/> (rows of <paramref name="d"/> values).</summary>
    public static StatePartition Fit(ReadOnlySpan<float> flat, int d, int bins)
    {
        if (d < 1 || flat.Length < d || flat.Length % d != 0)
            throw new ArgumentException($"The states must be whole rows of {d} values (got {flat.Length} values).");
        if (d * Math.Log2(bins) > 62)
            throw new ArgumentOutOfRangeException(nameof(bins), bins, $"{bins}^{d} boxes is too many: lower the number of bins per coordinate.");
        var min = Enumerable.Repeat(double.PositiveInfinity, d).ToArray();
        var max = Enumerable.Repeat(double.NegativeInfinity, d).ToArray();
        for (int i = 0; i < flat.Length; i++)
        {
            int j = i % d;
            min[j] = Math.Min(min[j], flat[i]);
            max[j] = Math.Max(max[j], flat[i]);
        }
        return new StatePartition(min, max, bins);
    }

    /// <summary>Throws when the persisted fields are inconsistent (read from an untrusted file).</summary>
    public void Validate(string source)
    {
        if (Min is null || Max is null || Min.Length < 1 || Min.Length != Max.Length || Bins < 1 || Bins > 64
            || Min.Length * Math.Log2(Bins) > 62 || Min.Zip(Max).Any(p => !double.IsFinite(p.First) || !double.IsFinite(p.Second) || p.Second < p.First))
            throw new InvalidDataException($"{source}: the state partition is invalid.");
    }

    /// <summary>The box index of one state.</summary>
    public long Cell(ReadOnlySpan<float> x)
    {
        long cell = 0;
        for (int j = 0; j < Min.Length; j++)
        {
            double width = Max[j] - Min[j];
            int b = width > 0 ? (int)Math.Floor((x[j] - Min[j]) / width * Bins) : 0;
            cell = cell * Bins + Math.Clamp(b, 0, Bins - 1);
        }
        return cell;
    }

    /// <summary>The boxes visited by the states of <paramref name="window"/> (rows of <see cref="Dimension"/> values), with counts.</summary>
    public Dictionary<long, int> Visits(ReadOnlySpan<float> window)
    {
        int d = Min.Length;
        var counts = new Dictionary<long, int>();
        for (int i = 0; i + d <= window.Length; i += d)
        {
            long c = Cell(window.Slice(i, d));
            counts[c] = counts.GetValueOrDefault(c) + 1;
        }
        return counts;
    }

    /// <summary>The visitation entropy (natural log) of the states of <paramref name="window"/>.</summary>
    public double Entropy(ReadOnlySpan<float> window)
    {
        var counts = Visits(window);
        double n = counts.Values.Sum();
        double h = 0;
        foreach (int c in counts.Values)
        {
            double p = c / n;
            h -= p * Math.Log(p);
        }
        return h;
    }
}
