using System.Diagnostics;
using Allauzen.ML.Mlp;
using Allauzen.ML.Tests.Mlp;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Torch;

[TestClass]
public sealed class TrainingLoopTests
{
    [TestMethod]
    [TestCategory("Slow")] // 16 epochs of a 256-256 MLP: an acceptance-sized run
    public void NativeMemory_DoesNotGrowAcrossEpochs()
    {
        var ml = new MLContext(seed: 1);
        var (train, _) = TestData.DigitsPrepared(ml);
        var rss = new List<long>();
        var live = new List<long>();
        var o = new MlpOptions
        {
            HiddenSizes = [256, 256],
            Epochs = 16,
            BatchSize = 16,
            Progress = new SyncProgress<TrainingProgress>(_ =>
            {
                live.Add(TorchSharp.DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount);
                GC.Collect();
                GC.WaitForPendingFinalizers();
                rss.Add(Process.GetCurrentProcess().WorkingSet64);
            }),
        };
        ml.MulticlassClassification.Trainers.Mlp(o).Fit(train);
        // 90 batches per epoch, each allocating ~10 tensors: a leak of one batch's tensors per step would
        // add tens of MB per epoch. Allow allocator noise only.
        // Live tensors (counted by TorchSharp on this thread, before any GC) must not grow with the epochs.
        Assert.IsLessThanOrEqualTo(8L, live[^1] - live[3], $"live tensors: {string.Join(", ", live)}");
        long growth = rss[^1] - rss[3];
        Assert.IsLessThan(24L << 20, growth, $"RSS grew by {growth >> 20} MB between epochs 4 and 16");
    }

    [TestMethod]
    public void EpochLines_ReachMlContextLog()
    {
        var ml = new MLContext(seed: 1);
        var lines = new List<string>();
        ml.Log += (_, e) => { lock (lines) lines.Add(e.Message); };
        ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [8], Epochs = 2 }).Fit(TestData.BlobsPrepared(ml, 60));
        lock (lines)
        {
            Assert.IsTrue(lines.Any(l => l.Contains("epoch 2/2") && l.Contains("loss")), string.Join("\n", lines.Take(20)));
            Assert.IsTrue(lines.Any(l => l.Contains("8 features, 3 classes")));
        }
    }
}
