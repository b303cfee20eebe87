using Allauzen.ML.Diachronic;
using BenchmarkDotNet.Attributes;
using Microsoft.ML;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Issue 21's time target: a whole <c>Fit</c> of the dynamic Bernoulli model at its defaults against the incremental
/// skip-gram (baseline) on the injection case of the diachronic sample (the CI corpus, Data/debian-changelogs-ci.tsv.gz,
/// in 3 slices of 8 years from 1999, shuffled chronology, 6 swapped pairs, injection seed 4, K = 64; the incremental
/// model with the sample's settings: whole-corpus initialisation, 5 epochs). The same as
/// <c>diachronic --skip-real true --pairs 6 --bench-dims 64 --inject-seed 4 --models incremental,dbe-default</c>.
/// </summary>
[MemoryDiagnoser]
public class DiachronicFitBenchmarks
{
    private MLContext _ml = null!;
    private IDataView _data = null!;

    /// <summary>A sentence of the injected corpus.</summary>
    public sealed class Row
    {
        public string[] Tokens { get; set; } = [];

        public int Slice { get; set; }
    }

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        string path = Path.Combine(AppContext.BaseDirectory, "Data", "debian-changelogs-ci.tsv.gz");
        var sentences = DatedCorpus.Bin(DatedCorpus.ReadTsv(path).ToList(), 1999, 8, 3);
        long tokens = sentences.Sum(s => (long)s.Tokens.Length);
        int minCount = Math.Max(5, (int)Math.Round(30 * tokens / 3.0 / 450_000));
        var injected = DriftInjection.Inject(sentences, 3, pairs: 6, t0: 1, t1: 2, minCount: minCount, shuffle: true, seed: 4);
        _data = _ml.Data.LoadFromEnumerable(injected.Sentences.Select(s => new Row { Tokens = s.Tokens, Slice = s.Slice }).ToList());
    }

    private DiachronicEmbeddingsOptions Options(DiachronicModel model) => model == DiachronicModel.DynamicBernoulli
        ? new() { TokensColumnName = nameof(Row.Tokens), TimeColumnName = nameof(Row.Slice), Model = model, Dimensions = 64 }
        : new()
        {
            TokensColumnName = nameof(Row.Tokens), TimeColumnName = nameof(Row.Slice), Model = model,
            Initialization = DiachronicInitialization.WholeCorpus, Dimensions = 64, Epochs = 5, InitEpochs = 5, Seed = 1,
        };

    private int Fit(DiachronicModel model)
    {
        using var fitted = _ml.Transforms.Text.DiachronicEmbeddings(Options(model)).Fit(_data);
        return fitted.Vocabulary.Count;
    }

    [Benchmark(Baseline = true)]
    public int IncrementalSkipGramFit() => Fit(DiachronicModel.IncrementalSkipGram);

    [Benchmark]
    public int DynamicBernoulliFit() => Fit(DiachronicModel.DynamicBernoulli);
}
