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
/// With one thread a run is bit-reproducible; with more, only the races of Hogwild differ. <see cref="Update"/> selects
/// window-batched updates (default) or word2vec's per-pair updates.
/// </summary>
internal sealed unsafe class SkipGramEngine
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
                        : RunJobWindow(tokens, sentenceEnds, s0, s1, alias!.Entries, keep, window, negatives, lr, ref rng, buf, jobEnds, out trained);
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

    // SkipGramUpdate.Window. For the center word w with context rows c_1..c_C (the random effective window) and targets
    // t_0 = w, t_1..t_{T−1} (negatives drawn once for the window, w itself skipped as in word2vec):
    //   g_ij = (label_j − σ(syn0[c_i]·syn1[t_j]))·lr, every score from the rows as they were before the window;
    //   syn0[c_i] += Σ_j g_ij syn1[t_j],  syn1[t_j] += Σ_i g_ij syn0[c_i].
    // Each of the C + T rows is loaded once per window (into L1, where the C·T scores and updates then run) instead
    // of C·(T + 1) scattered row visits per window, and the window draws T − 1 negatives instead of C·(T − 1).
    // The job is subsampled first into one stream (sentence ends kept); each window is drawn Lookahead windows before
    // it is trained, and the rows it will touch are prefetched then, so the cache misses overlap earlier windows' work.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private long RunJobWindow(int[] tokens, int[] ends, int s0, int s1, ulong[] aliasEntries, uint[] keep, int window, int negatives,
        float lr, ref SplitMix64 rng, int[] buf, int[] sentenceEnds, out long trained)
    {
        const int Ring = 4, Lookahead = Ring - 1;
        int k = K;
        int maxC = 2 * window, stride = negatives + 1;
        float** inRows = stackalloc float*[maxC];
        float** outRows = stackalloc float*[stride];
        float* g = stackalloc float[maxC * stride];
        var nv = stackalloc Vector<float>[maxC];
        int* lo = stackalloc int[Ring];
        int* hi = stackalloc int[Ring];
        int* nt = stackalloc int[Ring];
        int* tg = stackalloc int[Ring * stride];
        long words = 0;
        int n = 0, ns = 0;
        fixed (float* syn0 = Syn0, syn1 = Syn1, exp = ExpTable)
        fixed (int* tok = tokens, stream = buf, sEnds = sentenceEnds)
        fixed (uint* kp = keep)
        fixed (ulong* alias = aliasEntries)
        {
            // 1. subsample the job into one stream
            for (int s = s0; s < s1; s++)
            {
                int start = s == 0 ? 0 : ends[s - 1];
                int end = ends[s];
                words += end - start;
                int n0 = n;
                for (int i = start; i < end; i++)
                {
                    int w = tok[i];
                    if (kp[w] == uint.MaxValue || (uint)rng.Next() < kp[w])
                        stream[n++] = w;
                }
                if (n > n0)
                    sEnds[ns++] = n;
            }
            trained = n;
            // 2. windows, drawn and prefetched Lookahead windows ahead of their training
            int aliasLength = aliasEntries.Length;
            int prepSentence = 0, prepStart = 0, prefetched = -1;
            for (int q = 0; q < n + Lookahead; q++)
            {
                if (q < n)
                {
                    while (q >= sEnds[prepSentence])
                        prepStart = sEnds[prepSentence++];
                    int slot = q & (Ring - 1);
                    int word = stream[q];
                    int b = (int)(((rng.Next() >> 32) * (ulong)window) >> 32);
                    int l = Math.Max(prepStart, q - window + b), h = Math.Min(sEnds[prepSentence] - 1, q + window - b);
                    lo[slot] = l;
                    hi[slot] = h;
                    int* t = tg + slot * stride;
                    int m = 0;
                    if (h > l)
                    {
                        t[m++] = word;
                        Prefetch(syn1 + (long)word * k, k);
                        for (int d = 1; d <= negatives; d++)
                        {
                            int target = AliasTable.Sample(alias, aliasLength, rng.Next());
                            if (target == word)
                                continue;
                            t[m++] = target;
                            Prefetch(syn1 + (long)target * k, k);
                        }
                        for (int c = Math.Max(l, prefetched + 1); c <= h; c++)
                            Prefetch(syn0 + (long)stream[c] * k, k);
                        prefetched = Math.Max(prefetched, h);
                    }
                    nt[slot] = m;
                }
                int pos = q - Lookahead;
                if (pos < 0)
                    continue;
                int ps = pos & (Ring - 1);
                int nts = nt[ps];
                if (nts == 0)
                    continue;
                int nc = 0;
                for (int c = lo[ps]; c <= hi[ps]; c++)
                {
                    if (c != pos)
                        inRows[nc++] = syn0 + (long)stream[c] * k;
                }
                int* ts = tg + ps * stride;
                for (int j = 0; j < nts; j++)
                    outRows[j] = syn1 + (long)ts[j] * k;
                WindowStep(inRows, nc, outRows, nts, k, lr, g, nv, exp);
            }
        }
        return words;
    }

    /// <summary>One window's update: scores, gradients (target 0 is the positive), both matrices' summed deltas.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WindowStep(float** inRows, int nc, float** outRows, int nt, int k, float lr, float* g, Vector<float>* nv, float* exp)
    {
        Scores(inRows, nc, outRows, nt, k, g);
        for (int i = 0; i < nc; i++)
        {
            float* gi = g + i * nt;
            gi[0] = Gradient(gi[0], 1f, lr, exp);
            for (int j = 1; j < nt; j++)
                gi[j] = Gradient(gi[j], 0f, lr, exp);
        }
        ApplyWindow(inRows, nc, outRows, nt, k, g, nv);
    }

    /// <summary>
    /// One window-batched update (<see cref="SkipGramUpdate.Window"/>) on given rows, for tests: <paramref name="contexts"/>
    /// index <see cref="Syn0"/>, <paramref name="targets"/> index <see cref="Syn1"/> (the first is the positive).
    /// </summary>
    internal void TrainWindow(int[] contexts, int[] targets, float lr)
    {
        int nc = contexts.Length, nt = targets.Length;
        float** inRows = stackalloc float*[nc];
        float** outRows = stackalloc float*[nt];
        var g = new float[nc * nt];
        var nv = new Vector<float>[nc];
        fixed (float* syn0 = Syn0, syn1 = Syn1, exp = ExpTable, gp = g)
        fixed (Vector<float>* nvp = nv)
        {
            for (int i = 0; i < nc; i++)
                inRows[i] = syn0 + (long)contexts[i] * K;
            for (int j = 0; j < nt; j++)
                outRows[j] = syn1 + (long)targets[j] * K;
            WindowStep(inRows, nc, outRows, nt, K, lr, gp, nvp, exp);
        }
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

    /// <summary>g[i·nt + j] = a_i·b_j, in 2×2 register blocks (an odd last row or column is computed twice).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scores(float** a, int na, float** b, int nb, int k, float* g)
    {
        int w = Vector<float>.Count;
        for (int i = 0; i < na; i += 2)
        {
            float* a0 = a[i], a1 = a[Math.Min(i + 1, na - 1)];
            for (int j = 0; j < nb; j += 2)
            {
                float* b0 = b[j], b1 = b[Math.Min(j + 1, nb - 1)];
                var s00 = Vector<float>.Zero;
                var s01 = Vector<float>.Zero;
                var s10 = Vector<float>.Zero;
                var s11 = Vector<float>.Zero;
                int c = 0;
                for (; c <= k - w; c += w)
                {
                    var x0 = Unsafe.ReadUnaligned<Vector<float>>(a0 + c);
                    var x1 = Unsafe.ReadUnaligned<Vector<float>>(a1 + c);
                    var y0 = Unsafe.ReadUnaligned<Vector<float>>(b0 + c);
                    var y1 = Unsafe.ReadUnaligned<Vector<float>>(b1 + c);
                    s00 = Vector.FusedMultiplyAdd(x0, y0, s00);
                    s01 = Vector.FusedMultiplyAdd(x0, y1, s01);
                    s10 = Vector.FusedMultiplyAdd(x1, y0, s10);
                    s11 = Vector.FusedMultiplyAdd(x1, y1, s11);
                }
                float f00 = Vector.Sum(s00), f01 = Vector.Sum(s01), f10 = Vector.Sum(s10), f11 = Vector.Sum(s11);
                if (w > 4 && c <= k - 4)
                {
                    // K = 100 with 8-float vectors leaves 4 columns: one 128-bit step instead of 4 scalar ones
                    var t00 = Vector128<float>.Zero;
                    var t01 = Vector128<float>.Zero;
                    var t10 = Vector128<float>.Zero;
                    var t11 = Vector128<float>.Zero;
                    for (; c <= k - 4; c += 4)
                    {
                        var x0 = Vector128.Load(a0 + c);
                        var x1 = Vector128.Load(a1 + c);
                        var y0 = Vector128.Load(b0 + c);
                        var y1 = Vector128.Load(b1 + c);
                        t00 = Vector128.FusedMultiplyAdd(x0, y0, t00);
                        t01 = Vector128.FusedMultiplyAdd(x0, y1, t01);
                        t10 = Vector128.FusedMultiplyAdd(x1, y0, t10);
                        t11 = Vector128.FusedMultiplyAdd(x1, y1, t11);
                    }
                    f00 += Vector128.Sum(t00);
                    f01 += Vector128.Sum(t01);
                    f10 += Vector128.Sum(t10);
                    f11 += Vector128.Sum(t11);
                }
                for (; c < k; c++)
                {
                    f00 += a0[c] * b0[c];
                    f01 += a0[c] * b1[c];
                    f10 += a1[c] * b0[c];
                    f11 += a1[c] * b1[c];
                }
                g[i * nb + j] = f00;
                if (j + 1 < nb)
                    g[i * nb + j + 1] = f01;
                if (i + 1 < na)
                {
                    g[(i + 1) * nb + j] = f10;
                    if (j + 1 < nb)
                        g[(i + 1) * nb + j + 1] = f11;
                }
            }
        }
    }

    /// <summary>
    /// in_i += Σ_j g_ij out_j and out_j += Σ_i g_ij in_i, both from the old rows: column block by column block, the
    /// input deltas are computed (into <paramref name="nv"/>) before the output rows change, and the output deltas
    /// before the input rows change. Repeated rows (a word twice in the window, a negative drawn twice) receive every
    /// delta, as in a minibatch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ApplyWindow(float** inRows, int nc, float** outRows, int nt, int k, float* g, Vector<float>* nv)
    {
        int w = Vector<float>.Count;
        int c = 0;
        for (; c <= k - w; c += w)
        {
            for (int i = 0; i < nc; i++)
            {
                float* gi = g + i * nt;
                var acc = Vector<float>.Zero;
                for (int j = 0; j < nt; j++)
                    acc = Vector.FusedMultiplyAdd(new Vector<float>(gi[j]), Unsafe.ReadUnaligned<Vector<float>>(outRows[j] + c), acc);
                nv[i] = acc;
            }
            for (int j = 0; j < nt; j++)
            {
                float* o = outRows[j] + c;
                var acc = Unsafe.ReadUnaligned<Vector<float>>(o);
                for (int i = 0; i < nc; i++)
                    acc = Vector.FusedMultiplyAdd(new Vector<float>(g[i * nt + j]), Unsafe.ReadUnaligned<Vector<float>>(inRows[i] + c), acc);
                Unsafe.WriteUnaligned(o, acc);
            }
            for (int i = 0; i < nc; i++)
                Unsafe.WriteUnaligned(inRows[i] + c, Unsafe.ReadUnaligned<Vector<float>>(inRows[i] + c) + nv[i]);
        }
        if (w > 4)
        {
            var nq = (Vector128<float>*)nv;
            for (; c <= k - 4; c += 4)
            {
                for (int i = 0; i < nc; i++)
                {
                    float* gi = g + i * nt;
                    var acc = Vector128<float>.Zero;
                    for (int j = 0; j < nt; j++)
                        acc = Vector128.FusedMultiplyAdd(Vector128.Create(gi[j]), Vector128.Load(outRows[j] + c), acc);
                    nq[i] = acc;
                }
                for (int j = 0; j < nt; j++)
                {
                    float* o = outRows[j] + c;
                    var acc = Vector128.Load(o);
                    for (int i = 0; i < nc; i++)
                        acc = Vector128.FusedMultiplyAdd(Vector128.Create(g[i * nt + j]), Vector128.Load(inRows[i] + c), acc);
                    acc.Store(o);
                }
                for (int i = 0; i < nc; i++)
                    (Vector128.Load(inRows[i] + c) + nq[i]).Store(inRows[i] + c);
            }
        }
        float* nf = (float*)nv;
        for (; c < k; c++)
        {
            for (int i = 0; i < nc; i++)
            {
                float* gi = g + i * nt;
                float acc = 0;
                for (int j = 0; j < nt; j++)
                    acc += gi[j] * outRows[j][c];
                nf[i] = acc;
            }
            for (int j = 0; j < nt; j++)
            {
                float acc = outRows[j][c];
                for (int i = 0; i < nc; i++)
                    acc += g[i * nt + j] * inRows[i][c];
                outRows[j][c] = acc;
            }
            for (int i = 0; i < nc; i++)
                inRows[i][c] += nf[i];
        }
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
