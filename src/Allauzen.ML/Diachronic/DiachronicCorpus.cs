namespace Allauzen.ML.Diachronic;

/// <summary>
/// The vocabulary (union over slices, stable ids) and the per-slice token streams of a dated corpus.
/// Ids are assigned by the slice where a word first occurs, then by decreasing total count, so the words of
/// slices 0..t keep their ids when later slices add words (incremental vocabulary).
/// </summary>
internal sealed class DiachronicCorpus
{
    internal DiachronicCorpus(string[] words, long[][] sliceCounts, int[][] tokens, int[][] sentenceEnds, long origin, int width)
    {
        Words = words;
        SliceCounts = sliceCounts;
        Tokens = tokens;
        SentenceEnds = sentenceEnds;
        Origin = origin;
        Width = width;
        Ids = new Dictionary<string, int>(words.Length, StringComparer.Ordinal);
        for (int i = 0; i < words.Length; i++)
            Ids[words[i]] = i;
        TotalCounts = new long[words.Length];
        FirstSlice = Enumerable.Repeat(int.MaxValue, words.Length).ToArray();
        for (int t = sliceCounts.Length - 1; t >= 0; t--)
        {
            for (int w = 0; w < words.Length; w++)
            {
                TotalCounts[w] += sliceCounts[t][w];
                if (sliceCounts[t][w] > 0)
                    FirstSlice[w] = t;
            }
        }
    }

    public string[] Words { get; }

    public Dictionary<string, int> Ids { get; }

    /// <summary>[slice][word] occurrences (before subsampling).</summary>
    public long[][] SliceCounts { get; }

    public long[] TotalCounts { get; }

    public int[] FirstSlice { get; }

    /// <summary>[slice] token ids, OOV tokens removed, sentences concatenated.</summary>
    public int[][] Tokens { get; }

    /// <summary>[slice] exclusive end offsets of the sentences in <see cref="Tokens"/>.</summary>
    public int[][] SentenceEnds { get; }

    public long Origin { get; }

    public int Width { get; }

    public int SliceCount => Tokens.Length;

    public int VocabularySize => Words.Length;

    public long TokenCount => Tokens.Sum(t => (long)t.Length);

    /// <summary>
    /// Builds the corpus from (slice, tokens) sentences already read: counts words per slice, keeps those with
    /// total ≥ <paramref name="minCount"/> (at most <paramref name="maxVocabulary"/>), assigns stable ids, and encodes the streams.
    /// </summary>
    public static DiachronicCorpus Build(IReadOnlyList<(int Slice, string[] Tokens)> sentences, int sliceCount, long origin, int width,
        int minCount, int maxVocabulary)
    {
        var counts = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (slice, toks) in sentences)
        {
            foreach (var tok in toks)
            {
                if (!counts.TryGetValue(tok, out var c))
                    counts[tok] = c = new long[sliceCount];
                c[slice]++;
            }
        }
        return Build(counts, sentences, sliceCount, origin, width, minCount, maxVocabulary);
    }

    /// <summary>As <see cref="Build(IReadOnlyList{ValueTuple{int, string[]}}, int, long, int, int, int)"/> with counts already made (first pass).</summary>
    public static DiachronicCorpus Build(Dictionary<string, long[]> counts, IEnumerable<(int Slice, string[] Tokens)> sentences,
        int sliceCount, long origin, int width, int minCount, int maxVocabulary)
    {
        var kept = counts.Select(kv => (Word: kv.Key, Counts: kv.Value, Total: kv.Value.Sum()))
            .Where(x => x.Total >= minCount)
            .OrderByDescending(x => x.Total).ThenBy(x => x.Word, StringComparer.Ordinal)
            .ToList();
        if (maxVocabulary > 0 && kept.Count > maxVocabulary)
            kept = kept.Take(maxVocabulary).ToList();
        int First(long[] c)
        {
            for (int t = 0; t < c.Length; t++)
            {
                if (c[t] > 0)
                    return t;
            }
            return c.Length;
        }
        var ordered = kept.Select((x, rank) => (x.Word, x.Counts, First: First(x.Counts), Rank: rank))
            .OrderBy(x => x.First).ThenBy(x => x.Rank).ToArray();
        var words = ordered.Select(x => x.Word).ToArray();
        var ids = new Dictionary<string, int>(words.Length, StringComparer.Ordinal);
        for (int i = 0; i < words.Length; i++)
            ids[words[i]] = i;
        var sliceCounts = new long[sliceCount][];
        for (int t = 0; t < sliceCount; t++)
        {
            sliceCounts[t] = new long[words.Length];
            for (int w = 0; w < words.Length; w++)
                sliceCounts[t][w] = ordered[w].Counts[t];
        }
        var tok = new List<int>[sliceCount];
        var ends = new List<int>[sliceCount];
        for (int t = 0; t < sliceCount; t++)
        {
            tok[t] = [];
            ends[t] = [];
        }
        foreach (var (slice, toks) in sentences)
        {
            int before = tok[slice].Count;
            foreach (var s in toks)
            {
                if (ids.TryGetValue(s, out int id))
                    tok[slice].Add(id);
            }
            if (tok[slice].Count > before)
                ends[slice].Add(tok[slice].Count);
        }
        return new DiachronicCorpus(words, sliceCounts, tok.Select(l => l.ToArray()).ToArray(),
            ends.Select(l => l.ToArray()).ToArray(), origin, width);
    }

    /// <summary>All slices' streams concatenated (whole-corpus pre-training).</summary>
    public (int[] Tokens, int[] SentenceEnds) Whole()
    {
        var tokens = new int[TokenCount];
        var ends = new int[SentenceEnds.Sum(e => e.Length)];
        int p = 0, q = 0;
        for (int t = 0; t < SliceCount; t++)
        {
            Tokens[t].CopyTo(tokens, p);
            foreach (int e in SentenceEnds[t])
                ends[q++] = p + e;
            p += Tokens[t].Length;
        }
        return (tokens, ends);
    }
}
