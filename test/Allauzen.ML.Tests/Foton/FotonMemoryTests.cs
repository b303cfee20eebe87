using Allauzen.ML.Foton;
using Allauzen.ML.Tests.Mlp;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Foton;

[TestClass]
public sealed class FotonMemoryTests
{
    [TestMethod]
    [DataRow(FotonAlgorithm.Foton)]
    [DataRow(FotonAlgorithm.Pepita)]
    [DataRow(FotonAlgorithm.Backprop)]
    public void LiveTensors_DoNotGrowAcrossEpochs(FotonAlgorithm algorithm)
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 320);
        var live = new List<long>();
        var o = new FotonOptions
        {
            Algorithm = algorithm, HiddenSizes = [8, 8], Epochs = 8, BatchSize = 16, Seed = 1, ProjectBackprop = true,
            Progress = new SyncProgress<TrainingProgress>(_ => live.Add(TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount)),
        };
        ml.MulticlassClassification.Trainers.Foton(o).Fit(data);
        // 20 steps per epoch, each allocating tens of tensors: a per-step leak would add hundreds per epoch.
        Assert.IsLessThanOrEqualTo(8L, live[^1] - live[2], $"live tensors: {string.Join(", ", live)}");
    }
}
