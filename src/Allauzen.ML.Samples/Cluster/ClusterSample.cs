using System.Net;
using Allauzen.ML.Mlp;
using Allauzen.ML.Orleans;
using Allauzen.ML.Samples.Smoothing;
using Allauzen.ML.Smoothing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Allauzen.ML.Samples.Cluster;

/// <summary>
/// The `certify-cluster` sample: train the smoothing sample's noise-augmented MLP on digits, certify the test set
/// once in this process and once on a localhost Orleans cluster of N silo processes (keyed noise: RowKeyColumnName),
/// check that both give bit-identical certificates per key, and report work per silo and coordinator overhead per shard.
/// </summary>
public static class ClusterSample
{
    private static readonly Option<int> Silos = SampleCli.Int("--silos", 3, "silo processes to start on localhost");
    private static readonly Option<int> Shards = SampleCli.Int("--shards", 12, "shards of the test set");
    private static readonly Option<int> N = SampleCli.Int("--n", 10_000, "noise samples per row for the estimation");
    private static readonly SampleCommand Cli = new("certify-cluster", epochs: "15");
    private static readonly Option<int?> KillAfter = SampleCli.OptionalInt("--kill-after", "kill the last silo once this many shards are finished (fault demo)", min: 0);
    private static readonly Option<int> BasePort = SampleCli.Int("--base-port", 11111, "silo i listens on base+i, its gateway on base+100+i", min: 1024);

    /// <summary>`certify-cluster`: the digits test set certified on a localhost cluster, compared with one process.</summary>
    public static Command Command { get; } = Cli.Create(
        "Randomized smoothing on a localhost Orleans cluster (N silo processes): same certificates as one process, work per silo, overhead per shard.",
        Run, Silos, Shards, N, KillAfter, BasePort);

    /// <summary>A test row with its key.</summary>
    public sealed class KeyedRow
    {
        public int Id { get; set; }

        public float[] Features { get; set; } = [];

        public uint Label { get; set; }
    }

    private static int Run(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        int silos = args.GetValue(Silos), shards = args.GetValue(Shards), n = args.GetValue(N), basePort = args.GetValue(BasePort);
        string folder = Cli.OutputFolder(args);
        var (trainRaw, testRaw, _) = SampleData.Load(ml, "digits");
        var prep = SmoothingModel.BuildPreparation(ml, trainRaw);
        var train = prep.Transform(trainRaw);
        var test = prep.Transform(testRaw);
        int d = ((VectorDataViewType)train.Schema["Features"].Type).Size;
        uint classes = (uint)((KeyDataViewType)train.Schema["Label"].Type).Count;

        // 1. The base model (as the smoothing sample) and the keyed certifier, saved for the silos.
        var sw = Stopwatch.StartNew();
        var mlp = SmoothingModel.Train(ml, SmoothingModel.Augment(ml, train, 0.25, copies: 3, seed: 1),
            new MlpOptions { HiddenSizes = [128], Epochs = Cli.Epochs(args) ?? 15, BatchSize = 64, LearningRate = 2e-3 });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"base MLP trained in {sw.Elapsed.TotalSeconds:F1} s"));
        var definition = Microsoft.ML.Data.SchemaDefinition.Create(typeof(KeyedRow));
        definition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, d);
        definition["Label"].ColumnType = new KeyDataViewType(typeof(uint), classes);
        var keyed = ml.Data.LoadFromEnumerable(ml.Data.CreateEnumerable<SmoothingModel.PreparedRow>(test, false, schemaDefinition: SmoothingModel.Definition(d, classes))
            .Select((r, i) => new KeyedRow { Id = i, Features = r.Features, Label = r.Label - 1 }).ToList(), definition); // LoadFromEnumerable reads a key as 0-based
        string inputPath = Path.Combine(folder, "digits-test.idv");
        using (var f = File.Create(inputPath))
            ml.Data.SaveAsBinary(keyed, f);
        var certifier = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = mlp, Sigma = 0.25, SelectionSamples = 100, EstimationSamples = n, Alpha = 0.001, Seed = 1, RowKeyColumnName = "Id",
        }).Fit(keyed);
        string modelPath = Path.Combine(folder, "certifier.zip");
        ModelFile.Save(ml, certifier, keyed.Schema, modelPath);
        SampleCli.Wrote(modelPath, "keyed certifier");

        // 2. One process: the reference certificates.
        sw.Restart();
        var input = ml.Data.LoadFromBinary(inputPath);
        var single = ml.Data.Cache(ml.Model.Load(modelPath, out _).Transform(input));
        var expected = ByKey(single);
        var singleCurve = ml.MulticlassClassification.EvaluateCertified(single, radii: SmoothingSample.Radii, saturationRadius: certifier.SaturationRadius);
        double singleMs = sw.Elapsed.TotalMilliseconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"one process: {expected.Count} rows certified in {singleMs / 1000:F1} s"));

        // 3. The cluster: N silo processes on localhost, this process as a client.
        sw.Restart();
        var children = new List<Process>();
        try
        {
            for (int i = 0; i < silos; i++)
                children.Add(SiloProcess.Start(i, basePort));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{silos} silo processes up in {sw.Elapsed.TotalSeconds:F1} s"));
            var builder = Host.CreateApplicationBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.UseOrleansClient(c => c.UseStaticClustering([.. Enumerable.Range(0, silos)
                .Select(i => new IPEndPoint(IPAddress.Loopback, SiloProcess.Ports(basePort, i).Gateway))]));
            using var client = builder.Build();
            client.Start();
            var grains = client.Services.GetRequiredService<IGrainFactory>();
            var coordinator = grains.GetGrain<ICertificationJobGrain>($"certify-cluster-{Guid.NewGuid():N}");
            var job = new CertificationJob
            {
                ModelPath = modelPath, Shards = ShardInput.Split(inputPath, shards), KeyColumnName = "Id", LabelColumnName = "Label", Radii = SmoothingSample.Radii,
                OutputColumns = [SmoothingColumnNames.PredictedLabel, SmoothingColumnNames.CertifiedRadius, SmoothingColumnNames.NoiseSeed],
            };
            sw.Restart();
            var run = coordinator.Run(job);
            if (args.GetValue(KillAfter) is int killAfter)
                KillLastSilo(coordinator, run, killAfter, children[^1]).GetAwaiter().GetResult();
            var report = run.GetAwaiter().GetResult();
            double clusterMs = sw.Elapsed.TotalMilliseconds;

            // 4. Compare and report.
            var merged = ByKey(ml.Data.LoadFromBinary(report.MergedOutputPath!));
            bool identical = merged.Count == expected.Count && merged.All(kv => expected.TryGetValue(kv.Key, out var e) && e == kv.Value);
            var curve = report.Counts!.ToMetrics();
            bool sameCurve = curve.Curve.SequenceEqual(singleCurve.Curve) && curve.Accuracy == singleCurve.Accuracy;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"cluster: {report.Rows} rows, {report.Shards.Count} shards ({report.Failed.Count()} failed, {report.Shards.Sum(s => s.Attempts) - report.Shards.Count} retries) in {clusterMs / 1000:F1} s"));
            foreach (var s in report.Failed)
                Console.WriteLine($"  failed {s.Name}: {string.Join("; ", s.Errors)}");
            Console.WriteLine("| silo | shards | rows | work (s) | model load (ms) |");
            Console.WriteLine("|---|---|---|---|---|");
            var perSilo = report.Shards.Where(s => s.Succeeded).GroupBy(s => s.Result!.SiloName).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
            foreach (var g in perSilo)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {g.Key} | {g.Count()} | {g.Sum(s => s.Result!.Rows)} | {g.Sum(s => s.Result!.WorkMs) / 1000:F1} | {g.Sum(s => s.Result!.ModelLoadMs):F0} |"));
            }
            var overhead = report.Shards.Where(s => s.Succeeded).Select(s => s.OverheadMs).Order().ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"coordinator overhead per shard (dispatch to result, minus the silo's work): median {overhead[overhead.Length / 2]:F1} ms, max {overhead[^1]:F1} ms; merge {report.MergeMs:F0} ms"));
            Console.WriteLine($"bit-identical certificates per key (cluster vs one process): {(identical ? "yes" : "NO")}; same certified-accuracy curve: {(sameCurve ? "yes" : "NO")}");
            Console.Write(curve.ToTable("certified accuracy (cluster)"));
            SampleCli.Wrote(report.MergedOutputPath!, "merged certificates");
            Cli.WriteMetrics(args, new Dictionary<string, object?>
            {
                ["sample"] = "certify-cluster",
                ["silos"] = silos,
                ["shards"] = shards,
                ["n"] = n,
                ["rows"] = report.Rows,
                ["single_process_ms"] = singleMs,
                ["cluster_ms"] = clusterMs,
                ["retries"] = report.Shards.Sum(s => s.Attempts) - report.Shards.Count,
                ["work_ms_per_silo"] = perSilo.ToDictionary(g => g.Key, g => g.Sum(s => s.Result!.WorkMs)),
                ["overhead_ms_per_shard_median"] = overhead[overhead.Length / 2],
                ["overhead_ms_per_shard_max"] = overhead[^1],
                ["merge_ms"] = report.MergeMs,
                ["bit_identical"] = identical,
            });
            client.StopAsync().GetAwaiter().GetResult();
            return identical && sameCurve && !report.Failed.Any() ? 0 : 1;
        }
        finally
        {
            foreach (var p in children)
            {
                if (!p.HasExited)
                {
                    p.StandardInput.Close();
                    if (!p.WaitForExit(15_000))
                        p.Kill();
                }
                p.Dispose();
            }
        }
    }

    private static async Task KillLastSilo(ICertificationJobGrain coordinator, Task<JobReport> run, int after, Process silo)
    {
        while (!run.IsCompleted && (await coordinator.GetProgress()).Finished < after)
            await Task.Delay(50);
        if (!run.IsCompleted)
        {
            silo.Kill();
            Console.WriteLine($"killed the last silo (pid {silo.Id}) after {after} finished shards");
        }
    }

    private static Dictionary<int, (uint Pred, long Radius)> ByKey(IDataView certified)
    {
        var ids = certified.GetColumn<int>("Id").ToArray();
        var pred = certified.GetColumn<uint>(SmoothingColumnNames.PredictedLabel).ToArray();
        var radius = certified.GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray();
        return ids.Select((k, i) => (k, i)).ToDictionary(p => p.k, p => (pred[p.i], BitConverter.DoubleToInt64Bits(radius[p.i])));
    }
}
