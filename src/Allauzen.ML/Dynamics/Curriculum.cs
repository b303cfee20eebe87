namespace Allauzen.ML.Dynamics;

/// <summary>
/// The curriculum of the EPJ E 2023 paper (Bucci et al.): the training rows are cut into consecutive segments, each
/// scored by its visitation entropy on a <see cref="StatePartition"/> of the training states, and a training set is
/// chosen (random, lowest entropy first, or maximal coverage of the partition).
/// </summary>
internal sealed class Curriculum
{
    private readonly int[][] _segments;

    private Curriculum(int[][] segments, double[] entropies, bool paced)
    {
        _segments = segments;
        Entropies = entropies;
        Paced = paced;
    }

    /// <summary>Entropy of each kept segment, in training order.</summary>
    public double[] Entropies { get; }

    /// <summary>True when segments enter progressively (low → high entropy).</summary>
    public bool Paced { get; }

    /// <summary>Rows kept for training.</summary>
    public int RowCount => _segments.Sum(s => s.Length);

    /// <summary>The rows of epoch <paramref name="epoch"/> (1-based) of <paramref name="epochs"/>: all kept rows, or with pacing the first segments, all of them from the middle epoch on.</summary>
    public int[] RowsForEpoch(int epoch, int epochs)
    {
        int k = _segments.Length;
        int active = Paced ? Math.Clamp((int)Math.Ceiling(k * Math.Min(1.0, 2.0 * epoch / epochs)), 1, k) : k;
        return _segments.Take(active).SelectMany(s => s).ToArray();
    }

    /// <summary>Chooses the segments of <paramref name="states"/> (rows × <paramref name="d"/> values) as <paramref name="o"/> says.</summary>
    public static Curriculum Build(float[] states, int d, NeuralOdeOptions o, int seed)
    {
        int rows = states.Length / d;
        int len = Math.Min(o.CurriculumSegmentLength, rows);
        var segments = new List<int[]>();
        for (int start = 0; start < rows; start += len)
            segments.Add(Enumerable.Range(start, Math.Min(len, rows - start)).ToArray());
        var partition = StatePartition.Fit(states, d, o.EntropyBins);
        var visits = segments.Select(s => partition.Visits(states.AsSpan(s[0] * d, s.Length * d))).ToArray();
        var entropy = segments.Select(s => partition.Entropy(states.AsSpan(s[0] * d, s.Length * d))).ToArray();
        int keep = Math.Clamp((int)Math.Ceiling(o.CurriculumFraction * segments.Count - 1e-9), 1, segments.Count);
        int[] order = o.CurriculumOrder switch
        {
            CurriculumOrder.LowToHighEntropy => Enumerable.Range(0, segments.Count).OrderBy(i => entropy[i]).ThenBy(i => i).Take(keep).ToArray(),
            CurriculumOrder.MaxCoverage => GreedyCoverage(visits, entropy, keep),
            _ => Shuffled(segments.Count, seed).Take(keep).OrderBy(i => i).ToArray(),
        };
        return new Curriculum(order.Select(i => segments[i]).ToArray(), order.Select(i => entropy[i]).ToArray(),
            o.CurriculumOrder == CurriculumOrder.LowToHighEntropy);
    }

    private static int[] GreedyCoverage(Dictionary<long, int>[] visits, double[] entropy, int keep)
    {
        var covered = new HashSet<long>();
        var chosen = new List<int>();
        var left = Enumerable.Range(0, visits.Length).ToList();
        while (chosen.Count < keep)
        {
            int best = left.OrderByDescending(i => visits[i].Keys.Count(c => !covered.Contains(c))).ThenByDescending(i => entropy[i]).ThenBy(i => i).First();
            chosen.Add(best);
            left.Remove(best);
            covered.UnionWith(visits[best].Keys);
        }
        return chosen.ToArray();
    }

    private static int[] Shuffled(int n, int seed)
    {
        var a = Enumerable.Range(0, n).ToArray();
        new Random(seed).Shuffle(a);
        return a;
    }
}
