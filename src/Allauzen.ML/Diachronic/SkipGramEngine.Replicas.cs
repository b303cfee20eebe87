using System.Numerics;
using System.Runtime.CompilerServices;

namespace Allauzen.ML.Diachronic;

// Per-thread replicas of the most frequent words' rows (window rule, Threads > 1). With Hogwild sharing, the rows of the
// few words that are in almost every window (the negatives' distribution count^0.75 and the context stream favour them)
// are written by both cores all the time, and each write moves their cache lines from one core to the other. Each worker
// instead trains on private copies of those rows (in its own L2) and, after each job, adds what it changed to the shared
// rows under a lock and takes a fresh copy: the other threads' updates of a hot row reach a thread one job late
// (≤ JobWords tokens), the rest of the vocabulary stays Hogwild. One thread never uses replicas (same bits as before).
// Off by default: on the shared 2-core host (the two threads mostly time-sliced on one core) they cost ~8 % per CPU-s
// and no gain could be measured (docs/results/skipgram-speed.md, session 8); the probe's `alternate` mode compares both.
internal sealed unsafe partial class SkipGramEngine
{
    /// <summary>Bytes of replicated rows per worker thread in automatic mode (copies and their bases, both matrices).</summary>
    internal const int ReplicaBudgetBytes = 512 * 1024;

    /// <summary>
    /// Most frequent words whose input and output rows each worker thread replicates when <c>threads</c> &gt; 1 under the
    /// window rule: 0 (default) none (plain Hogwild), −1 as many as fit <see cref="ReplicaBudgetBytes"/>.
    /// </summary>
    public int ReplicatedWords { get; set; }

    /// <summary>The ids of the <paramref name="n"/> words of largest count (ties: smaller id first), zero counts excluded.</summary>
    internal static int[] HotWords(long[] counts, int n)
    {
        if (n <= 0)
            return [];
        n = Math.Min(n, counts.Count(c => c > 0));
        var ids = Enumerable.Range(0, counts.Length).Where(w => counts[w] > 0).ToArray();
        Array.Sort(ids, (a, b) => counts[b] != counts[a] ? counts[b].CompareTo(counts[a]) : a.CompareTo(b));
        return ids[..n];
    }

    private int ReplicaCount(int threads, int vocabulary) =>
        threads <= 1 || Update != SkipGramUpdate.Window ? 0
        : ReplicatedWords >= 0 ? Math.Min(ReplicatedWords, vocabulary)
        : Math.Min(vocabulary, ReplicaBudgetBytes / (4 * K * sizeof(float)));

    /// <summary>One worker's copies of the hot words' rows and the shared values they started from.</summary>
    internal sealed class RowReplicas
    {
        private readonly int[] _words;
        private readonly int _k;

        public RowReplicas(int[] words, int k)
        {
            _words = words;
            _k = k;
            long size = (long)words.Length * k;
            In = new float[size];
            Out = new float[size];
            InBase = new float[size];
            OutBase = new float[size];
        }

        /// <summary>Copies of the hot input rows (slot s is word <c>words[s]</c>), trained on instead of Syn0's.</summary>
        public float[] In { get; }

        /// <summary>Copies of the hot output rows, trained on instead of Syn1's.</summary>
        public float[] Out { get; }

        private float[] InBase { get; }

        private float[] OutBase { get; }

        /// <summary>shared += copy − base, then copy = base = shared; with <paramref name="add"/> false only the copy.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Sync(SkipGramEngine engine, bool add)
        {
            int k = _k;
            fixed (float* syn0 = engine.Syn0, syn1 = engine.Syn1, rin = In, rout = Out, bin = InBase, bout = OutBase)
            {
                for (int s = 0; s < _words.Length; s++)
                {
                    long shared = (long)_words[s] * k, own = (long)s * k;
                    SyncRow(syn0 + shared, rin + own, bin + own, k, add);
                    SyncRow(syn1 + shared, rout + own, bout + own, k, add);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void SyncRow(float* shared, float* copy, float* start, int k, bool add)
        {
            int i = 0;
            if (add)
            {
                for (; i <= k - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var v = Unsafe.ReadUnaligned<Vector<float>>(shared + i)
                        + (Unsafe.ReadUnaligned<Vector<float>>(copy + i) - Unsafe.ReadUnaligned<Vector<float>>(start + i));
                    Unsafe.WriteUnaligned(shared + i, v);
                    Unsafe.WriteUnaligned(copy + i, v);
                    Unsafe.WriteUnaligned(start + i, v);
                }
                for (; i < k; i++)
                    copy[i] = start[i] = shared[i] += copy[i] - start[i];
            }
            else
            {
                new ReadOnlySpan<float>(shared, k).CopyTo(new Span<float>(copy, k));
                new ReadOnlySpan<float>(shared, k).CopyTo(new Span<float>(start, k));
            }
        }
    }

    /// <summary>Where the window loop finds a word's row: a type argument, so each choice is its own compiled loop.</summary>
    internal interface IRowMap
    {
        /// <summary>The row of word <paramref name="w"/> in <paramref name="shared"/> or in the thread's replicas.</summary>
        static abstract float* Row(float* shared, float* replicas, int* slots, int w, int k);
    }

    /// <summary>Every row is the shared one (one thread, or no replicas): the loop of the plain engine.</summary>
    internal readonly struct SharedRows : IRowMap
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float* Row(float* shared, float* replicas, int* slots, int w, int k) => shared + (long)w * k;
    }

    /// <summary>A word with a replica slot uses the thread's copy, any other word the shared row.</summary>
    internal readonly struct ReplicatedRows : IRowMap
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float* Row(float* shared, float* replicas, int* slots, int w, int k)
        {
            int s = slots[w];
            return s >= 0 ? replicas + (long)s * k : shared + (long)w * k;
        }
    }
}
