using Allauzen.ML.Orleans;
using Orleans.TestingHost;

namespace Allauzen.ML.Tests.ScaleOut;

/// <summary>A silo killed with a shard in flight: the job completes on the others, every shard counted once, the result unchanged.</summary>
[TestClass]
public sealed class SiloFailureTests
{
    [TestMethod]
    [TestCategory("Slow")]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task KillingASiloMidRunLosesNoShardAndChangesNoCertificate()
    {
        using var f = new CertificationFixture(rows: 96, estimationSamples: 100_000);
        var cluster = await CertificationFixture.StartCluster(3, holdable: true);
        try
        {
            var coordinator = cluster.GrainFactory.GetGrain<ICertificationJobGrain>("kill-" + Guid.NewGuid().ToString("N"));
            string coordinatorSilo = await coordinator.GetSilo();
            // the victim: a secondary silo (the primary holds the test membership table) that does not host the
            // coordinator; the first shard it is given is held in flight (ShardHold) until it is killed
            var victim = cluster.SecondarySilos.First(s => s.SiloAddress.ToParsableString() != coordinatorSilo);
            var held = ShardHold.Arm(victim.SiloAddress.ToParsableString());
            var run = coordinator.Run(f.Job(ShardInput.Split(f.InputPath, 12), "merged-kill.idv"));
            var first = await Task.WhenAny(held, run, Task.Delay(TimeSpan.FromSeconds(120)));
            Assert.AreSame(held, first, "the victim silo was never given a shard");
            var before = await coordinator.GetProgress();
            CollectionAssert.Contains(before.RunningOn.ToList(), victim.SiloAddress.ToParsableString(), "the held shard is in flight on the victim");
            await cluster.KillSiloAsync(victim);
            var report = await run;

            Assert.AreEqual(0, report.Failed.Count(), string.Join("; ", report.Failed.SelectMany(s => s.Errors)));
            Assert.AreEqual((long)f.Rows, report.Rows, "no shard lost or counted twice");
            CollectionAssert.AreEquivalent(f.Expected.ToList(), CertificationFixture.Merged(report.MergedOutputPath!).ToList());
            CollectionAssert.AreEqual(f.ExpectedCurve.Curve.ToArray(), report.Counts!.ToMetrics().Curve.ToArray());
            // the held shard failed with the victim and was run again on another silo
            var retried = report.Shards.Where(s => s.Errors.Any(e => e.Contains(victim.SiloAddress.ToString(), StringComparison.Ordinal))).ToList();
            Assert.HasCount(1, retried, string.Join("; ", report.Shards.Select(s => $"{s.Name} on {s.Result?.Silo} after {s.Attempts}: {string.Join(" | ", s.Errors)}")));
            Assert.IsGreaterThan(1, retried[0].Attempts);
            Assert.AreNotEqual(victim.SiloAddress.ToParsableString(), retried[0].Result!.Silo);
        }
        finally
        {
            ShardHold.Release();
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }
}
