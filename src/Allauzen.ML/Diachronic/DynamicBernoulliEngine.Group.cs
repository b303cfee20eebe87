using System.Runtime.CompilerServices;

namespace Allauzen.ML.Diachronic;

/// <summary>Several dynamic-phase steps in one pass over the words.</summary>
internal sealed partial class DynamicBernoulliEngine
{
    // One likelihood term of a step in the dynamic phase: σ's row (numbered over the group's steps), the row it moves
    // within its block (slice · BlockWords + word mod BlockWords), and its signed scale: −s for the positive term log σ(η),
    // +s for a negative log σ(−η).
    private readonly record struct Term(int Sigma, int Row, float Scale);

    // A piece of one step's targets: their terms sorted by block (stable), and where each block's start.
    private sealed class TermShard
    {
        public int[] Start = [];
        public Term[] Terms = [];
    }

    private TermShard[][] _termShards = [];

    /// <summary>
    /// <paramref name="batches"/>.Count steps (no loss reported), with the bits of one <see cref="Step"/> after the other.
    /// In the dynamic phase (α frozen) a term of the likelihood reads one row of ρ and σ_i, which depends on α alone, and
    /// moves that row only; the prior couples only the T rows of one word. So a word's rows can run all the steps before
    /// the next word's start: σ of every step's targets is formed first, each step's terms are filed by block of
    /// <c>BlockWords</c> words (in the order of the minibatch), then, block after block (blocks handed to the threads one
    /// at a time), step after step: the η of the block's terms from its current rows, their gradient rows (the order of
    /// the likelihood, hence the same sums), the prior and Adam with that step's bias corrections. A block's rows, moments
    /// and gradients stay in the core's cache for all the steps: ρ and both moments cross the memory once per group instead
    /// of once per step. With α trained, another regulariser, or <see cref="FusedSteps"/> off, the steps run one by one.
    /// <paramref name="alongside"/> runs to completion during the steps (on one of their threads when there are several).
    /// </summary>
    public void Steps(IReadOnlyList<IReadOnlyList<DbeSliceBatch>> batches, double lr, Action? alongside = null)
    {
        int steps = batches.Count;
        if (steps == 1 || TrainAlpha || !FusedSteps || _o.DriftRegularizer is not (DriftRegularizer.RandomWalk or DriftRegularizer.HardShrink))
        {
            OneByOne();
            return;
        }
        var live = batches.Select(b => b.Where(x => x.Targets.Length > 0).ToArray()).ToArray();
        var starts = new int[steps][];
        var sigmaBase = new int[steps + 1];
        int ns = -1, cs = -1;
        for (int u = 0; u < steps; u++)
        {
            starts[u] = new int[live[u].Length + 1];
            for (int j = 0; j < live[u].Length; j++)
            {
                var b = live[u][j];
                int n = b.Targets.Length;
                if (ns < 0)
                    (ns, cs) = (b.Negatives.Length / n, b.Contexts.Length / n);
                if (b.Negatives.Length != n * ns || b.Contexts.Length != n * cs)
                    throw new InvalidOperationException("Every slice of a minibatch must have the same context and negative counts.");
                starts[u][j + 1] = starts[u][j] + n;
            }
            sigmaBase[u + 1] = sigmaBase[u] + starts[u][^1];
        }
        if ((long)sigmaBase[steps] * _k > int.MaxValue / 2)
        {
            OneByOne(); // σ of every step at once would not fit one array
            return;
        }
        Grow(ref _sigmas, (long)sigmaBase[steps] * _k);
        int blocks = (_v + BlockWords - 1) >> BlockShift;
        // each step's targets in chunks of ≥ 128 (at most 16 per thread); the chunks of all the steps are the pieces of one parallel loop
        var chunks = new int[steps];
        var pieces = new List<(int Step, int Chunk)>();
        for (int u = 0; u < steps; u++)
        {
            int total = starts[u][^1];
            chunks[u] = Math.Max(1, Math.Min(total / 128, 16 * _o.Threads));
            for (int p = 0; p < chunks[u]; p++)
                pieces.Add((u, p));
        }
        if (_termShards.Length < steps)
            _termShards = [.. _termShards, .. Enumerable.Range(0, steps - _termShards.Length).Select(_ => Array.Empty<TermShard>())];
        for (int u = 0; u < steps; u++)
        {
            if (_termShards[u].Length < chunks[u])
                _termShards[u] = [.. _termShards[u], .. Enumerable.Range(0, chunks[u] - _termShards[u].Length).Select(_ => new TermShard())];
        }
        void Piece(int i)
        {
            if (i < 0)
            {
                alongside!();
                return;
            }
            var (u, p) = pieces[i];
            int total = starts[u][^1];
            FileTerms(live[u], starts[u], (int)((long)total * p / chunks[u]), (int)((long)total * (p + 1) / chunks[u]), ns, cs, blocks, sigmaBase[u], _termShards[u][p]);
        }
        int threads = Math.Max(1, Math.Min(_o.Threads, sigmaBase[steps] / 128));
        int taken = alongside is null ? 0 : -1; // piece −1 is the work alongside, taken first
        if (threads == 1)
        {
            for (int i = taken; i < pieces.Count; i++)
                Piece(i);
        }
        else
        {
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                for (int i = Interlocked.Increment(ref taken) - 1; i < pieces.Count; i = Interlocked.Increment(ref taken) - 1)
                    Piece(i);
            });
        }
        var corrections = new (float StepScale, float SqrtBiasCorrection2)[steps];
        for (int u = 0; u < steps; u++)
            corrections[u] = _adamRho.BeginStep(lr);
        int workers = Math.Min(_o.Threads, Math.Max(1, _v / 256)), next = 0;
        // blocks handed out one at a time, the frequent words (low ids, most terms) first
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, _ =>
        {
            var g = new float[_t * BlockWords * _k];
            for (int b = Interlocked.Increment(ref next) - 1; b < blocks; b = Interlocked.Increment(ref next) - 1)
                GroupBlockSteps(b, chunks, corrections, g);
        });

        // the steps one by one (the same bits)
        void OneByOne()
        {
            for (int u = 0; u < steps; u++)
                Step(batches[u], lr, withLossValue: false, u == 0 ? alongside : null);
        }
    }

    /// <summary>
    /// Targets [<paramref name="from"/>, <paramref name="to"/>) of one step: σ_i (the operations of <see cref="SliceLogLikelihood"/>)
    /// into row <paramref name="sigmaBase"/> + i of the group's σ buffer, and their terms filed by block into <paramref name="shard"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    private void FileTerms(DbeSliceBatch[] batch, int[] starts, int from, int to, int ns, int cs, int blocks, int sigmaBase, TermShard shard)
    {
        int k = _k;
        if (shard.Start.Length < blocks + 1)
            shard.Start = new int[blocks + 1];
        var start = shard.Start.AsSpan(0, blocks + 1);
        CountTermsByBlock(batch, starts, from, to, ns, start);
        if (shard.Terms.Length < start[blocks])
            shard.Terms = new Term[Math.Max(start[blocks], shard.Terms.Length * 3 / 2)];
        Span<int> fill = blocks + 1 <= 1024 ? stackalloc int[blocks + 1] : new int[blocks + 1];
        start.CopyTo(fill);
        var terms = shard.Terms;
        for (int j = 0; j < batch.Length; j++)
        {
            var b = batch[j];
            int i0 = Math.Max(from, starts[j]) - starts[j], i1 = Math.Min(to, starts[j + 1]) - starts[j];
            float scale = (float)b.Scale;
            int slice = b.Slice << BlockShift;
            for (int i = i0; i < i1; i++)
            {
                int row = sigmaBase + starts[j] + i;
                var sigma = _sigmas.AsSpan(row * k, k);
                sigma.Clear();
                foreach (long c in b.Contexts.AsSpan(i * cs, cs))
                    AddInto(_alpha.AsSpan((int)(c * k), k), sigma);
                long w = b.Targets[i];
                terms[fill[(int)(w >> BlockShift)]++] = new Term(row, slice | (int)(w & (BlockWords - 1)), -scale);
                for (int q = 0; q < ns; q++)
                {
                    w = b.Negatives[i * ns + q];
                    terms[fill[(int)(w >> BlockShift)]++] = new Term(row, slice | (int)(w & (BlockWords - 1)), scale);
                }
            }
        }
    }

    /// <summary>
    /// <paramref name="start"/>[b] := the number of terms (target and negatives) of targets [<paramref name="from"/>,
    /// <paramref name="to"/>) whose word lies in a block before b: where block b's terms start once filed in order.
    /// </summary>
    private static void CountTermsByBlock(DbeSliceBatch[] batch, int[] starts, int from, int to, int ns, Span<int> start)
    {
        start.Clear();
        for (int j = 0; j < batch.Length; j++)
        {
            var b = batch[j];
            int i0 = Math.Max(from, starts[j]) - starts[j], i1 = Math.Min(to, starts[j + 1]) - starts[j];
            for (int i = i0; i < i1; i++)
            {
                start[(int)(b.Targets[i] >> BlockShift) + 1]++;
                for (int q = 0; q < ns; q++)
                    start[(int)(b.Negatives[i * ns + q] >> BlockShift) + 1]++;
            }
        }
        for (int x = 2; x < start.Length; x++)
            start[x] += start[x - 1];
    }

    /// <summary>How many terms ahead the grouped pass prefetches σ's rows (the speed probe's switch; the bits are the same).</summary>
    internal static int SigmaPrefetch { get; set; } = 8;

    /// <summary>Asks for σ's row <paramref name="row"/> of the group's buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private unsafe void PrefetchSigma(int row)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported)
            return;
        fixed (float* s = _sigmas)
            PrefetchRow(s + (long)row * _k, _k);
    }

    /// <summary>Block <paramref name="block"/> through the group's steps: each step's η, gradient rows, prior, Adam, hard shrink.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    private void GroupBlockSteps(int block, int[] chunks, (float StepScale, float SqrtBiasCorrection2)[] corrections, float[] g)
    {
        int k = _k, w0 = block << BlockShift, w1 = Math.Min(_v, w0 + BlockWords), len = (w1 - w0) * k;
        var all = g.AsSpan(0, _t * len);
        for (int u = 0; u < chunks.Length; u++)
        {
            all.Clear();
            var shards = _termShards[u];
            for (int p = 0; p < chunks[u]; p++)
            {
                var shard = shards[p];
                int e1 = shard.Start[block + 1];
                for (int e = shard.Start[block]; e < e1; e++)
                {
                    // σ's rows are read at random from the group's buffer (megabytes): ask for a later term's row now
                    if (e + SigmaPrefetch < e1)
                        PrefetchSigma(shard.Terms[e + SigmaPrefetch].Sigma);
                    var term = shard.Terms[e];
                    int slice = term.Row >> BlockShift, word = term.Row & (BlockWords - 1);
                    var sigma = _sigmas.AsSpan(term.Sigma * k, k);
                    // as the likelihood: η = ρ_w·σ, x = ±η, dL/dη = ∓s·σ(−x), gρ_w += dL/dη·σ
                    float eta = Dot(Row(_rho, slice, w0 + word), sigma);
                    float x = term.Scale < 0 ? eta : -eta, ex = MathF.Exp(-Math.Abs(x));
                    float coefficient = term.Scale * (x >= 0 ? ex / (1 + ex) : 1 / (1 + ex));
                    MultiplyAddInto(sigma, coefficient, all.Slice(slice * len + word * k, k));
                }
            }
            PriorAdamShrink(w0, w1, len, g, corrections[u].StepScale, corrections[u].SqrtBiasCorrection2);
        }
    }
}
