using Allauzen.ML.Orleans;
using Orleans.TestingHost;

namespace Allauzen.ML.Tests.ScaleOut;

/// <summary>A silo killed mid-run: the job completes on the others, every shard counted once, the result unchanged.</summary>
[TestClass]
public sealed class SiloFailureTests
{
    [TestMethod]
    [TestCategory("Slow")]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task KillingASiloMidRunLosesNoShardAndChangesNoCertificate()
    {
        // Shards must last long enough (about a second each here) that the silo seen running one is still running it when killed.
        using var f = new CertificationFixture(rows: 96, estimationSamples: 400_000);
        var cluster = await CertificationFixture.StartCluster(3);
        try
        {
            var coordinator = cluster.GrainFactory.GetGrain<ICertificationJobGrain>("kill-" + Guid.NewGuid().ToString("N"));
            var job = f.Job(ShardInput.Split(f.InputPath, 12), "merged-kill.idv");
            var run = coordinator.Run(job);
            string coordinatorSilo = await coordinator.GetSilo();
            // kill, while it runs a shard, a secondary silo (the primary holds the test membership table) that does not
            // host the coordinator
            var candidates = cluster.SecondarySilos.Where(s => s.SiloAddress.ToParsableString() != coordinatorSilo).ToList();
            SiloHandle? victim = null;
            while (!run.IsCompleted && victim is null)
            {
                var p = await coordinator.GetProgress();
                if (p.Finished >= 2)
                    victim = candidates.FirstOrDefault(s => p.RunningOn.Contains(s.SiloAddress.ToParsableString()));
                if (victim is null)
                    await Task.Delay(20);
            }
            Assert.IsNotNull(victim, "the job finished before a silo could be killed mid-shard");
            var before = await coordinator.GetProgress();
            Assert.IsTrue(before.Finished < before.Shards - 3, $"the job finished too early to kill a silo mid-run ({before.Finished}/{before.Shards})");
            await cluster.KillSiloAsync(victim);
            var report = await run;

            Assert.AreEqual(0, report.Failed.Count(), string.Join("; ", report.Failed.SelectMany(s => s.Errors)));
            Assert.AreEqual((long)f.Rows, report.Rows, "no shard lost or counted twice");
            CollectionAssert.AreEquivalent(f.Expected.ToList(), CertificationFixture.Merged(report.MergedOutputPath!).ToList());
            CollectionAssert.AreEqual(f.ExpectedCurve.Curve.ToArray(), report.Counts!.ToMetrics().Curve.ToArray());
            // The kill is timed from progress reports: on a fast machine the victim can finish its shard between the report
            // and the kill, and then nothing needs a retry. The properties above hold either way; the retry path itself is
            // only evidenced when it happened.
            bool retried = report.Shards.Any(s => s.Attempts > 1 && s.Errors.Any(e => e.Contains(victim.SiloAddress.ToString(), StringComparison.Ordinal)));
            if (!retried)
            {
                Assert.Inconclusive($"the killed silo {victim.SiloAddress} had no shard in flight when it died, so no retry was exercised: "
                    + string.Join("; ", report.Shards.Select(s => $"{s.Name} on {s.Result?.Silo} after {s.Attempts}")));
            }
        }
        finally
        {
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }
}
