using System.Diagnostics;
using System.Numerics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Allauzen.ML.Diachronic;

/// <summary>Statistics of one <see cref="SkipGramEngine.Train"/> call.</summary>
/// <param name="RawWords">Corpus tokens × epochs.</param>
/// <param name="EffectiveWords">Tokens kept after subsampling and trained on.</param>
/// <param name="Seconds">Wall time of the training loop.</param>
internal readonly record struct SkipGramStats(long RawWords, long EffectiveWords, double Seconds)
{
    public double RawWordsPerSecond => Seconds > 0 ? RawWords / Seconds : 0;

    public double EffectiveWordsPerSecond => Seconds > 0 ? EffectiveWords / Seconds : 0;

    public static SkipGramStats operator +(SkipGramStats a, SkipGramStats b) =>
        new(a.RawWords + b.RawWords, a.EffectiveWords + b.EffectiveWords, a.Seconds + b.Seconds);
}

/// <summary>How <see cref="SkipGramEngine"/> applies the gradient of a window.</summary>
internal enum SkipGramUpdate
{
    /// <summary>
    /// Window-batched (Ji, Satish, Li et al. 2016, pWord2Vec): the center word's context rows and one set of negatives
    /// shared by the whole window form two small matrices; all their scores are computed from the rows as they were
    /// before the window, then both matrices get their summed updates. Each row is read and written once per window.
    /// Negatives from an alias table.
    /// </summary>
    Window,

    /// <summary>word2vec.c's per-pair SGD: fresh negatives for each (context, center) pair from the unigram table,
    /// the output rows updated after each pair.</summary>
    PerPair,
}

/// <summary>
/// Skip-gram with negative sampling, word2vec.c style: preallocated input (<see cref="Syn0"/>) and output
/// (<see cref="Syn1"/>) matrices updated in place, one pair at a time, by Hogwild worker threads; SIMD dot
/// products and fused axpy updates over <see cref="Vector{T}"/>; a sigmoid table; a unigram^0.75 table for
/// negatives; word2vec's subsampling formula; a random effective window per position; linear learning-rate decay.
/// With one thread a run is bit-reproducible; with more, only the races of Hogwild differ (and the window rule then trains
/// on cache-line-aligned copies of the rows, see <see cref="PadRows"/>). <see cref="Update"/> selects window-batched
/// updates (default) or word2vec's per-pair updates.
/// </summary>
internal sealed unsafe partial class SkipGramEngine
{
    private const int ExpTableSize = 1000;
    private const float MaxExp = 6f;
    private const int JobWords = 10_000;
    private static readonly float[] ExpTable = BuildExpTable();

    public SkipGramEngine(int vocabularySize, int dimensions)
    {
        V = vocabularySize;
        K = dimensions;
        Syn0 = new float[(long)V * K];
        Syn1 = new float[(long)V * K];
    }

    public int V { get; }

    /// <summary>The update rule (default <see cref="SkipGramUpdate.Window"/>).</summary>
    public SkipGramUpdate Update { get; set; } = SkipGramUpdate.Window;

    public int K { get; }

    /// <summary>Input ("word") vectors, row-major V×K.</summary>
    public float[] Syn0 { get; }

    /// <summary>Output ("context") vectors, row-major V×K.</summary>
    public float[] Syn1 { get; }

    /// <summary>Random input vectors (uniform ±0.5/K, seeded per word id) and zero output vectors for words [from, to).</summary>
    public void InitRows(int from, int to, ulong seed)
    {
        for (int w = from; w < to; w++)
        {
            var rng = new SplitMix64(Hash(seed, (ulong)w, 0x5157));
            var row = Syn0.AsSpan(w * K, K);
            for (int i = 0; i < K; i++)
                row[i] = (float)((rng.NextDouble() - 0.5) / K);
            Syn1.AsSpan(w * K, K).Clear();
        }
    }

    /// <summary>Copies both matrices from another engine of the same shape.</summary>
    public void CopyFrom(SkipGramEngine other)
    {
        other.Syn0.CopyTo(Syn0, 0);
        other.Syn1.CopyTo(Syn1, 0);
    }

    /// <summary>Trains on one token stream.</summary>
    /// <param name="tokens">Word ids.</param>
    /// <param name="sentenceEnds">Exclusive end offsets of the sentences (windows do not cross them).</param>
    /// <param name="counts">Counts of the words in this data (subsampling and the negatives' distribution).</param>
    /// <param name="epochs">Passes.</param>
    /// <param name="lr0">Starting learning rate.</param>
    /// <param name="lrMin">Final learning rate.</param>
    /// <param name="window">Maximal window.</param>
    /// <param name="negatives">Negatives per pair (<see cref="SkipGramUpdate.PerPair"/>) or per window (<see cref="SkipGramUpdate.Window"/>).</param>
    /// <param name="sample">Subsampling threshold (0 = none).</param>
    /// <param name="threads">Worker threads.</param>
    /// <param name="seed">Seed of the job random streams.</param>
    /// <param name="progress">Called after each job with the fraction done and raw words/s so far.</param>
    /// <param name="cancel">Checked between jobs.</param>
    public SkipGramStats Train(int[] tokens, int[] sentenceEnds, long[] counts, int epochs, double lr0, double lrMin,
        int window, int negatives, double sample, int threads, ulong seed, Action<double, double>? progress = null,
        CancellationToken cancel = default)
    {
        if (tokens.Length == 0 || epochs == 0)
            return default;
        bool perPair = Update == SkipGramUpdate.PerPair;
        var table = perPair ? BuildNegativeTable(counts) : [];
        var alias = perPair ? null : AliasTable.Build(counts);
        var keep = BuildKeepThresholds(counts, sample);
        var jobs = MakeJobs(sentenceEnds);
        int maxJob = jobs.Select(j => sentenceEnds[j.S1 - 1] - j.W0).DefaultIfEmpty(0).Max() + 1;
        int totalJobs = jobs.Length * epochs;
        long totalWords = (long)tokens.Length * epochs;
        long effective = 0;
        long done = 0;
        int next = -1;
        var (rows0, offset0, rows1, offset1) = threads > 1 && !perPair && PadRows ? PaddedCopies() : (Syn0, 0, Syn1, 0);
        int stride = ReferenceEquals(rows0, Syn0) ? K : PaddedStride;
        PrepareOnce();
        var sw = Stopwatch.StartNew();
        Exception? failure = null;
        void Worker()
        {
            try
            {
                var neu = new float[K];
                var buf = new int[perPair ? MaxSentence(sentenceEnds) : maxJob];
                var jobEnds = perPair ? [] : new int[maxJob];
                long myEffective = 0;
                while (!cancel.IsCancellationRequested)
                {
                    int j = Interlocked.Increment(ref next);
                    if (j >= totalJobs || Volatile.Read(ref failure) is not null)
                        break;
                    int epoch = j / jobs.Length;
                    var (s0, s1, w0) = jobs[j % jobs.Length];
                    double progressAtStart = ((double)epoch * tokens.Length + w0) / totalWords;
                    float lr = (float)Math.Max(lrMin, lr0 - (lr0 - lrMin) * progressAtStart);
                    var rng = new SplitMix64(Hash(seed, (ulong)epoch, (ulong)(j % jobs.Length)));
                    long words = perPair
                        ? RunJob(tokens, sentenceEnds, s0, s1, table, keep, window, negatives, lr, ref rng, neu, buf, out long trained)
                        : RunJobWindow(tokens, sentenceEnds, s0, s1, alias!.Entries, keep, window, negatives, lr, ref rng, buf, jobEnds,
                            rows0, offset0, rows1, offset1, stride, out trained);
                    myEffective += trained;
                    long d = Interlocked.Add(ref done, words);
                    progress?.Invoke((double)d / totalWords, d / Math.Max(1e-9, sw.Elapsed.TotalSeconds));
                }
                Interlocked.Add(ref effective, myEffective);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
            }
        }
        if (threads <= 1)
        {
            Worker();
        }
        else
        {
            var ts = new Thread[threads];
            for (int i = 0; i < threads; i++)
            {
                ts[i] = new Thread(Worker) { IsBackground = true, Name = $"sgns-{i}" };
                ts[i].Start();
            }
            foreach (var t in ts)
                t.Join();
        }
        sw.Stop();
        if (!ReferenceEquals(rows0, Syn0))
            CopyBack(rows0, offset0, rows1, offset1);
        if (failure is not null)
            throw new InvalidOperationException("Skip-gram training failed: " + failure.Message, failure);
        cancel.ThrowIfCancellationRequested();
        return new SkipGramStats(totalWords, effective, sw.Elapsed.TotalSeconds);
    }

    private static int _prepared;

    // Compiles the training loops before the clock starts (they are AggressiveOptimization, so this is their final code):
    // the words/s of a short first training in a process then measure the training, not the JIT.
    private static void PrepareOnce()
    {
        if (Interlocked.Exchange(ref _prepared, 1) != 0)
            return;
        foreach (var method in typeof(SkipGramEngine).GetTypeInfo().DeclaredMethods)
        {
            if (method.Name is nameof(RunJob) or nameof(RunJobWindow))
                RuntimeHelpers.PrepareMethod(method.MethodHandle);
        }
    }

    // Fully optimised from the first call: a job is one call, so tiered compilation would run the first tens of jobs in
    // unoptimised or instrumented code, switching at a time that depends on the machine's load.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private long RunJob(int[] tokens, int[] ends, int s0, int s1, int[] table, uint[] keep, int window, int negatives, float lr,
        ref SplitMix64 rng, float[] neuArr, int[] buf, out long trained)
    {
        long words = 0;
        trained = 0;
        int k = K;
        int* targets = stackalloc int[negatives + 1];
        fixed (float* syn0 = Syn0, syn1 = Syn1, neu = neuArr, exp = ExpTable)
        fixed (int* tab = table, tok = tokens)
        fixed (uint* kp = keep)
        {
            int tableLen = table.Length;
            for (int s = s0; s < s1; s++)
            {
                int start = s == 0 ? 0 : ends[s - 1];
                int end = ends[s];
                words += end - start;
                int n = 0;
                for (int i = start; i < end; i++)
                {
                    int w = tok[i];
                    if (kp[w] == uint.MaxValue || (uint)rng.Next() < kp[w])
                        buf[n++] = w;
                }
                trained += n;
                for (int pos = 0; pos < n; pos++)
                {
                    int word = buf[pos];
                    int b = (int)(((rng.Next() >> 32) * (ulong)window) >> 32);
                    int lo = Math.Max(0, pos - window + b), hi = Math.Min(n - 1, pos + window - b);
                    for (int c = lo; c <= hi; c++)
                    {
                        if (c == pos)
                            continue;
                        float* l1 = syn0 + (long)buf[c] * k;
                        if (c < hi)
                            Prefetch(syn0 + (long)buf[c + 1] * k, k);
                        new Span<float>(neu, k).Clear();
                        // Draw the pair's targets first (the same draws in the same order as drawing them one by
                        // one) and prefetch their output rows: the rows are scattered over V·K floats, so each is a
                        // cache miss, and the misses now overlap instead of following each other.
                        int drawn = 0;
                        targets[drawn++] = word;
                        Prefetch(syn1 + (long)word * k, k);
                        for (int d = 1; d <= negatives; d++)
                        {
                            int target = tab[(int)(((rng.Next() >> 32) * (ulong)tableLen) >> 32)];
                            if (target == word)
                                continue;
                            targets[drawn++] = target;
                            Prefetch(syn1 + (long)target * k, k);
                        }
                        for (int d = 0; d < drawn; d++)
                        {
                            float* l2 = syn1 + (long)targets[d] * k;
                            Fused(l1, l2, neu, Gradient(Dot(l1, l2, k), d == 0 ? 1f : 0f, lr, exp), k);
                        }
                        Axpy(neu, l1, k);
                    }
                }
            }
        }
        return words;
    }

    /// <summary>word2vec's gradient (label − σ(f))·lr, σ from the table, clipped at |f| &gt; 6.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Gradient(float f, float label, float lr, float* exp) =>
        f > MaxExp ? (label - 1f) * lr
        : f < -MaxExp ? label * lr
        : (label - exp[(int)((f + MaxExp) * (ExpTableSize / MaxExp / 2))]) * lr;

    /// <summary><see cref="Gradient(float, float, float, float*)"/> for tests.</summary>
    internal static float Gradient(float f, bool positive, float lr)
    {
        fixed (float* exp = ExpTable)
            return Gradient(f, positive ? 1f : 0f, lr, exp);
    }

    /// <summary>Prefetches the cache lines of a row of <paramref name="k"/> floats (no-op without SSE).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(float* row, int k)
    {
        if (!Sse.IsSupported)
            return;
        for (int i = 0; i < k; i += 16)
            Sse.Prefetch0(row + i);
        Sse.Prefetch0(row + k - 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* a, float* b, int k)
    {
        int i = 0;
        int w = Vector<float>.Count;
        var acc = Vector<float>.Zero;
        for (; i <= k - w; i += w)
            acc = Vector.FusedMultiplyAdd(Unsafe.ReadUnaligned<Vector<float>>(a + i), Unsafe.ReadUnaligned<Vector<float>>(b + i), acc);
        float s = Vector.Sum(acc);
        for (; i < k; i++)
            s += a[i] * b[i];
        return s;
    }

    /// <summary>neu += g·l2; l2 += g·l1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fused(float* l1, float* l2, float* neu, float g, int k)
    {
        int i = 0;
        int w = Vector<float>.Count;
        var gv = new Vector<float>(g);
        for (; i <= k - w; i += w)
        {
            var s1 = Unsafe.ReadUnaligned<Vector<float>>(l2 + i);
            Unsafe.WriteUnaligned(neu + i, Vector.FusedMultiplyAdd(gv, s1, Unsafe.ReadUnaligned<Vector<float>>(neu + i)));
            Unsafe.WriteUnaligned(l2 + i, Vector.FusedMultiplyAdd(gv, Unsafe.ReadUnaligned<Vector<float>>(l1 + i), s1));
        }
        for (; i < k; i++)
        {
            float s1 = l2[i];
            neu[i] += g * s1;
            l2[i] = s1 + g * l1[i];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy(float* x, float* y, int k)
    {
        int i = 0;
        int w = Vector<float>.Count;
        for (; i <= k - w; i += w)
            Unsafe.WriteUnaligned(y + i, Unsafe.ReadUnaligned<Vector<float>>(y + i) + Unsafe.ReadUnaligned<Vector<float>>(x + i));
        for (; i < k; i++)
            y[i] += x[i];
    }

    private static float[] BuildExpTable()
    {
        var t = new float[ExpTableSize + 1];
        for (int i = 0; i <= ExpTableSize; i++)
        {
            double e = Math.Exp((i / (double)ExpTableSize * 2 - 1) * MaxExp);
            t[i] = (float)(e / (e + 1));
        }
        return t;
    }

    /// <summary>word2vec's unigram^0.75 table (only words with a positive count appear).</summary>
    internal static int[] BuildNegativeTable(long[] counts)
    {
        int v = counts.Length;
        double total = 0;
        for (int w = 0; w < v; w++)
            total += Math.Pow(counts[w], 0.75);
        int size = (int)Math.Clamp(v * 100L, 1 << 16, 1 << 25);
        var table = new int[size];
        if (total <= 0)
            return table;
        int word = 0;
        while (word < v - 1 && counts[word] == 0)
            word++;
        double cum = Math.Pow(counts[word], 0.75) / total;
        for (int a = 0; a < size; a++)
        {
            table[a] = word;
            if (a / (double)size > cum && word < v - 1)
            {
                do
                    word++;
                while (word < v - 1 && counts[word] == 0);
                cum += Math.Pow(counts[word], 0.75) / total;
            }
        }
        return table;
    }

    /// <summary>gensim/word2vec keep probability (√(f/(s·N)) + 1)·(s·N)/f as a 32-bit threshold (MaxValue = always keep).</summary>
    internal static uint[] BuildKeepThresholds(long[] counts, double sample)
    {
        var keep = new uint[counts.Length];
        double total = counts.Sum();
        double threshold = sample * total;
        for (int w = 0; w < counts.Length; w++)
        {
            double p = sample <= 0 || counts[w] == 0 ? 1 : (Math.Sqrt(counts[w] / threshold) + 1) * threshold / counts[w];
            keep[w] = p >= 1 ? uint.MaxValue : (uint)(p * uint.MaxValue);
        }
        return keep;
    }

    private static (int S0, int S1, int W0)[] MakeJobs(int[] ends)
    {
        var jobs = new List<(int, int, int)>();
        int s0 = 0, w0 = 0;
        for (int s = 0; s < ends.Length; s++)
        {
            if (ends[s] - w0 >= JobWords || s == ends.Length - 1)
            {
                jobs.Add((s0, s + 1, w0));
                s0 = s + 1;
                w0 = ends[s];
            }
        }
        return jobs.ToArray();
    }

    private static int MaxSentence(int[] ends)
    {
        int m = 0, prev = 0;
        foreach (int e in ends)
        {
            m = Math.Max(m, e - prev);
            prev = e;
        }
        return Math.Max(1, m);
    }

    internal static ulong Hash(ulong a, ulong b, ulong c)
    {
        var r = new SplitMix64(a * 0x9E3779B97F4A7C15UL ^ (b + 0x632BE59BD9B4E019UL) * 0xBF58476D1CE4E5B9UL ^ c);
        r.Next();
        return r.Next();
    }
}
