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
        (Words, SliceCounts, Tokens, SentenceEnds) = (words, sliceCounts, tokens, sentenceEnds);
        (Origin, Width) = (origin, width);
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
    /// Builds the corpus from (slice, tokens) sentences already read, in any order: counts words per slice, keeps those with
    /// total ≥ <paramref name="minCount"/> (at most <paramref name="maxVocabulary"/>), assigns stable ids, and encodes the
    /// streams in the canonical sentence order of <see cref="DiachronicCorpusBuilder"/> (the slice is the time value).
    /// </summary>
    public static DiachronicCorpus Build(IEnumerable<(int Slice, string[] Tokens)> sentences, int sliceCount, long origin, int width,
        int minCount, int maxVocabulary, int seed = 1)
    {
        using var builder = new DiachronicCorpusBuilder(sliceCount, seed, long.MaxValue);
        foreach (var (slice, toks) in sentences)
            builder.Add(slice, slice, 0, toks);
        return builder.Build(origin, width, minCount, maxVocabulary);
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
