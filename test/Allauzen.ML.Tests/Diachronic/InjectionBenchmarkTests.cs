using Allauzen.ML.Diachronic;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Diachronic;

/// <summary>
/// The CI-sized drift-injection benchmark on the shipped slice of the Debian-changelog corpus
/// (Data/debian-changelogs-ci.tsv.gz: every 4th sentence of 1999–2022, 684 k tokens): 3 slices of 8 years, shuffled
/// chronology, K = 5 frequency-matched pairs swapped with p = 0, 0.5, 1, words ranked by first-last drift (cosine; for the dynamic model its default measure, the squared Euclidean distance scaled by the slice counts).
/// Every detector ranks the recipe's eligible words (≥ 15 occurrences in every slice before the swaps). Random ranking:
/// 10 / 1069 ≈ 0.01. This is the notes' CI-sized variant (P@2K = P@10); its reference figures, gensim on the same
/// injected corpus (test/Allauzen.ML.Benchmarks/Diachronic/gensim_injection.py, seeds 1 and 2), are incremental SGNS
/// with whole-corpus init 0.80 and independent SGNS + Procrustes (5 epochs) 0.40. Measured here (one thread, so
/// deterministic on a machine): incremental 0.80, aligned with 10 epochs 0.70–0.80, dynamic Bernoulli (K = 50,
/// V ≤ 5000, λ = 30, Adam lr 1e-2 then 1e-3) 0.70 and at its defaults (K = 64: 150 + 800 steps) 0.70 (2026-12-06, scaled
/// squared Euclidean ranking; DBE seeds 2 / 3 at the defaults: 0.70 / 0.80; sentences of a slice in canonical order); the
/// thresholds are these minus 0.1 (0.5 for the notes' setting, whose seeds ranged 0.3–0.5 under the cosine ranking), far above chance, and the uninjected control (ranking the words eligible in its own
/// corpus) stays at most 0.15 (published 0.00, gensim here 0.00, measured 0.10). On the full frozen corpus with the
/// published pairs the incremental model reaches 0.95 (published 0.95) and the dynamic model at its defaults 0.95, the
/// maximum (published 1.00; docs/results/diachronic-dbe.md).
/// The model runs (5–8 s each on a quiet machine; the dynamic model at its defaults about 1.4× that since its 800 dynamic steps) are acceptance-sized: [TestCategory("Slow")], outside the default test run.
/// </summary>
[TestClass]
public sealed class InjectionBenchmarkTests
{
    private static List<SlicedSentence>? s_sentences;
    private static InjectionResult? s_injected;
    private static int s_minCount;

    private static (List<SlicedSentence> Sentences, InjectionResult Injected, int MinCount) Corpus()
    {
        if (s_injected is null)
        {
            s_sentences = DatedCorpus.Bin(DatedCorpus.ReadTsv(DiachronicTestData.CiCorpusPath), 1999, 8, 3);
            long tokens = s_sentences.Sum(s => (long)s.Tokens.Length);
            // 30 occurrences per slice on the full corpus (≈ 450 k tokens per slice), scaled to this slice size
            s_minCount = (int)Math.Round(30 * tokens / 3.0 / 450_000);
            s_injected = DriftInjection.Inject(s_sentences, 3, pairs: 5, t0: 1, t1: 2, minCount: s_minCount, shuffle: true, seed: 0);
        }
        return (s_sentences!, s_injected, s_minCount);
    }

    /// <summary>
    /// P@2K of the gold words of <paramref name="injected"/> when the model fitted on <paramref name="data"/> ranks the
    /// eligible words of <paramref name="corpus"/> (the recipe's step 2: ≥ minCount in every slice of the corpus before the
    /// swaps; the injected corpus for the detectors, the uninjected one for the control).
    /// </summary>
    private static double PrecisionAt2K(IEnumerable<SlicedSentence> data, DiachronicEmbeddingsOptions o, InjectionResult injected, InjectionResult corpus)
    {
        var gold = injected.Gold;
        var eligible = corpus.Eligible.ToHashSet(StringComparer.Ordinal);
        var ml = new MLContext(seed: 1);
        o.TokensColumnName = nameof(SentenceRow.Tokens);
        o.TimeColumnName = nameof(SentenceRow.Slice);
        using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(DiachronicTestData.ToDataView(ml, data));
        var ranking = m.GetDriftRanking(0, 2, 1).Where(x => eligible.Contains(x.Word)).Select(x => x.Word).ToList();
        Assert.AreEqual(eligible.Count, ranking.Count, "every eligible word has a vector in the first and the last slice");
        double p = DriftInjection.PrecisionAtK(ranking, gold, gold.Count);
        Console.WriteLine($"{o.Model}: P@{gold.Count} = {p:F2}, AP = {DriftInjection.AveragePrecision(ranking, gold):F2}");
        return p;
    }

    internal static DiachronicEmbeddingsOptions Incremental() => new()
    {
        Model = DiachronicModel.IncrementalSkipGram, Initialization = DiachronicInitialization.WholeCorpus,
        Dimensions = 50, Epochs = 5, InitEpochs = 5, Seed = 1, Threads = 1,
    };

    internal static DiachronicEmbeddingsOptions Aligned(int epochs = 10) => new()
    {
        Model = DiachronicModel.AlignedSkipGram, Initialization = DiachronicInitialization.Random,
        Dimensions = 50, Epochs = epochs, Seed = 1, Threads = 1,
    };

    internal static DiachronicEmbeddingsOptions Dynamic() => new()
    {
        Model = DiachronicModel.DynamicBernoulli, Dimensions = 50, MaxVocabularySize = 5000, Subsampling = 1e-3,
        DriftPrecision = 30, StaticSteps = 300, DynamicSteps = 400, Seed = 0,
    };

    [TestMethod]
    public void InjectionPicksFrequencyMatchedPairsAndSwapsThemFromT0()
    {
        var (original, inj, minCount) = Corpus();
        Assert.AreEqual(5, inj.Pairs.Count);
        Assert.IsGreaterThan(500, inj.Eligible.Count);
        var counts = original.SelectMany(s => s.Tokens).GroupBy(t => t).ToDictionary(g => g.Key, g => g.Count());
        var swappedSlice0 = inj.Sentences.Where(s => s.Slice == 0).SelectMany(s => s.Tokens).Count(inj.Gold.Contains);
        var originalSlice0 = original.Select((s, i) => (s, i)).Where(x => inj.Sentences[x.i].Slice == 0).SelectMany(x => x.s.Tokens).Count(inj.Gold.Contains);
        Assert.AreEqual(originalSlice0, swappedSlice0, "no swaps before t0");
        int changedLast = inj.Sentences.Zip(original).Count(p => p.First.Slice == 2 && !p.First.Tokens.SequenceEqual(p.Second.Tokens));
        Assert.IsGreaterThan(0, changedLast, "the last slice is swapped");
        foreach (var (a, b) in inj.Pairs)
        {
            Assert.IsLessThan(0.15, Math.Abs(Math.Log(counts[a]) - Math.Log(counts[b])), $"{a}/{b} are frequency-matched");
            Assert.IsTrue(inj.Eligible.Skip(100).Contains(a) && inj.Eligible.Skip(100).Contains(b));
        }
        var control = DriftInjection.Inject(Corpus().Sentences, 3, pairs: 5, t0: 1, t1: 2, minCount: minCount, none: true, seed: 0);
        Assert.IsTrue(control.Sentences.Zip(Corpus().Sentences).All(p => ReferenceEquals(p.First.Tokens, p.Second.Tokens)), "--none leaves the corpus as is");
        // a fixed pair list (the notes' published *.pairs.tsv) is swapped as given
        var fixedRun = DriftInjection.Inject(original, 3, t0: 1, t1: 2, minCount: minCount, seed: 0, fixedPairs: [("fix", "upload")]);
        Assert.AreEqual(1, fixedRun.Pairs.Count);
        Assert.AreEqual(("fix", "upload"), fixedRun.Pairs[0]);
        int fixBefore = original.Where(x => x.Slice == 2).Sum(x => x.Tokens.Count(t => t == "upload"));
        int fixAfter = fixedRun.Sentences.Where(x => x.Slice == 2).Sum(x => x.Tokens.Count(t => t == "fix"));
        Assert.AreEqual(fixBefore, fixAfter, "p = 1 in the last slice: every 'upload' became 'fix'");
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void IncrementalSkipGramFindsTheInjectedWords()
    {
        var (_, inj, _) = Corpus();
        double p = PrecisionAt2K(inj.Sentences, Incremental(), inj, inj);
        Assert.IsGreaterThanOrEqualTo(0.7, p, "P@2K, incremental SGNS, whole-corpus init");
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void AlignedSkipGramFindsTheInjectedWords()
    {
        var (_, inj, _) = Corpus();
        double p = PrecisionAt2K(inj.Sentences, Aligned(), inj, inj);
        Assert.IsGreaterThanOrEqualTo(0.7, p, "P@2K, independent SGNS + Procrustes");
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void DynamicBernoulliFindsTheInjectedWords()
    {
        var (_, inj, _) = Corpus();
        double p = PrecisionAt2K(inj.Sentences, Dynamic(), inj, inj);
        Assert.IsGreaterThanOrEqualTo(0.5, p, "P@2K, dynamic Bernoulli embeddings");
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void DynamicBernoulliAtItsDefaultsFindsTheInjectedWords()
    {
        var (_, inj, _) = Corpus();
        double p = PrecisionAt2K(inj.Sentences, new DiachronicEmbeddingsOptions { Model = DiachronicModel.DynamicBernoulli, Dimensions = 64 }, inj, inj);
        Assert.IsGreaterThanOrEqualTo(0.6, p, "P@2K, dynamic Bernoulli embeddings at the default options (K = 64)");
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void UninjectedControlDoesNotRankTheGoldWordsFirst()
    {
        var (sentences, inj, minCount) = Corpus();
        var control = DriftInjection.Inject(sentences, 3, pairs: 5, t0: 1, t1: 2, minCount: minCount, none: true, seed: 0);
        double p = PrecisionAt2K(sentences, Aligned(epochs: 5), inj, control);
        Assert.IsLessThanOrEqualTo(0.15, p, "P@2K of the uninjected real chronology against the injected gold list");
    }
}
