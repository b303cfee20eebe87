namespace Allauzen.ML.Diachronic;

/// <summary>A sentence of a sliced corpus.</summary>
/// <param name="Slice">Slice index 0..T−1.</param>
/// <param name="Tokens">Tokens.</param>
public sealed record SlicedSentence(int Slice, string[] Tokens);

/// <summary>The output of <see cref="DriftInjection.Inject"/>.</summary>
/// <param name="Sentences">The corpus after the (optional) label shuffle and the swaps.</param>
/// <param name="Pairs">The swapped pairs (A, B); the 2K words are the gold drifting set.</param>
/// <param name="Eligible">The eligible words (≥ minCount in every slice, longer than 2 characters), most frequent first.</param>
public sealed record InjectionResult(IReadOnlyList<SlicedSentence> Sentences, IReadOnlyList<(string A, string B)> Pairs, IReadOnlyList<string> Eligible)
{
    /// <summary>The 2K words of the pairs.</summary>
    public IReadOnlySet<string> Gold => Pairs.SelectMany(p => new[] { p.A, p.B }).ToHashSet(StringComparer.Ordinal);
}

/// <summary>
/// The label-free drift-injection benchmark ("pair swap with ramp"; a C# port of the procedure of the notes' inject.py,
/// with its own random stream, so corpora are statistically equivalent, not identical): pick K disjoint pairs of
/// frequency-matched eligible words, then from slice t0 on swap every occurrence of A with B and of B with A with
/// probability p(s) = clip((s − t0 + 1)/(t1 − t0 + 1), 0, 1). Detectors rank the eligible words by drift; P@2K and AP
/// measure how many of the 2K swapped words come first.
/// </summary>
public static class DriftInjection
{
    /// <summary>Injects drift into <paramref name="sentences"/>.</summary>
    /// <param name="sentences">The corpus (slice, tokens).</param>
    /// <param name="sliceCount">T.</param>
    /// <param name="pairs">K (default 10).</param>
    /// <param name="t0">First slice with swaps (default 3).</param>
    /// <param name="t1">First fully swapped slice (default 4).</param>
    /// <param name="minCount">Eligibility: occurrences in every slice (default 30).</param>
    /// <param name="shuffle">Permute the slice labels across sentences first (slice sizes kept): the only diachronic signal left is the injected one.</param>
    /// <param name="none">No swaps (control run); the pairs are still chosen, so the control can be scored against them.</param>
    /// <param name="seed">Seed of the one random stream (shuffle, band shuffle, swap draws).</param>
    /// <param name="skipTop">Most frequent eligible words excluded from the pairs (default 100).</param>
    /// <param name="bandSize">Size of the candidate band after them (default 2900).</param>
    /// <param name="logTolerance">Frequency matching |log f_A − log f_B| &lt; tolerance (default 0.15).</param>
    /// <param name="fixedPairs">Swap these pairs instead of choosing them (e.g. the published pair lists of the notes'
    /// fixtures); the band shuffle is then skipped, the eligible list is still computed.</param>
    public static InjectionResult Inject(IReadOnlyList<SlicedSentence> sentences, int sliceCount, int pairs = 10, int t0 = 3, int t1 = 4,
        int minCount = 30, bool shuffle = false, bool none = false, int seed = 0, int skipTop = 100, int bandSize = 2900, double logTolerance = 0.15,
        IReadOnlyList<(string A, string B)>? fixedPairs = null)
    {
        ArgumentNullException.ThrowIfNull(sentences);
        ArgumentOutOfRangeException.ThrowIfLessThan(sliceCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(t1, t0);
        var rng = new Random(seed);
        var data = sentences.Select(s => new SlicedSentence(s.Slice, s.Tokens)).ToList();
        if (shuffle)
        {
            var labels = data.Select(d => d.Slice).ToArray();
            rng.Shuffle(labels);
            for (int i = 0; i < data.Count; i++)
                data[i] = data[i] with { Slice = labels[i] };
        }
        var counts = new Dictionary<string, long[]>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var s in data)
        {
            foreach (var tok in s.Tokens)
            {
                if (!counts.TryGetValue(tok, out var c))
                {
                    counts[tok] = c = new long[sliceCount];
                    order.Add(tok);
                }
                c[s.Slice]++;
            }
        }
        var firstSeen = order.Select((w, i) => (w, i)).ToDictionary(x => x.w, x => x.i, StringComparer.Ordinal);
        var eligible = order.Where(w => w.Length > 2 && counts[w].All(c => c >= minCount))
            .OrderByDescending(w => counts[w].Sum()).ThenBy(w => firstSeen[w]).ToList();
        var band = fixedPairs is null ? eligible.Skip(skipTop).Take(bandSize).ToArray() : [];
        rng.Shuffle(band);
        var used = new HashSet<string>(StringComparer.Ordinal);
        var chosen = fixedPairs is null ? new List<(string, string)>() : fixedPairs.ToList();
        foreach (var w in band)
        {
            if (chosen.Count >= pairs)
                break;
            if (used.Contains(w))
                continue;
            double lw = Math.Log(counts[w].Sum());
            foreach (var u in band)
            {
                if (u != w && !used.Contains(u) && Math.Abs(lw - Math.Log(counts[u].Sum())) < logTolerance)
                {
                    chosen.Add((w, u));
                    used.Add(w);
                    used.Add(u);
                    break;
                }
            }
        }
        if (!none)
        {
            var swap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (a, b) in chosen)
            {
                swap[a] = b;
                swap[b] = a;
            }
            for (int i = 0; i < data.Count; i++)
            {
                double p = Math.Clamp((data[i].Slice - t0 + 1) / (double)(t1 - t0 + 1), 0, 1);
                if (p <= 0)
                    continue;
                string[]? copy = null;
                var toks = data[i].Tokens;
                for (int j = 0; j < toks.Length; j++)
                {
                    if (swap.TryGetValue(toks[j], out var other) && rng.NextDouble() < p)
                    {
                        copy ??= (string[])toks.Clone();
                        copy[j] = other;
                    }
                }
                if (copy is not null)
                    data[i] = data[i] with { Tokens = copy };
            }
        }
        return new InjectionResult(data, chosen, eligible);
    }

    /// <summary>Fraction of the first <paramref name="k"/> ranked words that are gold (k = 2K gives R-precision).</summary>
    public static double PrecisionAtK(IEnumerable<string> ranking, IReadOnlySet<string> gold, int k)
    {
        ArgumentNullException.ThrowIfNull(ranking);
        ArgumentNullException.ThrowIfNull(gold);
        if (k <= 0)
            return 0;
        return ranking.Take(k).Count(gold.Contains) / (double)k;
    }

    /// <summary>Mean over gold words of (gold words up to its rank) / (its rank); a gold word missing from the ranking counts 0.</summary>
    public static double AveragePrecision(IEnumerable<string> ranking, IReadOnlySet<string> gold)
    {
        ArgumentNullException.ThrowIfNull(ranking);
        ArgumentNullException.ThrowIfNull(gold);
        if (gold.Count == 0)
            return 0;
        double sum = 0;
        int hits = 0, rank = 0;
        foreach (var w in ranking)
        {
            rank++;
            if (gold.Contains(w))
            {
                hits++;
                sum += hits / (double)rank;
            }
        }
        return sum / gold.Count;
    }
}
