using Allauzen.ML.Diachronic;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Diachronic;

/// <summary>
/// The CI-sized drift-injection benchmark on the shipped slice of the Debian-changelog corpus
/// (Data/debian-changelogs-ci.tsv.gz: every 4th sentence of 1999–2022, 684 k tokens): 3 slices of 8 years, shuffled
/// chronology, K = 5 frequency-matched pairs swapped with p = 0, 0.5, 1, words ranked by first-last cosine drift.
/// Random ranking: 10 / ~1070 eligible words ≈ 0.01. The published shuffled-chronology figures (full corpus, 6 slices,
/// K = 10: incremental SGNS with whole-corpus init 0.95, independent SGNS + Procrustes 0.85, dynamic Bernoulli
/// λ = 10 / 100 0.90 / 1.00) are not all reached on this quarter-size corpus; the thresholds below are the CI-size
/// measurements (one thread, so deterministic on a machine: incremental 0.80, aligned with 10 epochs 0.70, dynamic
/// Bernoulli λ = 10 0.50) minus 0.1, far above chance, and the uninjected control stays at most 0.15 (published 0.00,
/// measured 0.10). On the full frozen corpus (published setting) the incremental model reaches 0.90.
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

    private static double PrecisionAt2K(IEnumerable<SlicedSentence> data, DiachronicEmbeddingsOptions o, IReadOnlySet<string> gold, int minCount)
    {
        var ml = new MLContext(seed: 1);
        o.TokensColumnName = nameof(SentenceRow.Tokens);
        o.TimeColumnName = nameof(SentenceRow.Slice);
        using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(DiachronicTestData.ToDataView(ml, data));
        var ranking = m.GetDriftRanking(0, 2, minCount).Where(x => x.Word.Length > 2).Select(x => x.Word).ToList();
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
        DriftPrecision = 10, StaticSteps = 300, DynamicSteps = 400, Seed = 0,
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
    }

    [TestMethod]
    public void IncrementalSkipGramFindsTheInjectedWords()
    {
        var (_, inj, minCount) = Corpus();
        double p = PrecisionAt2K(inj.Sentences, Incremental(), inj.Gold, minCount);
        Assert.IsGreaterThanOrEqualTo(0.7, p, "P@2K, incremental SGNS, whole-corpus init");
    }

    [TestMethod]
    public void AlignedSkipGramFindsTheInjectedWords()
    {
        var (_, inj, minCount) = Corpus();
        double p = PrecisionAt2K(inj.Sentences, Aligned(), inj.Gold, minCount);
        Assert.IsGreaterThanOrEqualTo(0.6, p, "P@2K, independent SGNS + Procrustes");
    }

    [TestMethod]
    public void DynamicBernoulliFindsTheInjectedWords()
    {
        var (_, inj, minCount) = Corpus();
        double p = PrecisionAt2K(inj.Sentences, Dynamic(), inj.Gold, minCount);
        Assert.IsGreaterThanOrEqualTo(0.4, p, "P@2K, dynamic Bernoulli embeddings");
    }

    [TestMethod]
    public void UninjectedControlDoesNotRankTheGoldWordsFirst()
    {
        var (sentences, inj, minCount) = Corpus();
        double p = PrecisionAt2K(sentences, Aligned(epochs: 5), inj.Gold, minCount);
        Assert.IsLessThanOrEqualTo(0.15, p, "P@2K of the uninjected real chronology against the injected gold list");
    }
}
