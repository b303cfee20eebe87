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
