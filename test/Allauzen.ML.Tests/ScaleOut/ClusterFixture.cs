using Allauzen.ML.Data;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Orleans;
using Allauzen.ML.Smoothing;
using Allauzen.ML.Tests.Smoothing;
using Microsoft.ML;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace Allauzen.ML.Tests.ScaleOut;

/// <summary>Silos that declare a dead peer within a few seconds (the defaults take about a minute).</summary>
public sealed class FastMembership : ISiloConfigurator
{
    public void Configure(ISiloBuilder siloBuilder) => siloBuilder.Configure<ClusterMembershipOptions>(o =>
    {
        o.ProbeTimeout = TimeSpan.FromSeconds(1);
        o.NumMissedProbesLimit = 2;
        o.NumVotesForDeathDeclaration = 1;
        o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(2);
    });
}

/// <summary>A saved keyed certifier, its input file and the single-process certificates to compare with.</summary>
internal sealed class CertificationFixture : IDisposable
{
    public CertificationFixture(int rows, int estimationSamples)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("scaleout-").FullName;
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(SplitIndependenceTests.Rows(rows));
        InputPath = Path.Combine(Directory, "rows.idv");
        using (var f = File.Create(InputPath))
            ml.Data.SaveAsBinary(data, f);
        using var certifier = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = RandomizedSmoothingTests.LinearModel(ml), SelectionSamples = 50, EstimationSamples = estimationSamples, Alpha = 0.01, Seed = 11,
            RowKeyColumnName = "Id",
        }).Fit(data);
        ModelPath = Path.Combine(Directory, "certifier.zip");
        ml.Model.Save(certifier, data.Schema, ModelPath);
        var input = ml.Data.LoadFromBinary(InputPath);
        var reloaded = ml.Model.Load(ModelPath, out _);
        var certified = ml.Data.Cache(reloaded.Transform(input));
        Expected = SplitIndependenceTests.ByKey(certified, "Id");
        ExpectedCurve = ml.MulticlassClassification.EvaluateCertified(certified, radii: Radii, saturationRadius: certifier.SaturationRadius);
        Rows = rows;
    }

    public static readonly double[] Radii = [0, 0.05, 0.1, 0.2];

    public string Directory { get; }

    public string InputPath { get; }

    public string ModelPath { get; }

    public int Rows { get; }

    public Dictionary<string, (uint Pred, long Radius, ulong Seed)> Expected { get; }

    public CertifiedAccuracyMetrics ExpectedCurve { get; }

    public CertificationJob Job(IReadOnlyList<ShardInput> shards, string merged, int maxAttempts = 3) => new()
    {
        ModelPath = ModelPath, Shards = shards, KeyColumnName = "Id", LabelColumnName = "Label", Radii = Radii,
        OutputColumns = [SmoothingColumnNames.PredictedLabel, SmoothingColumnNames.CertifiedRadius, SmoothingColumnNames.NoiseSeed],
        MergedOutputPath = Path.Combine(Directory, merged), MaxAttempts = maxAttempts,
    };

    /// <summary>Certificates per key of a merged output.</summary>
    public static Dictionary<string, (uint Pred, long Radius, ulong Seed)> Merged(string path) =>
        SplitIndependenceTests.ByKey(new MLContext().Data.LoadFromBinary(path), "Id");

    /// <summary>Starts <paramref name="silos"/> silos with fast membership; <paramref name="holdable"/>: with <see cref="ShardHold"/>'s filter.</summary>
    public static async Task<TestCluster> StartCluster(int silos, bool holdable = false)
    {
        var builder = new TestClusterBuilder((short)silos);
        builder.AddSiloBuilderConfigurator<FastMembership>();
        if (holdable)
            builder.AddSiloBuilderConfigurator<ShardHold>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
