using Allauzen.ML.Diachronic;
using BenchmarkDotNet.Attributes;
using Microsoft.ML;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Skip-gram with negative sampling on the CI slice of the Debian-changelog corpus (Data/debian-changelogs-ci.tsv.gz,
/// 61,502 sentences, 684,487 tokens, V = 9,831 at min count 5), one epoch, gensim's settings (K 100, window 5,
/// 5 negatives, subsampling 1e-3): words/s = 684,487 / mean time. Baseline: word2vec's per-pair updates on one thread;
/// then the default window-batched updates (<see cref="SkipGramUpdate"/>) on one and two threads. gensim (Debian
/// python3-gensim, workers=2) is measured back to back with <c>/usr/bin/python3
/// test/Allauzen.ML.Benchmarks/Diachronic/gensim_sgns_speed.py src/Allauzen.ML.Samples/Data/debian-changelogs-ci.tsv.gz 1 2</c>. Also one Adam step of the dynamic Bernoulli model
/// (T = 3, V = 5000, K = 50, 1 % of every slice).
/// </summary>
[MemoryDiagnoser]
public class DiachronicBenchmarks
{
    private DiachronicCorpus _corpus = null!;
    private DiachronicCorpus _sliced = null!;
    private SkipGramEngine _engine = null!;
    private DynamicBernoulliEngine _dbe = null!;
    private int[][] _streams = null!;
    private int[] _table = null!;
    private DiachronicEmbeddingsOptions _dbeOptions = null!;
    private SplitMix64 _rng = new(1);

    [GlobalSetup]
    public void Setup()
    {
        var ml = new MLContext(seed: 1);
        string path = Path.Combine(AppContext.BaseDirectory, "Data", "debian-changelogs-ci.tsv.gz");
        var dated = DatedCorpus.ReadTsv(path).ToList();
        var whole = dated.Select(s => (0, s.Tokens)).ToList();
        _corpus = DiachronicCorpus.Build(whole, 1, 0, 1, minCount: 5, maxVocabulary: 0);
        _engine = new SkipGramEngine(_corpus.VocabularySize, 100);
        _engine.InitRows(0, _corpus.VocabularySize, 1);

        var sliced = DatedCorpus.Bin(dated, 1999, 8, 3).Select(s => (s.Slice, s.Tokens)).ToList();
        _sliced = DiachronicCorpus.Build(sliced, 3, 0, 1, minCount: 5, maxVocabulary: 5000);
        _dbeOptions = new DiachronicEmbeddingsOptions { Dimensions = 50, Subsampling = 1e-3 };
        int v = _sliced.VocabularySize;
        var rng = new SplitMix64(2);
        _streams = DynamicBernoulliEngine.Subsample(_sliced, 1e-3, ref rng);
        _table = SkipGramEngine.BuildNegativeTable(_sliced.TotalCounts);
        var alpha = Enumerable.Range(0, v * 50).Select(_ => (float)(rng.NextGaussian() / 50)).ToArray();
        var rho = Enumerable.Range(0, 3 * v * 50).Select(_ => (float)(rng.NextGaussian() / 50)).ToArray();
        _dbe = new DynamicBernoulliEngine(v, 50, 3, _dbeOptions, alpha, rho) { TrainAlpha = false, Lambda = 100 };
    }

    [GlobalCleanup]
    public void Cleanup() => _dbe.Dispose();

    private double Train(int threads, SkipGramUpdate update)
    {
        var (tokens, ends) = _corpus.Whole();
        _engine.Update = update;
        var stats = _engine.Train(tokens, ends, _corpus.TotalCounts, 1, 0.025, 1e-4, 5, 5, 1e-3, threads, 7);
        return stats.RawWordsPerSecond;
    }

    [Benchmark(Baseline = true)]
    public double SkipGramEpochPerPairOneThread() => Train(1, SkipGramUpdate.PerPair);

    [Benchmark]
    public double SkipGramEpochPerPairTwoThreads() => Train(2, SkipGramUpdate.PerPair);

    [Benchmark]
    public double SkipGramEpochOneThread() => Train(1, SkipGramUpdate.Window);

    [Benchmark]
    public double SkipGramEpochTwoThreads() => Train(2, SkipGramUpdate.Window);

    [Benchmark]
    public double DynamicBernoulliStep()
    {
        var batch = DynamicBernoulliEngine.SampleBatch(_streams, _dbeOptions, _table, ref _rng, staticPhase: false);
        double loss = _dbe.ComputeLossAndGradients(batch, withPriorValue: false);
        _dbe.AdamStep(1e-2);
        return loss;
    }
}
