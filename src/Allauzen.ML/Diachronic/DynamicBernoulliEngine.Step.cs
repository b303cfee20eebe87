using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace Allauzen.ML.Diachronic;

/// <summary>The fused training step of the managed dynamic Bernoulli state.</summary>
internal sealed partial class DynamicBernoulliEngine
{
    // Words per block of the fused pass: a block's T gradient rows stay in the core's L1/L2 while they are formed.
    private const int BlockWords = 32, BlockShift = 5;

    // One likelihood term's contribution to a gradient row: the target (σ's and gσ's row in the step's buffers), the
    // coefficient's index (dL/dη of the term), and the row within its block (slice · BlockWords + word mod BlockWords).
    private readonly record struct Contribution(int Target, int Coefficient, int Row);

    // A thread's share of a step's targets: its contributions sorted by block (stable), and where each block's start.
    private sealed class StepShard
    {
        public int[] RhoStart = [], AlphaStart = [];
        public Contribution[] Rho = [], Alpha = [];
        public float[] Etas = [];
    }

    private StepShard[] _shards = [];

    // The step's per-target values: σ_i (N×K), the coefficients dL/dη (N×(ns+1)) and, with α trained, gσ_i (N×K).
    private float[] _sigmas = [], _coefficients = [], _gSigmas = [];

    /// <summary>
    /// <see cref="ComputeLossAndGradients"/> then <see cref="AdamStep"/> with the same bits, for the random-walk and hard-shrink
    /// priors, in two parallel passes and without a gradient array:
    /// <list type="number">
    /// <item>over the minibatch's targets, split evenly between the threads: σ_i = Σ α over its contexts, the dot products
    /// and the coefficients dL/dη of its positive and negative terms (and gσ_i when α is trained) into per-step buffers;
    /// each term's contribution to a gradient row is filed under the row's block of <c>BlockWords</c> words (a stable
    /// counting sort per thread);</item>
    /// <item>over the blocks (handed to the threads one at a time): the block's gradient rows are formed in a small buffer
    /// from its contributions, in the order of the minibatch (the order of the single-threaded likelihood, hence the same
    /// sums), then word by word the prior's terms are added in the order of <see cref="PriorOfWord"/> and Adam moves the
    /// word's T rows (the order of <see cref="AddPrior"/> and <see cref="AdamStep"/>, which streams ρ and the moments best).</item>
    /// </list>
    /// The likelihood's work is shared by the threads whatever the slices' sizes (the static phase included), the gradient
    /// rows never leave the cache, and no gradient array is cleared or read back. The other regularisers, and steps that
    /// report the loss, take the two-call form (<c>FusedStepGivesTheBitsOfComputeThenAdam</c> checks the bits).
    /// </summary>
    public double Step(IReadOnlyList<DbeSliceBatch> batch, double lr, bool withLossValue, Action? alongside = null)
    {
        if (withLossValue || !FusedSteps || _o.DriftRegularizer is not (DriftRegularizer.RandomWalk or DriftRegularizer.HardShrink))
        {
            alongside?.Invoke();
            double value = ComputeLossAndGradients(batch, withLossValue);
            AdamStep(lr);
            return value;
        }
        bool alpha = TrainAlpha;
        var live = batch.Where(b => b.Targets.Length > 0).ToArray();
        int total = live.Sum(b => b.Targets.Length);
        int ns = live.Length == 0 ? 0 : live[0].Negatives.Length / live[0].Targets.Length;
        int cs = live.Length == 0 ? 0 : live[0].Contexts.Length / live[0].Targets.Length;
        foreach (var b in live)
        {
            if (b.Negatives.Length != b.Targets.Length * ns || b.Contexts.Length != b.Targets.Length * cs)
                throw new InvalidOperationException("Every slice of a minibatch must have the same context and negative counts.");
        }
        Grow(ref _sigmas, (long)total * _k);
        Grow(ref _coefficients, (long)total * (ns + 1));
        if (alpha)
            Grow(ref _gSigmas, (long)total * _k);
        // the targets in chunks of ≥ 128, at most 16 per thread, taken by the threads one at a time: a thread the OS
        // preempts (the next minibatch is drawn on a third thread) does not hold the others up
        int workers = Math.Max(1, Math.Min(_o.Threads, total / 128));
        int shards = workers == 1 ? 1 : Math.Min(total / 128, 16 * workers);
        if (_shards.Length < shards)
            _shards = [.. _shards, .. Enumerable.Range(0, shards - _shards.Length).Select(_ => new StepShard())];
        int blocks = (_v + BlockWords - 1) >> BlockShift;
        var starts = new int[live.Length + 1];
        for (int j = 0; j < live.Length; j++)
            starts[j + 1] = starts[j] + live[j].Targets.Length;
        if (shards == 1)
        {
            alongside?.Invoke();
            TargetTerms(live, starts, 0, total, ns, cs, blocks, alpha, _shards[0]);
        }
        else
        {
            // piece −1 is the work alongside, taken first
            int taken = alongside is null ? 0 : -1;
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, _ =>
            {
                for (int p = Interlocked.Increment(ref taken) - 1; p < shards; p = Interlocked.Increment(ref taken) - 1)
                {
                    if (p < 0)
                        alongside!();
                    else
                        TargetTerms(live, starts, (int)((long)total * p / shards), (int)((long)total * (p + 1) / shards), ns, cs, blocks, alpha, _shards[p]);
                }
            });
        }
        if (alpha)
            AdamAlpha.BeginStep(lr);
        var (scale, bc) = _adamRho.BeginStep(lr);
        int threads = Math.Min(_o.Threads, Math.Max(1, _v / 256)), next = 0;
        // blocks handed out one at a time: the frequent words (low ids) carry most contributions
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
        {
            var g = new float[_t * BlockWords * _k];
            for (int b = Interlocked.Increment(ref next) - 1; b < blocks; b = Interlocked.Increment(ref next) - 1)
                FusedBlockStep(b, shards, alpha, g, scale, bc);
        });
        return 0;
    }

    private static void Grow(ref float[] buffer, long length)
    {
        if (buffer.Length < length)
            buffer = new float[Math.Max(length, buffer.Length * 3L / 2)];
    }

    /// <summary>
    /// Targets [<paramref name="from"/>, <paramref name="to"/>) of the step (numbered slice after slice): σ, the η's, the
    /// coefficients (and gσ), with the operations of <see cref="SliceLogLikelihood"/>; their contributions filed by block into <paramref name="shard"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    private void TargetTerms(DbeSliceBatch[] batch, int[] starts, int from, int to, int ns, int cs, int blocks, bool alpha, StepShard shard)
    {
        int k = _k, terms = ns + 1;
        // count the contributions per block, then place them in order (a stable counting sort)
        if (shard.RhoStart.Length < blocks + 1)
        {
            shard.RhoStart = new int[blocks + 1];
            shard.AlphaStart = new int[blocks + 1];
        }
        var rhoStart = shard.RhoStart.AsSpan(0, blocks + 1);
        var alphaStart = shard.AlphaStart.AsSpan(0, blocks + 1);
        CountTermsByBlock(batch, starts, from, to, ns, rhoStart);
        alphaStart.Clear();
        if (alpha)
        {
            for (int j = 0; j < batch.Length; j++)
            {
                var b = batch[j];
                int i0 = Math.Max(from, starts[j]) - starts[j], i1 = Math.Min(to, starts[j + 1]) - starts[j];
                for (int i = i0; i < i1; i++)
                {
                    for (int c = 0; c < cs; c++)
                        alphaStart[(int)(b.Contexts[i * cs + c] >> BlockShift) + 1]++;
                }
            }
            for (int x = 2; x <= blocks; x++)
                alphaStart[x] += alphaStart[x - 1];
        }
        if (shard.Rho.Length < rhoStart[blocks])
            shard.Rho = new Contribution[Math.Max(rhoStart[blocks], shard.Rho.Length * 3 / 2)];
        if (shard.Alpha.Length < alphaStart[blocks])
            shard.Alpha = new Contribution[Math.Max(alphaStart[blocks], shard.Alpha.Length * 3 / 2)];
        if (shard.Etas.Length < terms)
            shard.Etas = new float[terms];
        // fill pointers: the start of each block, moved along as it fills (restored below)
        Span<int> rhoFill = blocks + 1 <= 1024 ? stackalloc int[blocks + 1] : new int[blocks + 1];
        Span<int> alphaFill = blocks + 1 <= 1024 ? stackalloc int[blocks + 1] : new int[blocks + 1];
        rhoStart.CopyTo(rhoFill);
        alphaStart.CopyTo(alphaFill);
        var rhoOut = shard.Rho;
        var alphaOut = shard.Alpha;
        var etas = shard.Etas.AsSpan(0, terms);
        for (int j = 0; j < batch.Length; j++)
        {
            var b = batch[j];
            int i0 = Math.Max(from, starts[j]) - starts[j], i1 = Math.Min(to, starts[j + 1]) - starts[j];
            if (i0 >= i1)
                continue;
            float scale = (float)b.Scale;
            long sliceBase = (long)b.Slice * _v * k;
            int slice = b.Slice;
            int ahead = PrefetchDistance;
            for (int i = i0; i < Math.Min(i1, i0 + ahead); i++)
                PrefetchTarget(b, i, cs, ns, sliceBase, gradient: false);
            for (int i = i0; i < i1; i++)
            {
                if (i + ahead < i1)
                    PrefetchTarget(b, i + ahead, cs, ns, sliceBase, gradient: false);
                int target = starts[j] + i;
                var sigma = _sigmas.AsSpan(target * k, k);
                sigma.Clear();
                var contexts = b.Contexts.AsSpan(i * cs, cs);
                foreach (long c in contexts)
                    AddInto(_alpha.AsSpan((int)(c * k), k), sigma);
                for (int q = -1; q < ns; q++)
                    etas[q + 1] = Dot(Row(_rho, slice, q < 0 ? b.Targets[i] : b.Negatives[i * ns + q]), sigma);
                var gSigma = alpha ? _gSigmas.AsSpan(target * k, k) : default;
                if (alpha)
                    gSigma.Clear();
                for (int q = -1; q < ns; q++)
                {
                    long w = q < 0 ? b.Targets[i] : b.Negatives[i * ns + q];
                    float eta = etas[q + 1];
                    float x = q < 0 ? eta : -eta, e = MathF.Exp(-Math.Abs(x));
                    float g = (q < 0 ? -scale : scale) * (x >= 0 ? e / (1 + e) : 1 / (1 + e)); // ∓s·σ(−x), as the likelihood
                    int coefficient = target * terms + q + 1;
                    _coefficients[coefficient] = g;
                    if (alpha)
                        MultiplyAddInto(Row(_rho, slice, w), g, gSigma);
                    int block = (int)(w >> BlockShift);
                    rhoOut[rhoFill[block]++] = new Contribution(target, coefficient, (slice << BlockShift) | (int)(w & (BlockWords - 1)));
                }
                if (alpha)
                {
                    foreach (long c in contexts)
                    {
                        int block = (int)(c >> BlockShift);
                        alphaOut[alphaFill[block]++] = new Contribution(target, 0, (int)(c & (BlockWords - 1)));
                    }
                }
            }
        }
    }

    /// <summary>Block <paramref name="block"/>'s share of the fused step: its gradient rows formed from the contributions, prior terms, Adam, hard shrink.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    private void FusedBlockStep(int block, int shards, bool alpha, float[] g, float scale, float bc)
    {
        int k = _k, w0 = block << BlockShift, w1 = Math.Min(_v, w0 + BlockWords), len = (w1 - w0) * k;
        float l0 = (float)_o.PriorPrecision;
        if (alpha)
        {
            var ga = g.AsSpan(0, len);
            ga.Clear();
            for (int p = 0; p < shards; p++)
            {
                var shard = _shards[p];
                for (int e = shard.AlphaStart[block]; e < shard.AlphaStart[block + 1]; e++)
                {
                    var c = shard.Alpha[e];
                    AddInto(_gSigmas.AsSpan(c.Target * k, k), ga.Slice(c.Row * k, k));
                }
            }
            var a = _alpha.AsSpan(w0 * k, len);
            TensorPrimitives.MultiplyAdd(a, l0, ga, ga);
            AdamAlpha.Update(a, ga, w0 * k, ga);
        }
        var all = g.AsSpan(0, _t * len);
        all.Clear();
        for (int p = 0; p < shards; p++)
        {
            var shard = _shards[p];
            for (int e = shard.RhoStart[block]; e < shard.RhoStart[block + 1]; e++)
            {
                var c = shard.Rho[e];
                int row = (c.Row >> BlockShift) * len + (c.Row & (BlockWords - 1)) * k;
                MultiplyAddInto(_sigmas.AsSpan(c.Target * k, k), _coefficients[c.Coefficient], all.Slice(row, k)); // gρ_w += g·σ
            }
        }
        PriorAdamShrink(w0, w1, len, g, scale, bc);
    }

    /// <summary>
    /// Words [<paramref name="w0"/>, <paramref name="w1"/>) (a block of <paramref name="len"/>/K of them), whose likelihood
    /// gradient rows are in <paramref name="g"/> (slice t at t·len): word by word, the prior's terms in the order of
    /// <see cref="PriorOfWord"/>, Adam with the given step's bias corrections on the word's T rows (the order of
    /// <see cref="AddPrior"/> and <see cref="AdamStep"/>, which streams ρ and the moments best), then the hard shrink.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    private void PriorAdamShrink(int w0, int w1, int len, float[] g, float scale, float bc)
    {
        int k = _k;
        float l0 = (float)_o.PriorPrecision;
        float lam = (float)Lambda;
        bool shrink = _o.DriftRegularizer == DriftRegularizer.HardShrink;
        float th = (float)_o.HardShrinkThreshold;
        for (int w = w0; w < w1; w++)
        {
            int r = (w - w0) * k;
            if (FusedPriorAdam)
                _adamRho.RandomWalkUpdate(_rho, _v * k, w * k, k, _t, g, r, len, l0, lam, scale, bc);
            else
            {
                MultiplyAddInto(Row(_rho, 0, w), l0, g.AsSpan(r, k)); // TensorPrimitives.MultiplyAdd's operations, inlined
                for (int t = 1; t < _t; t++)
                    RandomWalkGradient(Row(_rho, t, w), Row(_rho, t - 1, w), g.AsSpan(t * len + r, k), g.AsSpan((t - 1) * len + r, k), lam);
                for (int t = 0; t < _t; t++)
                    _adamRho.Update(Row(_rho, t, w), g.AsSpan(t * len + r, k), (t * _v + w) * k, scale, bc);
            }
            if (shrink)
            {
                for (int t = 1; t < _t; t++)
                    HardShrink(Row(_rho, t - 1, w), Row(_rho, t, w), th);
            }
        }
    }

    /// <summary>Whether the prior and Adam run as one kernel per word (<see cref="RowAdam.RandomWalkUpdate"/>; the probe's switch, the bits are the same).</summary>
    internal static bool FusedPriorAdam { get; set; } = true;

    /// <summary>Whether <see cref="Step"/> may take the fused form (the speed probe's A/B switch; the bits are the same).</summary>
    internal static bool FusedSteps { get; set; } = true;

    /// <summary>Slice <paramref name="t"/>'s rows of words [<paramref name="w0"/>, w0 + len/K) in a slice-major T×V×K array.</summary>
    private Span<float> Block(float[] a, int t, int w0, int len) => a.AsSpan((t * _v + w0) * _k, len);
}
