using Allauzen.ML.Data;
using Allauzen.ML.Orleans;
using Microsoft.ML;
using Microsoft.ML.Data;
using Orleans.TestingHost;

namespace Allauzen.ML.Tests.ScaleOut;

/// <summary>Certification on an in-process 3-silo Orleans cluster (TestingHost) against the single-process result.</summary>
[TestClass]
public sealed class ClusterCertificationTests
{
    private static TestCluster? _cluster;
    private static CertificationFixture? _fixture;

    [ClassInitialize]
    public static async Task Start(TestContext context)
    {
        _fixture = new CertificationFixture(rows: 48, estimationSamples: 2000);
        _cluster = await CertificationFixture.StartCluster(3);
    }

    [ClassCleanup]
    public static async Task Stop()
    {
        if (_cluster is not null)
        {
            await _cluster.StopAllSilosAsync();
            await _cluster.DisposeAsync();
        }
        _fixture?.Dispose();
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task ClusterGivesTheSingleProcessCertificatesBitForBit()
    {
        var f = _fixture!;
        var job = f.Job(ShardInput.Split(f.InputPath, 6), "merged-6.idv");
        var report = await _cluster!.GrainFactory.GetGrain<ICertificationJobGrain>("same-" + Guid.NewGuid().ToString("N")).Run(job);

        Assert.AreEqual(0, report.Failed.Count(), string.Join("; ", report.Failed.SelectMany(s => s.Errors)));
        Assert.AreEqual((long)f.Rows, report.Rows);
        Assert.IsTrue(report.Shards.Select(s => s.Result!.Silo).Distinct().Count() >= 2, "the shards ran on one silo only");
        var merged = CertificationFixture.Merged(report.MergedOutputPath!);
        CollectionAssert.AreEquivalent(f.Expected.ToList(), merged.ToList());
        var ids = new MLContext().Data.LoadFromBinary(report.MergedOutputPath!).GetColumn<int>("Id").ToArray();
        CollectionAssert.AreEqual(ids.Order().ToArray(), ids, "merged in key order");
        var curve = report.Counts!.ToMetrics();
        CollectionAssert.AreEqual(f.ExpectedCurve.Curve.ToArray(), curve.Curve.ToArray());
        Assert.AreEqual(f.ExpectedCurve.AbstainRate, curve.AbstainRate);
        Assert.AreEqual(f.ExpectedCurve.Accuracy, curve.Accuracy);
        foreach (var s in report.Shards)
            Assert.IsTrue(File.Exists(s.Result!.OutputPath) && s.Result.OutputPath.StartsWith(f.InputPath, StringComparison.Ordinal), s.Result.OutputPath);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task ACorruptShardIsReportedByNameAndTheOthersFinish()
    {
        var f = _fixture!;
        var ml = new MLContext();
        var input = ml.Data.LoadFromBinary(f.InputPath);
        var parts = Enumerable.Range(0, 3).Select(i =>
        {
            string path = Path.Combine(f.Directory, $"part-{i}.idv");
            using (var s = File.Create(path))
                ml.Data.SaveAsBinary(input.Shard(i, 3, "Id"), s);
            return new ShardInput { InputPath = path };
        }).ToArray();
        var bytes = File.ReadAllBytes(parts[1].InputPath);
        Array.Fill(bytes, (byte)0x5A, 16, bytes.Length - 16);
        File.WriteAllBytes(parts[1].InputPath, bytes);

        var report = await _cluster!.GrainFactory.GetGrain<ICertificationJobGrain>("corrupt-" + Guid.NewGuid().ToString("N")).Run(f.Job(parts, "merged-parts.idv", maxAttempts: 2));

        var failed = report.Failed.Single();
        Assert.AreEqual("part-1.idv", failed.Name);
        Assert.AreEqual(2, failed.Attempts);
        Assert.AreEqual(2, failed.Errors.Count, string.Join("; ", failed.Errors));
        var merged = CertificationFixture.Merged(report.MergedOutputPath!);
        var others = new[] { 0, 2 }.SelectMany(i => ml.Data.LoadFromBinary(Path.Combine(f.Directory, $"part-{i}.idv")).GetColumn<int>("Id"))
            .Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        Assert.AreEqual(others.Count, merged.Count);
        foreach (var (key, cert) in merged)
            Assert.AreEqual(f.Expected[key], cert, $"key {key}");
        Assert.AreEqual((long)others.Count, report.Rows);
    }
}
