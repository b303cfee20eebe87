using System.Runtime.CompilerServices;

namespace Allauzen.ML.Diachronic;

/// <summary>
/// Walker's alias method (Vose's construction) for the negative-sampling distribution P(w) ∝ count(w)^0.75: one
/// 8-byte entry per word (79 KB at V = 9,831, so it stays in L2, where word2vec's 100·V-entry unigram table does not),
/// exact probabilities up to the 2⁻³² resolution of the threshold instead of the table's 1/(100·V) quantisation, and one
/// 64-bit random number per draw (high half: the column; low half: the coin).
/// </summary>
internal sealed class AliasTable
{
    // entry i: low 32 bits the threshold of column i (keep i when the coin's 32 bits are below it), high 32 bits the alias
    private readonly ulong[] _entries;

    private AliasTable(ulong[] entries) => _entries = entries;

    /// <summary>Number of columns (the vocabulary size).</summary>
    public int Count => _entries.Length;

    /// <summary>The packed entries, for the training loop's pointer access: see <see cref="Sample(ulong*, int, ulong)"/>.</summary>
    internal ulong[] Entries => _entries;

    /// <summary>Builds the table of P(w) ∝ count(w)^<paramref name="power"/>; words of zero count are never drawn.</summary>
    public static AliasTable Build(long[] counts, double power = 0.75)
    {
        int n = Math.Max(1, counts.Length);
        var entries = new ulong[n];
        var p = new double[n];
        double total = 0;
        for (int w = 0; w < counts.Length; w++)
            total += p[w] = counts[w] > 0 ? Math.Pow(counts[w], power) : 0;
        if (total <= 0)
            return new AliasTable(entries); // nothing to draw from: every draw gives word 0, like the empty unigram table
        var small = new Stack<int>();
        var large = new Stack<int>();
        for (int w = 0; w < n; w++)
        {
            p[w] = p[w] / total * n;
            (p[w] < 1 ? small : large).Push(w);
        }
        while (small.Count > 0 && large.Count > 0)
        {
            int s = small.Pop(), l = large.Pop();
            entries[s] = Pack((uint)(p[s] * 4294967296.0), l);
            p[l] = p[l] + p[s] - 1;
            (p[l] < 1 ? small : large).Push(l);
        }
        // what is left has probability 1 up to rounding: the column keeps its own word whatever the coin
        foreach (int w in large.Concat(small))
            entries[w] = Pack(uint.MaxValue, w);
        return new AliasTable(entries);
    }

    private static ulong Pack(uint threshold, int alias) => threshold | (ulong)(uint)alias << 32;

    /// <summary>Draws a word from one 64-bit uniform random number.</summary>
    public unsafe int Sample(ulong r)
    {
        fixed (ulong* e = _entries)
            return Sample(e, _entries.Length, r);
    }

    /// <summary>Draws a word from one 64-bit uniform random number (high half: the column; low half: the coin).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe int Sample(ulong* entries, int n, ulong r)
    {
        int i = (int)(((r >> 32) * (ulong)n) >> 32);
        ulong e = entries[i];
        return (uint)r < (uint)e ? i : (int)(e >> 32);
    }

    /// <summary>The exact probability of each word under the table (for tests).</summary>
    internal double[] Probabilities()
    {
        int n = _entries.Length;
        var q = new double[n];
        for (int i = 0; i < n; i++)
        {
            double keep = (uint)_entries[i] / 4294967296.0;
            q[i] += keep / n;
            q[(int)(_entries[i] >> 32)] += (1 - keep) / n;
        }
        return q;
    }
}
