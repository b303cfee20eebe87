using System.Text.Json;
using Allauzen.ML.Datasets;
using Allauzen.ML.Foton;

namespace Allauzen.ML.Samples.Foton;

/// <summary>
/// The `foton` sample: FOTON vs PEPITA vs backprop (and backprop with FOTON's projection, the control) on the
/// same orthogonal MLP 784-[256]×depth-10 (Fashion-MNIST; digits when absent), for depths 2, 10, 20, 50:
/// test accuracy, seconds per epoch and peak training memory. Each run is a fresh child process, so its
/// peak memory is its own; the first FOTON run also saves, reloads and exports its model to ONNX.
/// </summary>
public static class FotonSample
{
    private static readonly string[] AllAlgorithms = ["foton", "pepita", "backprop", "backprop_ortho"];

    private static readonly RunSettings Settings = new();
    private static readonly Option<string> Depths = SampleCli.Option("--depth", "2,10,20,50", "hidden depths, comma-separated");
    private static readonly Option<string> Algorithms = SampleCli.Option("--algorithms", string.Join(",", AllAlgorithms),
        "algorithms, comma-separated, among foton, pepita, backprop, backprop_ortho");
    private static readonly Option<string?> MetricsOut = SampleCli.MetricsOut();
    private static readonly Option<string?> Output = SampleCli.Output("foton");

    private static readonly RunSettings ChildSettings = new();
    private static readonly Option<int> ChildDepth = SampleCli.Int("--depth", 2, "hidden depth");
    private static readonly Option<string> ChildAlgorithm = SampleCli.Choice("--algorithm", "foton", "the algorithm", AllAlgorithms);
    private static readonly Option<string> ChildResult = new("--result") { Description = "the result JSON file", Required = true };
    private static readonly Option<string?> ChildOutput = SampleCli.Output("foton");
    private static readonly Option<string> ChildCheckModel = SampleCli.Choice("--check-model", "0", "1: also save, reload, export to ONNX and predict", "0", "1");

    /// <summary>`foton`: FOTON vs PEPITA vs backprop, one child process per run.</summary>
    public static Command Command { get; } = SampleCli.Sample("foton",
        "FOTON vs PEPITA vs backprop on the same orthogonal MLP at several depths: test accuracy, s/epoch, peak training memory (one child process per run).",
        Run, [Depths, Algorithms, .. Settings.All, MetricsOut, Output]);

    /// <summary>`foton-run`: one run of the foton sample, in its own process.</summary>
    public static Command RunCommand { get; } = SampleCli.Child("foton-run",
        "Child process of foton: one algorithm at one depth; writes its result JSON.",
        RunOne, [ChildDepth, ChildAlgorithm, ChildResult, ChildOutput, ChildCheckModel, .. ChildSettings.All]);

    /// <summary>The options a foton run takes, forwarded by the parent to each child as typed.</summary>
    private sealed class RunSettings
    {
        public readonly Option<string> Data = SampleCli.Data("fashion-mnist");
        public readonly Option<int> Epochs = SampleCli.Int("--epochs", 1, "training epochs per run");
        public readonly Option<string> Activation = SampleCli.Choice("--activation", "auto",
            "hidden activation; auto: ReLU at depth <= 2, tanh deeper (ReLU FOTON is untrainable at depth 10)", "auto", "relu", "tanh", "maxmin");
        public readonly Option<int?> TrainRows = SampleCli.OptionalInt("--train-rows", "training rows: a fixed random subset (default: all)");
        public readonly Option<int> Seed = SampleCli.Int("--seed", 42, "training seed", min: 0);
        public readonly Option<string> Alignment = SampleCli.Choice("--alignment", "off",
            "on: per-layer cosine with the backprop gradient on each epoch's first batch", "on", "off");
        public readonly Option<string> Validate = SampleCli.Choice("--validate", "off", "on: test accuracy after every epoch", "on", "off");
        public readonly Option<double?> Dropout = SampleCli.OptionalReal("--dropout", "dropout rate (default: 0.1)");
        public readonly Option<string> Projection = SampleCli.Choice("--projection", "warm",
            "FOTON's projection: warm-started every step, or the reference's", "warm", "reference");
        public readonly Option<string> Divisor = SampleCli.Choice("--divisor", "configured",
            "divide the update by the configured or the actual batch size", "configured", "actual");
        public readonly Option<string> Recompute = SampleCli.Choice("--recompute", "off",
            "on: recompute activations (memory independent of depth, one forward pass more)", "on", "off");

        public Option[] All => [Data, Epochs, Activation, TrainRows, Seed, Alignment, Validate, Dropout, Projection, Divisor, Recompute];

        /// <summary>The options given on the command line, as typed (the child has the same defaults).</summary>
        public IEnumerable<string> Given(ParseResult args) =>
            All.Select(args.GetResult).OfType<System.CommandLine.Parsing.OptionResult>().Where(r => !r.Implicit)
                .SelectMany(r => r.Tokens.Select(t => t.Value).Prepend(r.Option.Name));
    }

    private static int Run(ParseResult args)
    {
        string data = args.GetValue(Settings.Data)!;
        var depths = SampleCli.IntList(args.GetValue(Depths)!, "--depth");
        var algorithms = args.GetValue(Algorithms)!.Split(',');
        foreach (var a in algorithms)
        {
            if (!AllAlgorithms.Contains(a))
                throw new UsageException($"Unknown algorithm '{a}' in --algorithms: use {string.Join(", ", AllAlgorithms)}.");
        }
        int epochs = args.GetValue(Settings.Epochs);
        string outputFolder = SampleCli.OutputFolder(args.GetValue(Output), "foton");
        Console.WriteLine($"FOTON sample: data {data}, depths {string.Join(", ", depths)}, algorithms {string.Join(", ", algorithms)}, {epochs} epoch(s); one child process per run.");

        var runs = new List<Dictionary<string, object?>>();
        bool firstFoton = true;
        const string header = "| depth | algorithm | activation | test accuracy | s/epoch | peak training memory (MB) |\n| --- | --- | --- | --- | --- | --- |";
        Console.WriteLine(header);
        using (var progress = new ConsoleProgress("FOTON runs", depths.Length * algorithms.Length))
        {
            foreach (int depth in depths)
            {
                foreach (var algorithm in algorithms)
                {
                    string result = Path.Combine(outputFolder, $"foton-run-{algorithm}-{depth}-{Guid.NewGuid():N}.json");
                    var childArgs = new List<string>
                    {
                        "foton-run", "--depth", depth.ToString(CultureInfo.InvariantCulture), "--algorithm", algorithm, "--result", result,
                        "--output", outputFolder, "--check-model", (algorithm == "foton" && firstFoton) ? "1" : "0",
                    };
                    childArgs.AddRange(Settings.Given(args));
                    firstFoton &= algorithm != "foton";
                    // Epoch lines of the child: printed when the output is a log, shown in the bar on a terminal.
                    int code = ChildProcess.Run(childArgs, line =>
                    {
                        if (ConsoleProgress.Interactive && line.StartsWith("  [", StringComparison.Ordinal))
                            progress.Report(runs.Count, line.Trim());
                        else
                            Console.WriteLine(line);
                    }, ChildEnvironment);
                    if (!File.Exists(result))
                    {
                        Console.Error.WriteLine($"run {algorithm} depth {depth} failed (exit code {code}) without a result.");
                        return 1;
                    }
                    var run = JsonSerializer.Deserialize<Dictionary<string, object?>>(File.ReadAllText(result))!;
                    File.Delete(result);
                    runs.Add(run);
                    Console.WriteLine(Row(run));
                    progress.Report(runs.Count, $"{algorithm} at depth {depth} done");
                }
            }
        }
        if (!ConsoleProgress.Interactive && runs.Count > 1)
        {
            // The rows above are interleaved with the runs' epoch lines in a log: the table once more, in one piece.
            Console.WriteLine();
            Console.WriteLine(header);
            foreach (var r in runs)
                Console.WriteLine(Row(r));
        }
        MetricsFile.Write(args.GetValue(MetricsOut), new Dictionary<string, object?>
        {
            ["sample"] = "foton",
            ["dataset"] = runs.Count > 0 ? runs[0]["dataset"] : data,
            ["epochs"] = epochs,
            ["runs"] = runs,
        });
        bool modelOk = runs.Where(r => r.ContainsKey("onnx_max_abs_diff")).All(r => Num(r["onnx_max_abs_diff"]) <= 1e-5 && r["reload_identical"] is JsonElement { ValueKind: JsonValueKind.True });
        return modelOk ? 0 : 1;
    }

    private static string Row(Dictionary<string, object?> r)
    {
        string acc = r["accuracy"] is JsonElement { ValueKind: JsonValueKind.Number } a ? a.GetDouble().ToString("P2", CultureInfo.InvariantCulture) : "diverged";
        return string.Create(CultureInfo.InvariantCulture,
            $"| {r["depth"]} | {r["algorithm"]} | {r["activation"]} | {acc} | {Num(r["epoch_seconds"]):F1} | {Num(r["peak_memory_mb"]):F1} |");
    }

    private static double Num(object? v) => v is JsonElement { ValueKind: JsonValueKind.Number } e ? e.GetDouble() : double.NaN;

    /// <summary>
    /// A fixed mmap threshold: glibc's adaptive one otherwise keeps freed activation buffers in the heap, and the peak
    /// RSS would measure allocator growth rather than what training holds. A small first GC generation (2 MB): otherwise
    /// the managed garbage of tensor handles can grow by tens of MB before the first collection, and the peak RSS would
    /// measure the GC's budget rather than what training holds.
    /// </summary>
    private static readonly Dictionary<string, string> ChildEnvironment = new()
    {
        ["MALLOC_MMAP_THRESHOLD_"] = "131072",
        ["DOTNET_GCgen0size"] = "0x200000",
    };

    /// <summary>Child process: one algorithm at one depth; writes its result JSON.</summary>
    private static int RunOne(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        var c = ChildSettings;
        string algorithm = args.GetValue(ChildAlgorithm)!;
        int depth = args.GetValue(ChildDepth);
        int epochs = args.GetValue(c.Epochs);
        int seed = args.GetValue(c.Seed);
        int? trainRows = args.GetValue(c.TrainRows);
        string outputFolder = SampleCli.OutputFolder(args.GetValue(ChildOutput), "foton");
        var activation = args.GetValue(c.Activation) switch
        {
            "auto" => depth <= 2 ? FotonActivation.Relu : FotonActivation.Tanh,
            "relu" => FotonActivation.Relu,
            "tanh" => FotonActivation.Tanh,
            "maxmin" => FotonActivation.MaxMin,
            var other => throw new UsageException($"Unknown --activation '{other}': use relu, tanh, maxmin or auto."),
        };
        var (train, test, dataset) = LoadStandardised(ml, args.GetValue(c.Data)!, trainRows);
        int featureCount = ((VectorDataViewType)train.Schema["Features"].Type).Size;
        FotonOptions Configure(int runEpochs)
        {
            var o = FotonModel.Options(algorithm, depth, activation, runEpochs, seed);
            o.AlignmentDiagnostics = args.GetValue(c.Alignment) == "on";
            o.WarmStartProjection = args.GetValue(c.Projection) != "reference";
            o.ScaleByConfiguredBatchSize = args.GetValue(c.Divisor) != "actual";
            o.RecomputeActivations = args.GetValue(c.Recompute) == "on";
            if (args.GetValue(c.Dropout) is double dropout)
                o.Dropout = dropout;
            if (featureCount < 256)
                o.HiddenSizes = [.. Enumerable.Repeat(featureCount, depth)]; // digits: keep the widths non-expanding
            return o;
        }
        var options = Configure(epochs);
        if (args.GetValue(c.Validate) == "on")
            options.ValidationData = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(test);
        var seconds = new List<double>();
        options.Progress = new SyncProgress<TrainingProgress>(p =>
        {
            seconds.Add(p.EpochTime.TotalSeconds);
            string diagnostics = string.Join(", ", p.Diagnostics.Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:G3}")));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  [{algorithm}, depth {depth}] epoch {p.Epoch}/{p.Epochs}: loss {p.TrainLoss:F4}, train accuracy {p.TrainAccuracy:P2}, {(p.ValidationAccuracy is double va ? $"test accuracy {va:P2}, " : "")}{p.EpochTime.TotalSeconds:F1} s, {diagnostics}"));
        });

        var result = new Dictionary<string, object?>
        {
            ["algorithm"] = algorithm,
            ["depth"] = depth,
            ["activation"] = activation.ToString().ToLowerInvariant(),
            ["dataset"] = dataset,
            ["train_rows"] = CountRows(train),
            ["learning_rate"] = options.LearningRate,
            ["batch_size"] = options.BatchSize,
        };
        // Native libtorch is loaded, the cached views are filled and the same training is warmed up on one
        // mini-batch before the baseline, so peak_memory_mb is what training holds at its peak (the batcher's
        // in-memory copy of the features included, identical for every algorithm), not libtorch's one-time
        // kernel loading and thread buffers, which are the same for every algorithm and dwarf the difference.
        Allauzen.ML.Torch.TorchRuntime.EnsureInitialized();
        foreach (var view in new[] { train, test })
        {
            using var cursor = view.GetRowCursor(view.Schema);
            while (cursor.MoveNext())
            {
            }
        }
        FotonModel.Train(ml, ml.Data.TakeRows(train, Configure(1).BatchSize), Configure(1));
        // An aggressive, compacting collection returns the freed managed memory to the system, so the warm-up's
        // garbage does not sit in the RSS baseline (which would hide part of the real Fit's peak).
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        ResetPeakRss();
        double baseline = ReadStatusMb("VmRSS");
        ITransformer? model = null;
        try
        {
            model = FotonModel.Train(ml, train, options);
            // Peak of training only (Fit): read before the evaluation, which allocates the same for every algorithm.
            result["peak_memory_mb"] = ReadStatusMb("VmHWM") - baseline;
            result["accuracy"] = ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy;
        }
        catch (InvalidOperationException e) when (e.Message.Contains("diverged", StringComparison.Ordinal))
        {
            Console.WriteLine($"  [{algorithm}, depth {depth}] {e.Message}");
            result["accuracy"] = null;
            result["error"] = e.Message;
        }
        result["epoch_seconds"] = seconds.Count > 0 ? seconds.Average() : null;
        result.TryAdd("peak_memory_mb", ReadStatusMb("VmHWM") - baseline);
        result["process_peak_rss_mb"] = ReadStatusMb("VmHWM");

        if (model is not null && args.GetValue(ChildCheckModel) == "1")
        {
            string path = Path.Combine(outputFolder, $"foton-{dataset}.zip");
            FotonModel.SaveModel(ml, model, train.Schema, path);
            var ml2 = new MLContext(seed: 2);
            var reloaded = ml2.Model.Load(path, out _);
            var a = model.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();
            var b = reloaded.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();
            result["reload_identical"] = a.AsSpan().SequenceEqual(b);
            result["onnx_max_abs_diff"] = OnnxParity.ExportAndCompare(ml, model, test, Path.Combine(outputFolder, $"foton-{dataset}.onnx"));
            var first = ml.Data.CreateEnumerable<FotonModel.ModelInput>(test, false, schemaDefinition: InputDefinition(featureCount)).First();
            var output = FotonModel.Predict(first);
            Console.WriteLine($"  reload identical {result["reload_identical"]}; ONNX max |diff| {result["onnx_max_abs_diff"]}; predict: true '{first.Label}', predicted '{output.PredictedLabel}'");
        }
        var json = JsonSerializer.Serialize(result);
        var tmp = args.GetValue(ChildResult)! + ".tmp";
        File.WriteAllText(tmp, json);
        File.Move(tmp, args.GetValue(ChildResult)!, overwrite: true);
        return 0;
    }

    /// <summary>Train/test with the features standardised by one global mean and standard deviation of the training pixels.</summary>
    private static (IDataView Train, IDataView Test, string Name) LoadStandardised(MLContext ml, string data, int? trainRows)
    {
        var (train, test, name) = SampleData.Load(ml, data);
        var trainRowsList = Rows(ml, train);
        if (trainRows is int n && n < trainRowsList.Count)
        {
            // A fixed subset: the first n of a permutation drawn with seed 0.
            var rng = new Random(0);
            trainRowsList = [.. trainRowsList.OrderBy(_ => rng.Next()).Take(n)];
        }
        var testRows = Rows(ml, test);
        double sum = 0, sq = 0;
        long count = 0;
        foreach (var r in trainRowsList)
        {
            foreach (var v in r.Features)
            {
                sum += v;
                sq += (double)v * v;
                count++;
            }
        }
        double mean = sum / count, std = Math.Sqrt(sq / count - mean * mean);
        IDataView View(List<FotonModel.ModelInput> rows) =>
            ml.Data.LoadFromEnumerable(rows.Select(r => new FotonModel.ModelInput { Label = r.Label, Features = [.. r.Features.Select(v => (float)((v - mean) / std))] }).ToList(),
                InputDefinition(rows[0].Features.Length));
        return (ml.Data.Cache(View(trainRowsList)), ml.Data.Cache(View(testRows)), name);
    }

    private static List<FotonModel.ModelInput> Rows(MLContext ml, IDataView data)
    {
        int n = ((VectorDataViewType)data.Schema["Features"].Type).Size;
        return [.. ml.Data.CreateEnumerable<FotonModel.ModelInput>(data, false, schemaDefinition: InputDefinition(n))];
    }

    private static SchemaDefinition InputDefinition(int featureCount)
    {
        var schema = SchemaDefinition.Create(typeof(FotonModel.ModelInput));
        schema["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureCount);
        return schema;
    }

    private static long CountRows(IDataView data) => data.GetRowCount() ?? data.GetColumn<string>("Label").LongCount();

    /// <summary>Resets the kernel's peak-RSS counter (VmHWM) to the current RSS (Linux ≥ 4.0).</summary>
    private static void ResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.WriteLine("  (could not reset the peak RSS counter: peak_memory_mb includes data loading)");
        }
    }

    private static double ReadStatusMb(string key)
    {
        if (!File.Exists("/proc/self/status"))
            return double.NaN;
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
                return double.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        }
        return double.NaN;
    }
}
