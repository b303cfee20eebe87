using Allauzen.ML.Foton;
using BenchmarkDotNet.Attributes;
using Microsoft.ML;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// One training epoch of the orthogonal MLP 784-[256]×depth-10 on 5,120 Fashion-MNIST images (digits when
/// absent; widths then 64): backprop (the baseline), FOTON with the warm-started projection (ours; activations
/// stored, the default), the same recomputing the activations (RecomputeActivations: memory independent of depth),
/// FOTON with the reference projection (10 power iterations + 20 Björck iterations per layer and step), and
/// backprop with FOTON's projection. Same batch size (256), dropout 0.1, one thread recommended
/// (OMP_NUM_THREADS=1); the ratio column is each method's mean over the backprop baseline of the same run.
/// </summary>
/// <remarks>
/// Peak native memory is not visible to BenchmarkDotNet (its MemoryDiagnoser counts managed allocations only).
/// The `foton` sample measures it the same way for every algorithm: one child process per run (glibc's mmap
/// threshold fixed at 128 KiB so freed buffers leave the RSS, a 2 MB first GC generation so managed garbage does
/// not pile up), the data loaded and cached, the same training warmed up on one mini-batch, an aggressive GC, then
/// the kernel's peak-RSS counter reset (/proc/self/clear_refs = 5) and <c>peak_memory_mb</c> = VmHWM after
/// <c>Fit</c> − VmRSS before it. It includes what both algorithms hold (the batcher's copy of the features, the
/// weights), e.g. <c>foton --depth 50 --epochs 1 --train-rows 5120 --algorithms foton,backprop [--recompute on]</c>.
/// The working set of a training step alone: <c>--foton-step memory 50 store|recompute|backprop</c> (see
/// <see cref="FotonStepProbe"/>).
/// </remarks>
[MemoryDiagnoser]
public class FotonBenchmarks
{
    private MLContext _ml = null!;
    private IDataView _train = null!;
    private int _width;

    [Params(2, 50)]
    public int Depth { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        var (train, _, _) = BenchData.Prepared(_ml);
        _train = _ml.Data.Cache(_ml.Data.TakeRows(train, 5120));
        _width = Math.Min(256, ((Microsoft.ML.Data.VectorDataViewType)_train.Schema["Features"].Type).Size);
        Torch.TorchRuntime.EnsureInitialized();
    }

    private FotonOptions Options(FotonAlgorithm algorithm) => new()
    {
        Algorithm = algorithm, HiddenSizes = [.. Enumerable.Repeat(_width, Depth)], Epochs = 1, Seed = 1,
        Activation = Depth > 2 ? FotonActivation.Tanh : FotonActivation.Relu, AlignmentDiagnostics = false,
        DataCaching = DataCaching.InMemory, LearningRate = algorithm == FotonAlgorithm.Backprop ? 0.1 : 0.5,
    };

    [Benchmark(Baseline = true)]
    public object BackpropEpoch() => _ml.MulticlassClassification.Trainers.Foton(Options(FotonAlgorithm.Backprop)).Fit(_train);

    [Benchmark]
    public object FotonEpochWarmProjection() => _ml.MulticlassClassification.Trainers.Foton(Options(FotonAlgorithm.Foton)).Fit(_train);

    [Benchmark]
    public object FotonEpochRecomputeActivations()
    {
        var o = Options(FotonAlgorithm.Foton);
        o.RecomputeActivations = true;
        return _ml.MulticlassClassification.Trainers.Foton(o).Fit(_train);
    }

    [Benchmark]
    public object FotonEpochReferenceProjection()
    {
        var o = Options(FotonAlgorithm.Foton);
        o.WarmStartProjection = false;
        return _ml.MulticlassClassification.Trainers.Foton(o).Fit(_train);
    }

    [Benchmark]
    public object BackpropWithProjectionEpoch()
    {
        var o = Options(FotonAlgorithm.Backprop);
        o.ProjectBackprop = true;
        o.LearningRate = 0.5;
        return _ml.MulticlassClassification.Trainers.Foton(o).Fit(_train);
    }
}
