using Allauzen.ML.Mlp;
using BenchmarkDotNet.Attributes;
using Microsoft.ML;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// One training epoch of the MLP on Fashion-MNIST (digits when absent): the in-memory batcher (the
/// baseline) vs the streaming batcher, with ML.NET's SDCA maximum-entropy (one pass) for scale.
/// </summary>
[MemoryDiagnoser]
public class MlpEpochBenchmarks
{
    private MLContext _ml = null!;
    private IDataView _train = null!;

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        (_train, _, _) = BenchData.Prepared(_ml);
        Torch.TorchRuntime.EnsureInitialized();
    }

    private MlpOptions Options(DataCaching caching) =>
        new() { HiddenSizes = [256], Epochs = 1, BatchSize = 128, DataCaching = caching, Seed = 1 };

    [Benchmark(Baseline = true)]
    public object MlpEpochInMemory() => _ml.MulticlassClassification.Trainers.Mlp(Options(DataCaching.InMemory)).Fit(_train);

    [Benchmark]
    public object MlpEpochStreaming() => _ml.MulticlassClassification.Trainers.Mlp(Options(DataCaching.Streaming)).Fit(_train);

    [Benchmark]
    public object SdcaMaximumEntropyOnePass() =>
        _ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(new Microsoft.ML.Trainers.SdcaMaximumEntropyMulticlassTrainer.Options { MaximumNumberOfIterations = 1 }).Fit(_train);
}
