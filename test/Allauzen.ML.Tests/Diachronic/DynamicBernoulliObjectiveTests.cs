using System.Numerics.Tensors;
using Allauzen.ML.Diachronic;

namespace Allauzen.ML.Tests.Diachronic;

/// <summary>The dynamic Bernoulli objective on a tiny exact case, and its gradients against finite differences.</summary>
[TestClass]
public sealed class DynamicBernoulliObjectiveTests
{
    private const int V = 5, K = 2, T = 2, Cs = 4, Ns = 2;

    // One 7-token stream per slice; centres 2..4 (full windows of 2 + 2), explicit negatives.
    private static readonly int[][] Streams = [[0, 1, 2, 3, 4, 1, 0], [4, 3, 2, 1, 0, 2, 3]];
    private static readonly long[][] Negatives = [[3, 4, 0, 0, 1, 2], [1, 1, 2, 4, 0, 3]];
    private static readonly double[] Scales = [1.5, 2.0];

    private static List<DbeSliceBatch> Batch(bool staticPhase)
    {
        var batch = new List<DbeSliceBatch>();
        for (int t = 0; t < T; t++)
        {
            var s = Streams[t];
            var targets = new long[3];
            var contexts = new long[3 * Cs];
            for (int j = 0; j < 3; j++)
            {
                int i = 2 + j;
                targets[j] = s[i];
                contexts[j * Cs] = s[i - 2];
                contexts[j * Cs + 1] = s[i - 1];
                contexts[j * Cs + 2] = s[i + 1];
                contexts[j * Cs + 3] = s[i + 2];
            }
            batch.Add(new DbeSliceBatch(staticPhase ? 0 : t, targets, contexts, Negatives[t], Scales[t]));
        }
        return batch;
    }

    private static float[] Values(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
    }

    private static DiachronicEmbeddingsOptions Options(DriftRegularizer reg = DriftRegularizer.RandomWalk) => new()
    {
        Dimensions = K, PriorPrecision = 0.7, DriftPrecision = 3.0, DriftRegularizer = reg, DriftPenaltyWeight = 0.4,
    };

    private static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    private static double Dot(float[] a, int ao, float[] b, int bo)
    {
        double s = 0;
        for (int i = 0; i < K; i++)
            s += (double)a[ao + i] * b[bo + i];
        return s;
    }

    /// <summary>The formula written out: −Σ_t s_t Σ_i [log σ(ρ_t[w_i]·σ_i) + Σ_n log σ(−ρ_t[n]·σ_i)] + λ₀/2‖ρ_0‖² + λ/2‖ρ_1 − ρ_0‖².</summary>
    private static double HandLoss(float[] alpha, float[] rho, double l0, double lam)
    {
        double loss = 0;
        for (int t = 0; t < T; t++)
        {
            var s = Streams[t];
            for (int j = 0; j < 3; j++)
            {
                int i = 2 + j;
                var sigma = new float[K];
                foreach (int c in new[] { s[i - 2], s[i - 1], s[i + 1], s[i + 2] })
                {
                    for (int d = 0; d < K; d++)
                        sigma[d] += alpha[c * K + d];
                }
                double ll = LogSigmoid(Dot(rho, t * V * K + s[i] * K, sigma, 0));
                for (int q = 0; q < Ns; q++)
                    ll += LogSigmoid(-Dot(rho, t * V * K + (int)Negatives[t][j * Ns + q] * K, sigma, 0));
                loss -= Scales[t] * ll;
            }
        }
        double p0 = 0, rw = 0;
        for (int i = 0; i < V * K; i++)
        {
            p0 += (double)rho[i] * rho[i];
            double d = rho[V * K + i] - rho[i];
            rw += d * d;
        }
        return loss + 0.5 * l0 * p0 + 0.5 * lam * rw;
    }

    [TestMethod]
    public void TinyObjectiveEqualsTheHandComputedFormula()
    {
        var alpha = Values(V * K, 1);
        var rho = Values(T * V * K, 2);
        var o = Options();
        using var trainer = new DynamicBernoulliEngine(V, K, T, o, alpha, rho) { TrainAlpha = false, Lambda = o.DriftPrecision };
        double loss = trainer.ComputeLossAndGradients(Batch(false));
        double expected = HandLoss(alpha, rho, o.PriorPrecision, o.DriftPrecision);
        Assert.AreEqual(expected, loss, 1e-5 * Math.Abs(expected));
        // the frozen context matrix gets no gradient
        Assert.IsTrue(trainer.GradAlpha.All(g => g == 0));
    }

    [TestMethod]
    [DataRow(DriftRegularizer.RandomWalk)]
    [DataRow(DriftRegularizer.Anchored)]
    [DataRow(DriftRegularizer.GroupLasso)]
    [DataRow(DriftRegularizer.FrequencyAware)]
    public void RhoGradientsMatchFiniteDifferences(DriftRegularizer reg)
    {
        var alpha = Values(V * K, 3);
        var rho = Values(T * V * K, 4);
        var o = Options(reg);
        long[][] counts = [[2, 2, 1, 1, 1], [1, 1, 2, 2, 0]];
        using var trainer = new DynamicBernoulliEngine(V, K, T, o, alpha, rho, counts) { TrainAlpha = false, Lambda = o.DriftPrecision };
        var batch = Batch(false);
        trainer.ComputeLossAndGradients(batch);
        var analytic = trainer.GradRho;
        var numeric = new double[rho.Length];
        const float h = 1e-2f;
        for (int i = 0; i < rho.Length; i++)
        {
            var plus = (float[])rho.Clone();
            var minus = (float[])rho.Clone();
            plus[i] += h;
            minus[i] -= h;
            trainer.SetParameters(null, plus);
            double lp = trainer.ComputeLossAndGradients(batch);
            trainer.SetParameters(null, minus);
            double lm = trainer.ComputeLossAndGradients(batch);
            numeric[i] = (lp - lm) / (2 * h);
        }
        Assert.IsLessThan(1e-3, RelativeError(analytic, numeric), $"{reg}: relative error of the ρ gradient: " +
            string.Join(" ", analytic.Zip(numeric).Select(p => $"{p.First:F3}/{p.Second:F3}")));
    }

    [TestMethod]
    public void StaticPhaseGradientsOfAlphaAndRhoMatchFiniteDifferences()
    {
        var alpha = Values(V * K, 5);
        var rho = Values(V * K, 6);
        var o = Options();
        using var trainer = new DynamicBernoulliEngine(V, K, 1, o, alpha, rho) { TrainAlpha = true };
        var batch = Batch(true);
        trainer.ComputeLossAndGradients(batch);
        var gAlpha = trainer.GradAlpha;
        var gRho = trainer.GradRho;
        const float h = 1e-2f;
        var nAlpha = new double[alpha.Length];
        var nRho = new double[rho.Length];
        for (int i = 0; i < alpha.Length; i++)
        {
            var p = (float[])alpha.Clone();
            var m = (float[])alpha.Clone();
            p[i] += h;
            m[i] -= h;
            trainer.SetParameters(p, rho);
            double lp = trainer.ComputeLossAndGradients(batch);
            trainer.SetParameters(m, rho);
            double lm = trainer.ComputeLossAndGradients(batch);
            nAlpha[i] = (lp - lm) / (2 * h);
            p = (float[])rho.Clone();
            m = (float[])rho.Clone();
            p[i] += h;
            m[i] -= h;
            trainer.SetParameters(alpha, p);
            lp = trainer.ComputeLossAndGradients(batch);
            trainer.SetParameters(alpha, m);
            lm = trainer.ComputeLossAndGradients(batch);
            nRho[i] = (lp - lm) / (2 * h);
        }
        Assert.IsLessThan(1e-3, RelativeError(gAlpha, nAlpha), "α gradient");
        Assert.IsLessThan(1e-3, RelativeError(gRho, nRho), "ρ gradient");
    }

    [TestMethod]
    [DataRow(DriftRegularizer.RandomWalk, false)]
    [DataRow(DriftRegularizer.Anchored, false)]
    [DataRow(DriftRegularizer.GroupLasso, false)]
    [DataRow(DriftRegularizer.HardShrink, false)]
    [DataRow(DriftRegularizer.FrequencyAware, false)]
    [DataRow(DriftRegularizer.RandomWalk, true)]
    public void ManagedStateMatchesTheTorchSharpState(DriftRegularizer reg, bool staticPhase)
    {
        // the CPU trainer (hand-written gradients, dense Adam word by word) against the TorchSharp one (other devices)
        int slices = staticPhase ? 1 : T;
        var alpha = Values(V * K, 7);
        var rho = Values(slices * V * K, 8);
        var o = Options(reg);
        o.HardShrinkThreshold = 0.05;
        o.Threads = 2;
        long[][] counts = [[2, 2, 1, 1, 1], [1, 1, 2, 2, 0]];
        using var managed = new DynamicBernoulliEngine(V, K, slices, o, alpha, rho, counts) { TrainAlpha = staticPhase, Lambda = o.DriftPrecision };
        using var torch = new DynamicBernoulliTorchEngine(V, K, slices, o, alpha, rho, counts) { TrainAlpha = staticPhase, Lambda = o.DriftPrecision };
        var batch = Batch(staticPhase);
        for (int step = 0; step < 5; step++)
        {
            double lm = managed.ComputeLossAndGradients(batch);
            double lt = torch.ComputeLossAndGradients(batch);
            Assert.AreEqual(lt, lm, 1e-5 * Math.Abs(lt), $"loss at step {step}");
            Assert.IsLessThan(1e-5, RelativeError(managed.GradRho, torch.GradRho.Select(x => (double)x).ToArray()), "ρ gradient");
            Assert.IsLessThan(1e-5, RelativeError(managed.GradAlpha, torch.GradAlpha.Select(x => (double)x).ToArray()), "α gradient");
            managed.AdamStep(0.05);
            torch.AdamStep(0.05);
        }
        Assert.IsLessThan(1e-5, RelativeError(managed.Rho, torch.Rho.Select(x => (double)x).ToArray()), "ρ after 5 Adam steps");
        Assert.IsLessThan(1e-5, RelativeError(managed.Alpha, torch.Alpha.Select(x => (double)x).ToArray()), "α after 5 Adam steps");
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)] // the dynamic phase: slices' likelihoods on separate threads
    public void ThreadCountDoesNotChangeTheParameters(bool trainAlpha)
    {
        const int v = 1500, k = 8, t = 3;
        var rng = new SplitMix64(5);
        var alpha = Enumerable.Range(0, v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        var rho = Enumerable.Range(0, t * v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        var streams = Enumerable.Range(0, t).Select(_ => Enumerable.Range(0, 2000).Select(_ => rng.NextInt(v)).ToArray()).ToArray();
        var table = Enumerable.Range(0, v).ToArray();
        var rhos = new List<float[]>();
        foreach (int threads in new[] { 1, 2 })
        {
            var o = Options(DriftRegularizer.GroupLasso);
            o.Threads = threads;
            o.BatchFraction = 0.1;
            var r = new SplitMix64(9);
            using var trainer = new DynamicBernoulliEngine(v, k, t, o, alpha, rho) { TrainAlpha = trainAlpha, Lambda = 10 };
            for (int step = 0; step < 3; step++)
            {
                trainer.ComputeLossAndGradients(DynamicBernoulliEngine.SampleBatch(streams, o, table, ref r, staticPhase: false), withPriorValue: false);
                trainer.AdamStep(0.01);
            }
            rhos.Add(trainer.Rho);
        }
        CollectionAssert.AreEqual(rhos[0], rhos[1], "1 and 2 threads (over words, and over slices without α) give the same ρ");
    }

    [TestMethod]
    [DataRow(DriftRegularizer.RandomWalk, false, 1, 16)]
    [DataRow(DriftRegularizer.RandomWalk, false, 2, 16)]
    [DataRow(DriftRegularizer.RandomWalk, false, 2, 20)] // K = 20: whole vectors and a scalar tail in every kernel
    [DataRow(DriftRegularizer.RandomWalk, true, 1, 16)]
    [DataRow(DriftRegularizer.RandomWalk, false, 3, 16)]
    [DataRow(DriftRegularizer.RandomWalk, true, 2, 20)] // the static phase: α trained, every slice's minibatch on slice 0
    [DataRow(DriftRegularizer.HardShrink, false, 2, 20)]
    [DataRow(DriftRegularizer.GroupLasso, false, 2, 16)] // not fused: the two-call form itself
    public void FusedStepGivesTheBitsOfComputeThenAdam(DriftRegularizer reg, bool staticPhase, int threads, int k)
    {
        // The fused step (the targets' terms on 1–3 threads in chunks, their contributions sorted by block of words, each
        // block's gradient rows formed in a small buffer, then prior and Adam word by word) against ComputeLossAndGradients
        // then AdamStep, over 7 steps with a reporting step (the two-call form) in the middle: the same operations on
        // every element in the same order, so bit identity on one machine.
        const int v = 1200;
        int t = staticPhase ? 1 : 3;
        var rng = new SplitMix64(11);
        var alpha = Enumerable.Range(0, v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        var rho = Enumerable.Range(0, t * v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        var streams = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 3000).Select(_ => rng.NextInt(v)).ToArray()).ToArray();
        var table = Enumerable.Range(0, v / 2).ToArray(); // half the words are never negatives: untouched rows exist
        var o = Options(reg);
        o.Threads = threads;
        o.BatchFraction = 0.05;
        o.HardShrinkThreshold = 1e-3;
        var (rf, rs) = (new SplitMix64(9), new SplitMix64(9));
        using var fused = new DynamicBernoulliEngine(v, k, t, o, alpha, rho) { TrainAlpha = staticPhase, Lambda = 10 };
        using var twoCall = new DynamicBernoulliEngine(v, k, t, o, alpha, rho) { TrainAlpha = staticPhase, Lambda = 10 };
        for (int step = 0; step < 7; step++)
        {
            bool report = step == 3;
            double lf = fused.Step(DynamicBernoulliEngine.SampleBatch(streams, o, table, ref rf, staticPhase), 0.01, report);
            double ls = twoCall.ComputeLossAndGradients(DynamicBernoulliEngine.SampleBatch(streams, o, table, ref rs, staticPhase), report);
            twoCall.AdamStep(0.01);
            if (report)
                Assert.AreEqual(ls, lf, "the reporting step's loss");
        }
        CollectionAssert.AreEqual(twoCall.Rho, fused.Rho, "ρ after 7 steps");
        CollectionAssert.AreEqual(twoCall.Alpha, fused.Alpha, "α after 7 steps");
        Assert.IsTrue(twoCall.Rho.Zip(rho).Any(p => p.First != p.Second), "the steps moved ρ");
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void LikelihoodKernelGivesTheTensorPrimitivesBits(bool trainAlpha)
    {
        // The engine's one-loop element-wise kernel against the TensorPrimitives calls it replaced (Add for σ and α's
        // gradient, MultiplyAdd for the gradient rows, Dot for η), written out here as the reference: with no prior
        // (λ₀ = λ = 0) the gradients are the likelihood's alone, and must be the same bits on one machine.
        const int v = 400, k = 24, t = 3; // 24: vector parts and a scalar tail
        var rng = new SplitMix64(21);
        var alpha = Enumerable.Range(0, v * k).Select(_ => (float)(rng.NextGaussian() / 3)).ToArray();
        var rho = Enumerable.Range(0, t * v * k).Select(_ => (float)(rng.NextGaussian() / 3)).ToArray();
        var streams = Enumerable.Range(0, t).Select(_ => Enumerable.Range(0, 500).Select(_ => rng.NextInt(v)).ToArray()).ToArray();
        var o = Options();
        o.PriorPrecision = 0;
        o.BatchFraction = 0.2;
        var r = new SplitMix64(4);
        var batch = DynamicBernoulliEngine.SampleBatch(streams, o, Enumerable.Range(0, v).ToArray(), ref r, staticPhase: false);
        using var engine = new DynamicBernoulliEngine(v, k, t, o, alpha, rho) { TrainAlpha = trainAlpha, Lambda = 0 };
        engine.ComputeLossAndGradients(batch, withPriorValue: false);

        var gRho = new float[rho.Length];
        var gAlpha = new float[alpha.Length];
        var sigma = new float[k];
        var gSigma = new float[k];
        foreach (var b in batch)
        {
            int n = b.Targets.Length, cs = b.Contexts.Length / n, ns = b.Negatives.Length / n;
            float scale = (float)b.Scale;
            for (int i = 0; i < n; i++)
            {
                Array.Clear(sigma);
                for (int c = 0; c < cs; c++)
                    TensorPrimitives.Add(sigma, alpha.AsSpan((int)(b.Contexts[i * cs + c] * k), k), sigma);
                Array.Clear(gSigma);
                for (int q = -1; q < ns; q++)
                {
                    long w = q < 0 ? b.Targets[i] : b.Negatives[i * ns + q];
                    var row = rho.AsSpan((int)((b.Slice * v + w) * k), k);
                    float eta = TensorPrimitives.Dot(row, sigma);
                    float x = q < 0 ? eta : -eta, e = MathF.Exp(-Math.Abs(x));
                    float g = (q < 0 ? -scale : scale) * (x >= 0 ? e / (1 + e) : 1 / (1 + e));
                    TensorPrimitives.MultiplyAdd(row, g, gSigma, gSigma);
                    var gr = gRho.AsSpan((int)((b.Slice * v + w) * k), k);
                    TensorPrimitives.MultiplyAdd(sigma, g, gr, gr);
                }
                for (int c = 0; c < cs; c++)
                {
                    var ga = gAlpha.AsSpan((int)(b.Contexts[i * cs + c] * k), k);
                    TensorPrimitives.Add(ga, gSigma, ga);
                }
            }
        }
        CollectionAssert.AreEqual(gRho, engine.GradRho, "ρ's likelihood gradient");
        if (trainAlpha)
            CollectionAssert.AreEqual(gAlpha, engine.GradAlpha, "α's likelihood gradient");
        Assert.IsTrue(gRho.Any(x => x != 0), "the minibatch has a gradient");
    }

    [TestMethod]
    [DataRow(DriftRegularizer.RandomWalk, 1, 16)]
    [DataRow(DriftRegularizer.RandomWalk, 2, 20)]
    [DataRow(DriftRegularizer.HardShrink, 2, 20)]
    [DataRow(DriftRegularizer.GroupLasso, 2, 16)] // not grouped: the steps one by one
    public void GroupedStepsGiveTheBitsOfStepsOneByOne(DriftRegularizer reg, int threads, int k)
    {
        // The dynamic phase's groups (every step of a block of words before the next block: η from the block's current
        // rows, gradient rows, prior and Adam in one kernel with each step's bias corrections) against the two-call form
        // step after step, over groups of 3, 1, 5 and 2 steps: the same operations on every element in the same order,
        // so bit identity on one machine.
        const int v = 1200, t = 3;
        var rng = new SplitMix64(12);
        var alpha = Enumerable.Range(0, v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        var rho = Enumerable.Range(0, t * v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        var streams = Enumerable.Range(0, t).Select(s => Enumerable.Range(0, 2000 + 900 * s).Select(_ => rng.NextInt(v)).ToArray()).ToArray();
        var table = Enumerable.Range(0, v / 2).ToArray(); // half the words are never negatives
        var o = Options(reg);
        o.Threads = threads;
        o.BatchFraction = 0.05;
        o.HardShrinkThreshold = 1e-3;
        using var grouped = new DynamicBernoulliEngine(v, k, t, o, alpha, rho) { TrainAlpha = false, Lambda = 10 };
        using var single = new DynamicBernoulliEngine(v, k, t, o, alpha, rho) { TrainAlpha = false, Lambda = 10 };
        var r = new SplitMix64(5);
        int alongside = 0;
        foreach (int size in new[] { 3, 1, 5, 2 })
        {
            var batches = Enumerable.Range(0, size).Select(_ => (IReadOnlyList<DbeSliceBatch>)DynamicBernoulliEngine.SampleBatch(streams, o, table, ref r, staticPhase: false)).ToList();
            grouped.Steps(batches, 0.01, () => Interlocked.Increment(ref alongside));
            foreach (var batch in batches)
            {
                single.ComputeLossAndGradients(batch, withPriorValue: false); // the reference: the two-call form
                single.AdamStep(0.01);
            }
        }
        Assert.AreEqual(4, alongside, "the work alongside runs once per group");
        CollectionAssert.AreEqual(single.Rho, grouped.Rho, "ρ after 11 steps");
        Assert.IsTrue(single.Rho.Zip(rho).Any(p => p.First != p.Second), "the steps moved ρ");
    }

    [TestMethod]
    public void FitGivesTheSameBitsInGroupsAndReportingStepsAsOneByOne()
    {
        // Fit with the dynamic phase in groups of 8 (the default is 4), with and without progress reports (a reporting step
        // runs alone and cuts a group), against groups of 1: the same minibatches drawn in the same order, the same ρ.
        var rng = new SplitMix64(21);
        string[] words = Enumerable.Range(0, 300).Select(i => $"w{i}").ToArray();
        var sentences = Enumerable.Range(0, 900).Select(i => (Slice: i % 3, Tokens: Enumerable.Range(0, 12).Select(_ => words[(int)Math.Min(299, Math.Abs(rng.NextGaussian()) * 60)]).ToArray())).ToList();
        var corpus = DiachronicCorpus.Build(sentences, 3, 0, 1, minCount: 2, maxVocabulary: 0);
        float[][] Fit(int group, bool progress)
        {
            int before = DynamicBernoulliEngine.GroupSteps;
            DynamicBernoulliEngine.GroupSteps = group;
            try
            {
                var o = new DiachronicEmbeddingsOptions
                {
                    Model = DiachronicModel.DynamicBernoulli, Dimensions = K, StaticSteps = 7, DynamicSteps = 61, BatchFraction = 0.05,
                    Progress = progress ? new Progress<DiachronicProgress>() : null,
                };
                return DynamicBernoulliEngine.Fit(corpus, o).Vectors;
            }
            finally
            {
                DynamicBernoulliEngine.GroupSteps = before;
            }
        }
        var one = Fit(1, progress: false);
        for (int t = 0; t < 3; t++)
        {
            CollectionAssert.AreEqual(one[t], Fit(8, progress: false)[t], $"slice {t}, groups of 8");
            CollectionAssert.AreEqual(one[t], Fit(8, progress: true)[t], $"slice {t}, groups of 8 cut by the reporting steps");
        }
    }

    [TestMethod]
    public void ReusedBatchArraysHoldTheSameDraws()
    {
        // Fit draws each minibatch into the arrays of the batch before last: the same ids and the same generator state
        // as fresh arrays, and the arrays are really reused.
        var rng = new SplitMix64(3);
        var streams = Enumerable.Range(0, 3).Select(t => Enumerable.Range(0, 800 + 300 * t).Select(_ => rng.NextInt(50)).ToArray()).ToArray();
        var table = Enumerable.Range(0, 50).ToArray();
        var o = Options();
        o.BatchFraction = 0.1;
        var (fresh, reusing) = (new SplitMix64(8), new SplitMix64(8));
        List<DbeSliceBatch>? spare = null;
        for (int step = 0; step < 4; step++)
        {
            var a = DynamicBernoulliEngine.SampleBatch(streams, o, table, ref fresh, staticPhase: false);
            var b = DynamicBernoulliEngine.SampleBatch(streams, o, table, ref reusing, staticPhase: false, spare);
            Assert.HasCount(a.Count, b);
            for (int j = 0; j < a.Count; j++)
            {
                CollectionAssert.AreEqual(a[j].Targets, b[j].Targets, $"step {step} slice {j}: targets");
                CollectionAssert.AreEqual(a[j].Contexts, b[j].Contexts, $"step {step} slice {j}: contexts");
                CollectionAssert.AreEqual(a[j].Negatives, b[j].Negatives, $"step {step} slice {j}: negatives");
                if (spare is not null)
                    Assert.AreSame(spare[j].Negatives, b[j].Negatives, "the spare batch's arrays are filled again");
            }
            Assert.AreEqual(fresh.Next(), reusing.Next(), "generator state");
            spare = b;
        }
    }

    [TestMethod]
    public void DotGivesTheBitsOfTensorPrimitives()
    {
        // The likelihood's inlined dot product against TensorPrimitives.Dot, every length from 1 to 160 (the inlined form
        // covers 16..128 with 512-bit vectors, the rest calls TensorPrimitives), values of mixed signs and magnitudes so
        // that the order of the additions shows in the last bits: identical bits on the machine the test runs on.
        var r = new Random(5);
        for (int n = 1; n <= 160; n++)
        {
            for (int trial = 0; trial < 40; trial++)
            {
                var x = Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * Math.Pow(10, r.Next(-3, 4)))).ToArray();
                var y = Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * Math.Pow(10, r.Next(-3, 4)))).ToArray();
                float expected = TensorPrimitives.Dot(x, y), actual = DynamicBernoulliEngine.Dot(x, y);
                Assert.AreEqual(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(actual), $"n = {n}, trial {trial}: {expected} vs {actual}");
            }
        }
    }

    private static double RelativeError(float[] analytic, double[] numeric)
    {
        double num = 0, den = 0;
        for (int i = 0; i < numeric.Length; i++)
        {
            num += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
            den += numeric[i] * numeric[i];
        }
        return Math.Sqrt(num / Math.Max(den, 1e-30));
    }
}
