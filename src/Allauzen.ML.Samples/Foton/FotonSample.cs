using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Allauzen.ML.Datasets;
using Allauzen.ML.Foton;
using Allauzen.ML.Samples.Common;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Foton;

/// <summary>
/// The `foton` sample: FOTON vs PEPITA vs backprop (and backprop with FOTON's projection, the control) on the
/// same orthogonal MLP 784-[256]×depth-10 (Fashion-MNIST; digits when absent), for depths 2, 10, 20, 50:
/// test accuracy, seconds per epoch and peak training memory. Each run is a fresh child process, so its
/// peak memory is its own; the first FOTON run also saves, reloads and exports its model to ONNX.
/// </summary>
/// <remarks>
/// Options: --data digits|fashion-mnist (default fashion-mnist), --depth N or a list "2,10" (default
/// 2,10,20,50), --epochs N (default 1), --algorithms foton,pepita,backprop,backprop_ortho (default all four),
/// --activation relu|tanh|maxmin|auto (default auto: ReLU at depth ≤ 2, tanh deeper, as the reference
/// measurements found ReLU FOTON untrainable at depth 10), --train-rows N (default all), --seed N (default 42),
/// --alignment on (per-layer cosine with the backprop gradient on each epoch's first batch),
/// --recompute on (FotonOptions.RecomputeActivations: activation memory independent of depth, one forward pass more),
/// --metrics-out FILE.
/// </remarks>
public static class FotonSample
{
    private static readonly string[] AllAlgorithms = ["foton", "pepita", "backprop", "backprop_ortho"];

    public static int Run(SampleArgs args)
    {
        string data = args.Get("data") ?? "fashion-mnist";
        var depths = (args.Get("depth") ?? "2,10,20,50").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var algorithms = (args.Get("algorithms") ?? string.Join(",", AllAlgorithms)).Split(',');
        foreach (var a in algorithms)
        {
            if (!AllAlgorithms.Contains(a))
                throw new ArgumentException($"Unknown algorithm '{a}' in --algorithms: use {string.Join(", ", AllAlgorithms)}.") { Source = SampleArgs.UsageSource };
        }
        int epochs = args.Epochs ?? 1;
        Directory.CreateDirectory(args.Output);
        Console.WriteLine($"FOTON sample: data {data}, depths {string.Join(", ", depths)}, algorithms {string.Join(", ", algorithms)}, {epochs} epoch(s); one child process per run.");

        var runs = new List<Dictionary<string, object?>>();
        bool firstFoton = true;
        foreach (int depth in depths)
        {
            foreach (var algorithm in algorithms)
            {
                string result = Path.Combine(args.Output, $"foton-run-{algorithm}-{depth}-{Guid.NewGuid():N}.json");
                var childArgs = new List<string>
                {
                    "foton-run", "--data", data, "--depth", depth.ToString(CultureInfo.InvariantCulture), "--algorithm", algorithm,
                    "--epochs", epochs.ToString(CultureInfo.InvariantCulture), "--result", result, "--output", args.Output,
                    "--activation", args.Get("activation") ?? "auto", "--seed", args.Get("seed") ?? "42",
                    "--check-model", (algorithm == "foton" && firstFoton) ? "1" : "0",
                };
                if (args.Get("train-rows") is string rows)
                    childArgs.AddRange(["--train-rows", rows]);
                foreach (var key in new[] { "alignment", "validate", "dropout", "projection", "divisor", "recompute" })
                {
                    if (args.Get(key) is string value)
                        childArgs.AddRange([$"--{key}", value]);
                }
                firstFoton &= algorithm != "foton";
                int code = RunChild(childArgs);
                if (!File.Exists(result))
                {
                    Console.Error.WriteLine($"run {algorithm} depth {depth} failed (exit code {code}) without a result.");
                    return 1;
                }
                var run = JsonSerializer.Deserialize<Dictionary<string, object?>>(File.ReadAllText(result))!;
                File.Delete(result);
                runs.Add(run);
            }
        }

        Console.WriteLine();
        Console.WriteLine("| depth | algorithm | activation | test accuracy | s/epoch | peak training memory (MB) |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- |");
        foreach (var r in runs)
        {
            string acc = r["accuracy"] is JsonElement { ValueKind: JsonValueKind.Number } a ? a.GetDouble().ToString("P2", CultureInfo.InvariantCulture) : $"diverged";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r["depth"]} | {r["algorithm"]} | {r["activation"]} | {acc} | {Num(r["epoch_seconds"]):F1} | {Num(r["peak_memory_mb"]):F1} |"));
        }
        MetricsFile.Write(args.MetricsOut, new Dictionary<string, object?>
        {
            ["sample"] = "foton",
            ["dataset"] = runs.Count > 0 ? runs[0]["dataset"] : data,
            ["epochs"] = epochs,
            ["runs"] = runs,
        });
        bool modelOk = runs.Where(r => r.ContainsKey("onnx_max_abs_diff")).All(r => Num(r["onnx_max_abs_diff"]) <= 1e-5 && r["reload_identical"] is JsonElement { ValueKind: JsonValueKind.True });
        return modelOk ? 0 : 1;
    }

    private static double Num(object? v) => v is JsonElement { ValueKind: JsonValueKind.Number } e ? e.GetDouble() : double.NaN;

    private static int RunChild(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            psi.ArgumentList.Add(typeof(FotonSample).Assembly.Location);
        // A fixed mmap threshold: glibc's adaptive one otherwise keeps freed activation buffers in the heap,
        // and the peak RSS would measure allocator growth rather than what training holds.
        psi.Environment["MALLOC_MMAP_THRESHOLD_"] = "131072";
        // A small first GC generation (2 MB): otherwise the managed garbage of tensor handles can grow by tens of MB
        // before the first collection, and the peak RSS would measure the GC's budget rather than what training holds.
        psi.Environment["DOTNET_GCgen0size"] = "0x200000";
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>Child process: one algorithm at one depth; writes its result JSON.</summary>
    public static int RunOne(SampleArgs args)
    {
        var ml = new MLContext(seed: 1);
        ml.UseAllauzen();
        string algorithm = args.Get("algorithm")!;
        int depth = int.Parse(args.Get("depth")!, CultureInfo.InvariantCulture);
        int epochs = args.Epochs ?? 1;
        int seed = int.Parse(args.Get("seed") ?? "42", CultureInfo.InvariantCulture);
        int? trainRows = args.Get("train-rows") is string tr ? int.Parse(tr, CultureInfo.InvariantCulture) : null;
        var activation = (args.Get("activation") ?? "auto") switch
        {
            "auto" => depth <= 2 ? FotonActivation.Relu : FotonActivation.Tanh,
            "relu" => FotonActivation.Relu,
            "tanh" => FotonActivation.Tanh,
            "maxmin" => FotonActivation.MaxMin,
            var other => throw new ArgumentException($"Unknown --activation '{other}': use relu, tanh, maxmin or auto.") { Source = SampleArgs.UsageSource },
        };
        var (train, test, dataset) = LoadStandardised(ml, args.Get("data") ?? "fashion-mnist", trainRows);
        int featureCount = ((VectorDataViewType)train.Schema["Features"].Type).Size;
        FotonOptions Configure(int runEpochs)
        {
            var o = FotonModel.Options(algorithm, depth, activation, runEpochs, seed);
            o.AlignmentDiagnostics = args.Get("alignment") == "on";
            o.WarmStartProjection = args.Get("projection") != "reference";
            o.ScaleByConfiguredBatchSize = args.Get("divisor") != "actual";
            o.RecomputeActivations = args.Get("recompute") == "on";
            if (args.Get("dropout") is string dropout)
                o.Dropout = double.Parse(dropout, CultureInfo.InvariantCulture);
            if (featureCount < 256)
                o.HiddenSizes = [.. Enumerable.Repeat(featureCount, depth)]; // digits: keep the widths non-expanding
            return o;
        }
        var options = Configure(epochs);
        if (args.Get("validate") == "on")
            options.ValidationData = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(test);
        var seconds = new List<double>();
        options.Progress = new SyncProgressReporter(p =>
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

        if (model is not null && args.Get("check-model") == "1")
        {
            string path = Path.Combine(args.Output, $"foton-{dataset}.zip");
            FotonModel.SaveModel(ml, model, train.Schema, path);
            var reloaded = FotonModel.LoadModel(new MLContext(seed: 2), path, out _);
            var a = model.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();
            var b = reloaded.Transform(test).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();
            result["reload_identical"] = a.AsSpan().SequenceEqual(b);
            result["onnx_max_abs_diff"] = OnnxParity.ExportAndCompare(ml, model, test, Path.Combine(args.Output, $"foton-{dataset}.onnx"));
            var engine = FotonModel.CreateEngine(ml, reloaded, featureCount);
            var first = ml.Data.CreateEnumerable<FotonModel.ModelInput>(test, false, schemaDefinition: InputDefinition(featureCount)).First();
            var output = FotonModel.Predict(engine, first);
            Console.WriteLine($"  saved {path}; reload identical {result["reload_identical"]}; ONNX max |diff| {result["onnx_max_abs_diff"]}; predict: true '{first.Label}', predicted '{output.PredictedLabel}'");
        }
        var json = JsonSerializer.Serialize(result);
        var tmp = args.Get("result")! + ".tmp";
        File.WriteAllText(tmp, json);
        File.Move(tmp, args.Get("result")!, overwrite: true);
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

    private sealed class SyncProgressReporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
