using System.Runtime.CompilerServices;

namespace Allauzen.ML.Diachronic;

/// <summary>The fit of the dynamic Bernoulli model: its two phases and the minibatch draws.</summary>
internal sealed partial class DynamicBernoulliEngine
{
    /// <summary>Bytes of model state for V words, K dimensions and T slices (parameters, gradients, two Adam moments, a temporary, drift buffer).</summary>
    public static long StateBytes(long v, long k, long t) => 4L * v * k * (5 * (t + 1) + Math.Max(1, t - 1) + 1);

    /// <summary>
    /// Fits the model: a static phase (α and one ρ shared by all slices, <see cref="DiachronicEmbeddingsOptions.StaticSteps"/>)
    /// then the dynamic phase (ρ_t := static ρ, α frozen, drift penalty, <see cref="DiachronicEmbeddingsOptions.DynamicSteps"/>).
    /// </summary>
    public static DiachronicFit Fit(DiachronicCorpus corpus, DiachronicEmbeddingsOptions o)
    {
        int v = corpus.VocabularySize, k = o.Dimensions, T = corpus.SliceCount;
        var rng = new SplitMix64(SkipGramEngine.Hash((ulong)o.Seed, 0xDBE, 0));
        var streams = Subsample(corpus, o.Subsampling, ref rng);
        var table = SkipGramEngine.BuildNegativeTable(corpus.TotalCounts);
        var alpha0 = new float[v * k];
        var rhoS = new float[v * k];
        for (int i = 0; i < alpha0.Length; i++)
        {
            alpha0[i] = (float)(rng.NextGaussian() / k);
            rhoS[i] = (float)(rng.NextGaussian() / k);
        }
        float[] alpha;
        float[] rhoStatic;
        using (var st = Create(v, k, 1, o, alpha0, rhoS))
        {
            st.TrainAlpha = true;
            RunPhase(st, "static", o.StaticSteps, o.StaticLearningRate, ref rng);
            alpha = st.Alpha;
            rhoStatic = st.Rho;
        }
        var rho0 = new float[(long)T * v * k];
        for (int t = 0; t < T; t++)
            rhoStatic.CopyTo(rho0, (long)t * v * k);
        using var dyn = Create(v, k, T, o, alpha, rho0, corpus.SliceCounts);
        dyn.TrainAlpha = false;
        dyn.Lambda = o.DriftPrecision;
        RunPhase(dyn, "dynamic", o.DynamicSteps, o.DynamicLearningRate, ref rng);
        var rho = dyn.Rho;
        var vectors = new float[T][];
        var defined = new bool[T][];
        for (int t = 0; t < T; t++)
        {
            vectors[t] = rho.AsSpan(t * v * k, v * k).ToArray();
            defined[t] = Enumerable.Repeat(true, v).ToArray();
        }
        return new DiachronicFit(vectors, defined, 0, 0);

        // one phase: Adam steps on minibatches of every slice (all slices as slice 0 in the static phase), progress every 50
        // steps. The dynamic phase runs its steps in groups of GroupSteps (IDynamicBernoulliState.Steps: the same bits as
        // one by one), a step that reports the loss alone. The minibatches of the next group are drawn during the current
        // one, as one more piece of its parallel work (a third thread would be preempted in the middle of the steps'
        // parallel parts and hold them up). The draws depend only on the generator, which goes from batch to batch in the
        // order of drawing them one by one, and exactly `steps` are drawn per phase: the same batches, the same bits.
        void RunPhase(IDynamicBernoulliState state, string phase, int steps, double lr, ref SplitMix64 rng)
        {
            bool staticPhase = phase == "static";
            int most = staticPhase ? 1 : Math.Max(1, GroupSteps);
            var ready = new Queue<List<DbeSliceBatch>>();
            var spent = new Stack<List<DbeSliceBatch>>(); // batches already used: their arrays take new draws
            ready.Enqueue(SampleBatch(streams, o, table, ref rng, staticPhase));
            int drawn = 1;
            bool Reports(int s) => o.Progress is not null && (s % 50 == 0 || s == steps - 1);
            for (int s = 0; s < steps;)
            {
                o.CancellationToken.ThrowIfCancellationRequested();
                bool report = Reports(s);
                int group = report ? 1 : Math.Min(most, steps - s);
                for (int r = s + 1; r < s + group; r++)
                {
                    if (Reports(r))
                    {
                        group = r - s;
                        break;
                    }
                }
                while (ready.Count < group)
                {
                    ready.Enqueue(SampleBatch(streams, o, table, ref rng, staticPhase, spent.TryPop(out var old) ? old : null));
                    drawn++;
                }
                var current = new List<List<DbeSliceBatch>>(group);
                for (int u = 0; u < group; u++)
                    current.Add(ready.Dequeue());
                // the next group's batches, drawn alongside (never more than the phase's steps in all)
                int want = Math.Min(most - ready.Count, steps - drawn);
                Action? draw = null;
                var fresh = new List<DbeSliceBatch>[Math.Max(0, want)];
                var after = rng;
                if (want > 0)
                {
                    var reuse = Enumerable.Range(0, want).Select(_ => spent.TryPop(out var old) ? old : null).ToArray();
                    draw = () =>
                    {
                        for (int u = 0; u < fresh.Length; u++)
                            fresh[u] = SampleBatch(streams, o, table, ref after, staticPhase, reuse[u]);
                    };
                }
                if (group == 1)
                {
                    double loss = state.Step(current[0], lr, report, draw);
                    if (report)
                        o.Progress!.Report(new DiachronicProgress(phase, -1, (s + 1.0) / steps, 0, loss / current[0].Sum(b => b.Targets.Length * b.Scale)));
                }
                else
                    state.Steps(current, lr, draw);
                if (want > 0)
                {
                    foreach (var b in fresh)
                        ready.Enqueue(b);
                    drawn += want;
                    rng = after;
                }
                foreach (var b in current)
                    spent.Push(b);
                s += group;
            }
        }
    }

    /// <summary>Steps per group in the dynamic phase (<see cref="IDynamicBernoulliState.Steps"/>; the speed probe's switch, the bits are the same).</summary>
    internal static int GroupSteps { get; set; } = 4;

    /// <summary>Subsamples each slice once (Rudolph: keep with probability min(1, √(s/f_w)), f_w over in-vocabulary tokens).</summary>
    internal static int[][] Subsample(DiachronicCorpus corpus, double sample, ref SplitMix64 rng)
    {
        var result = new int[corpus.SliceCount][];
        double total = corpus.TotalCounts.Sum();
        var keep = corpus.TotalCounts.Select(c => sample <= 0 || c == 0 ? 1.0 : Math.Min(1.0, Math.Sqrt(sample / (c / total)))).ToArray();
        for (int t = 0; t < corpus.SliceCount; t++)
        {
            var list = new List<int>(corpus.Tokens[t].Length);
            foreach (int w in corpus.Tokens[t])
            {
                if (keep[w] >= 1 || rng.NextDouble() < keep[w])
                    list.Add(w);
            }
            result[t] = list.ToArray();
        }
        return result;
    }

    /// <summary>From every slice, one contiguous window of n_t = ⌈N_t·fraction⌉ centres at a random offset.</summary>
    /// <remarks>With <paramref name="reuse"/> (a batch this method returned for the same streams and options, no longer in
    /// use), its arrays are filled again instead of allocated: the same draws, no new large-object arrays per step.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    internal static List<DbeSliceBatch> SampleBatch(int[][] streams, DiachronicEmbeddingsOptions o, int[] table, ref SplitMix64 rng, bool staticPhase,
        List<DbeSliceBatch>? reuse = null)
    {
        int cs = o.ContextSize, half = cs / 2, ns = o.DynamicNegatives;
        var batch = new List<DbeSliceBatch>(streams.Length);
        int reused = 0;
        for (int t = 0; t < streams.Length; t++)
        {
            var s = streams[t];
            int centres = s.Length - cs;
            if (centres <= 0)
                continue;
            int n = Math.Max(1, Math.Min(centres, (int)Math.Ceiling(centres * o.BatchFraction)));
            int offset = centres == n ? 0 : rng.NextInt(centres - n + 1);
            var old = reuse is not null && reused < reuse.Count ? reuse[reused++] : null;
            bool fits = old is not null && old.Targets.Length == n && old.Contexts.Length == n * cs && old.Negatives.Length == n * ns;
            var tg = fits ? old!.Targets : new long[n];
            var cx = fits ? old!.Contexts : new long[n * cs];
            var ng = fits ? old!.Negatives : new long[n * ns];
            for (int j = 0; j < n; j++)
            {
                int i = offset + half + j;
                tg[j] = s[i];
                int c = 0;
                for (int d = -half; d <= half; d++)
                {
                    if (d != 0)
                        cx[j * cs + c++] = s[i + d];
                }
                for (int q = 0; q < ns; q++)
                    ng[j * ns + q] = rng.NextInt(table.Length); // the table position; the word is looked up below
            }
            // the negatives' words in a second pass: independent loads, so their cache misses overlap (the table is
            // evicted by the step running beside the draw); the same draws in the same order as looking each one up at once
            for (int x = 0; x < ng.Length; x++)
                ng[x] = table[ng[x]];
            batch.Add(new DbeSliceBatch(staticPhase ? 0 : t, tg, cx, ng, centres / (double)n));
        }
        return batch;
    }
}
