using Allauzen.ML.Diachronic;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Diachronic;

/// <summary>Limits of the drift prior, monotonicity in λ, and invariance to scaling data and priors together.</summary>
[TestClass]
public sealed class DynamicBernoulliPriorTests
{
    private static DiachronicEmbeddingsTransformer Fit(IEnumerable<SlicedSentence> corpus, Action<DiachronicEmbeddingsOptions> set)
    {
        var ml = new MLContext(seed: 1);
        var o = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        set(o);
        return ml.Transforms.Text.DiachronicEmbeddings(o).Fit(DiachronicTestData.ToDataView(ml, corpus));
    }

    [TestMethod]
    public void HugeDriftPrecisionFreezesTheSlices()
    {
        var corpus = DiachronicTestData.Synthetic(4, 150, seed: 1);
        using var stiff = Fit(corpus, o => o.DriftPrecision = 1e9);
        using var loose = Fit(corpus, o => o.DriftPrecision = 1);
        double maxStiff = stiff.GetDriftRanking(0, 3, 1, DriftMeasure.Cosine).Max(x => x.Drift);
        double maxLoose = loose.GetDriftRanking(0, 3, 1, DriftMeasure.Cosine).Max(x => x.Drift);
        Assert.IsLessThan(1e-4, maxStiff, "λ → ∞: slices must stay (almost) identical");
        Assert.IsGreaterThan(1e-2, maxLoose, "λ = 1 lets words drift");
    }

    /// <summary>
    /// The dynamic model ranks by its default measure, ‖ρ_to − ρ_from‖² / H^{1/4} with H = n_from·n_to / (n_from + n_to) from
    /// the slice counts: recomputed here in double from the public vectors and counts (the transformer also sums in double,
    /// so only the last-digit rounding of the power differs: relative tolerance 1e-9).
    /// </summary>
    [TestMethod]
    public void DefaultRankingIsTheEvidenceScaledSquaredDistance()
    {
        using var m = Fit(DiachronicTestData.Synthetic(3, 120, seed: 3), _ => { });
        Assert.AreEqual(DriftMeasure.ScaledSquaredEuclidean, m.DefaultDriftMeasure);
        var ranking = m.GetDriftRanking(0, 2, 1);
        Assert.IsGreaterThan(10, ranking.Count);
        Assert.IsTrue(ranking.Zip(ranking.Skip(1)).All(p => p.First.Drift >= p.Second.Drift), "sorted by decreasing drift");
        foreach (var (word, drift) in ranking)
        {
            var a = m.GetVector(word, 0)!;
            var b = m.GetVector(word, 2)!;
            double sq = a.Zip(b).Sum(p => (double)(p.First - p.Second) * (p.First - p.Second));
            double na = m.GetCount(word, 0), nb = m.GetCount(word, 2);
            double expected = sq / Math.Pow(Math.Max(1, na * nb / (na + nb)), 0.25);
            Assert.AreEqual(expected, drift, 1e-9 * expected, word);
        }
    }

    [TestMethod]
    public void ZeroDriftPrecisionGivesIndependentSliceFits()
    {
        var ml = new MLContext(seed: 1);
        var o = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        var corpus = DiachronicEmbeddingsEstimator.ReadCorpus(DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(2, 100, seed: 2)), o);
        int v = corpus.VocabularySize, k = o.Dimensions;
        var rng = new SplitMix64(7);
        var alpha = Enumerable.Range(0, v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        var rho = Enumerable.Range(0, 2 * v * k).Select(_ => (float)(rng.NextGaussian() / k)).ToArray();
        var table = SkipGramEngine.BuildNegativeTable(corpus.TotalCounts);
        var batches = Enumerable.Range(0, 30).Select(_ => DynamicBernoulliEngine.SampleBatch(corpus.Tokens, o, table, ref rng, staticPhase: false)).ToList();

        using var joint = new DynamicBernoulliEngine(v, k, 2, o, alpha, rho) { TrainAlpha = false, Lambda = 0 };
        var independentOptions = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        independentOptions.PriorPrecision = 0;
        using var alone = new DynamicBernoulliEngine(v, k, 1, independentOptions, alpha, rho[(v * k)..]) { TrainAlpha = false, Lambda = 0 };
        foreach (var b in batches)
        {
            joint.ComputeLossAndGradients(b, withPriorValue: false);
            joint.AdamStep(o.DynamicLearningRate);
            alone.ComputeLossAndGradients([b[1] with { Slice = 0 }], withPriorValue: false);
            alone.AdamStep(o.DynamicLearningRate);
        }
        var jointRho1 = joint.Rho[(v * k)..];
        var aloneRho = alone.Rho;
        Assert.IsGreaterThan(1e-3, jointRho1.Zip(rho[(v * k)..]).Max(p => Math.Abs(p.First - p.Second)), "the fit moved ρ_1");
        Assert.IsLessThan(1e-6, jointRho1.Zip(aloneRho).Max(p => Math.Abs(p.First - p.Second)), "λ = 0: slice 1 of the joint fit equals its independent fit");
    }

    [TestMethod]
    public void MeanDriftDecreasesMonotonicallyWithDriftPrecision()
    {
        var corpus = DiachronicTestData.Synthetic(4, 150, seed: 3);
        var drifts = new List<double>();
        foreach (double lambda in new[] { 1e2, 1e3, 1e4, 1e5 })
        {
            using var m = Fit(corpus, o => o.DriftPrecision = lambda);
            drifts.Add(DiachronicTestData.MeanDrift(m));
        }
        for (int i = 1; i < drifts.Count; i++)
            Assert.IsLessThan(drifts[i - 1], drifts[i], $"mean drift must decrease with λ: {string.Join(", ", drifts.Select(d => d.ToString("E2")))}");
    }

    [TestMethod]
    public void DoublingTheDataAndThePriorsKeepsTheDriftRanking()
    {
        // every slice's stream repeated twice (N_t × 2), built at the corpus level: the reader orders sentences
        // canonically, so duplicated rows would be interleaved rather than the stream repeated
        var ml = new MLContext(seed: 1);
        var o = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        var corpus = DiachronicEmbeddingsEstimator.ReadCorpus(DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(4, 120, seed: 4)), o);
        var doubled = new DiachronicCorpus(corpus.Words, corpus.SliceCounts.Select(c => c.Select(n => 2 * n).ToArray()).ToArray(),
            corpus.Tokens.Select(s => s.Concat(s).ToArray()).ToArray(),
            corpus.Tokens.Zip(corpus.SentenceEnds, (s, e) => e.Concat(e.Select(x => x + s.Length)).ToArray()).ToArray(),
            corpus.Origin, corpus.Width);
        DiachronicEmbeddingsTransformer Fit(DiachronicCorpus c, double lambda, double lambda0)
        {
            var options = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
            options.BatchFraction = 1;
            options.StaticSteps = 150;
            options.DynamicSteps = 150;
            options.DynamicLearningRate = 1e-2; // the test compares optima: the larger step converges in 150 steps
            options.DriftPrecision = lambda;
            options.PriorPrecision = lambda0;
            return new DiachronicEmbeddingsTransformer(ml, options, c.Words, c.SliceCounts, DiachronicEmbeddingsEstimator.Train(c, options), c.Origin, c.Width);
        }
        using var once = Fit(corpus, 5, 1);
        using var twice = Fit(doubled, 10, 2);
        double rho = DiachronicTestData.Spearman(once.GetDriftRanking(0, 3, 1), twice.GetDriftRanking(0, 3, 1));
        Assert.IsGreaterThan(0.95, rho, "Spearman of the drift rankings");
    }

    [TestMethod]
    [DataRow(64)]
    [DataRow(100)]
    [DataRow(5)]
    public void RandomWalkPriorFusedGivesThePassesBits(int k)
    {
        // The fused random-walk gradient against the TensorPrimitives passes it replaced (subtract, then two separately
        // rounded multiply-adds), three slices in a row as the engine runs them: bit identity on one machine.
        var r = new Random(k);
        float[] Rand(int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * scale)).ToArray();
        const int slices = 3;
        var rho = Rand(slices * k, 2);
        var g1 = Rand(slices * k, 1e-2);
        var g2 = (float[])g1.Clone();
        var d = new float[k];
        const float lam = 37.5f;
        for (int t = 1; t < slices; t++)
        {
            DynamicBernoulliEngine.RandomWalkGradient(rho.AsSpan(t * k, k), rho.AsSpan((t - 1) * k, k), g1.AsSpan(t * k, k), g1.AsSpan((t - 1) * k, k), lam);
            System.Numerics.Tensors.TensorPrimitives.Subtract(rho.AsSpan(t * k, k), rho.AsSpan((t - 1) * k, k), d);
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(d, lam, g2.AsSpan(t * k, k), g2.AsSpan(t * k, k));
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(d, -lam, g2.AsSpan((t - 1) * k, k), g2.AsSpan((t - 1) * k, k));
        }
        for (int i = 0; i < g1.Length; i++)
            Assert.AreEqual(BitConverter.SingleToInt32Bits(g2[i]), BitConverter.SingleToInt32Bits(g1[i]), $"element {i}");
    }
}
