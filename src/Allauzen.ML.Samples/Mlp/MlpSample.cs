using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Mlp;
using Allauzen.ML.Samples.Common;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Mlp;

/// <summary>
/// The `mlp` sample: train, evaluate, save, reload in a fresh process, export to ONNX and check parity,
/// then consume the model with a PredictionEngine.
/// </summary>
public static class MlpSample
{
    public static int Run(SampleArgs args)
    {
        var ml = new MLContext(seed: 1);
        ml.UseAllauzen();
        var (train, test, dataset) = SampleData.Load(ml, args.Data);
        int featureCount = ((VectorDataViewType)train.Schema["Features"].Type).Size;
        long rowsTrain = CountRows(train), rowsTest = CountRows(test);
        var options = dataset == "digits"
            ? new MlpOptions { HiddenSizes = [128], Epochs = args.Epochs ?? 30, BatchSize = 32, LearningRate = 2e-3 }
            : new MlpOptions { HiddenSizes = [256], Epochs = args.Epochs ?? 15, BatchSize = 128, LearningRate = 1e-3, LearningRateSchedule = LearningRateSchedule.Cosine };
        options.Progress = new Progress<TrainingProgress>(p =>
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  epoch {p.Epoch,3}/{p.Epochs}: loss {p.TrainLoss:F4}  train accuracy {p.TrainAccuracy:P2}  {p.EpochTime.TotalSeconds:F2} s")));
        Console.WriteLine($"MLP on {dataset}: {rowsTrain} training rows, {rowsTest} test rows, {featureCount} features, hidden {string.Join("x", options.HiddenSizes)}");

        // Train
        var sw = Stopwatch.StartNew();
        var model = MlpModel.Train(ml, train, options);
        double trainSeconds = sw.Elapsed.TotalSeconds;

        // Evaluate
        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"test: accuracy {metrics.MicroAccuracy:P2}, macro accuracy {metrics.MacroAccuracy:P2}, log-loss {metrics.LogLoss:F4}, train {trainSeconds:F1} s"));

        // Save, then reload in a fresh process and compare the scores bit for bit
        Directory.CreateDirectory(args.Output);
        string modelPath = Path.Combine(args.Output, $"mlp-{dataset}.zip");
        MlpModel.SaveModel(ml, model, train.Schema, modelPath);
        string scoresPath = Path.Combine(args.Output, $"mlp-{dataset}.scores.bin");
        WriteScores(scoresPath, ReadScores(scored));
        bool reloadIdentical = RunFreshProcess(modelPath, dataset, scoresPath);
        Console.WriteLine($"saved {modelPath} ({new FileInfo(modelPath).Length:N0} bytes); reload in a fresh process identical: {reloadIdentical}");

        // ONNX export and parity
        string onnxPath = Path.Combine(args.Output, $"mlp-{dataset}.onnx");
        double onnxDiff = OnnxParity.ExportAndCompare(ml, model, test, onnxPath);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"exported {onnxPath}; max |Score(ML.NET) - Score(ONNX Runtime)| = {onnxDiff:E2}"));

        // Consume: one prediction through a PredictionEngine
        var engine = MlpModel.CreateEngine(ml, model, featureCount);
        var first = ml.Data.CreateEnumerable<MlpModel.ModelInput>(test, reuseRowObject: false,
            schemaDefinition: InputDefinition(featureCount)).First();
        var output = MlpModel.Predict(engine, first);
        var top = MlpModel.GetSortedScoresWithLabels(engine, output).Take(3)
            .Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:P1}"));
        Console.WriteLine($"predict: true '{first.Label}', predicted '{output.PredictedLabel}' (top 3: {string.Join(", ", top)})");

        MetricsFile.Write(args.MetricsOut, new Dictionary<string, object?>
        {
            ["sample"] = "mlp",
            ["dataset"] = dataset,
            ["rows_train"] = rowsTrain,
            ["rows_test"] = rowsTest,
            ["accuracy"] = metrics.MicroAccuracy,
            ["macro_accuracy"] = metrics.MacroAccuracy,
            ["log_loss"] = metrics.LogLoss,
            ["epochs"] = options.Epochs,
            ["train_seconds"] = trainSeconds,
            ["onnx_max_abs_diff"] = onnxDiff,
            ["reload_identical"] = reloadIdentical,
        });
        return reloadIdentical && onnxDiff <= 1e-5 ? 0 : 1;
    }

    /// <summary>Child process: load the model in a fresh MLContext and compare its test scores with the parent's.</summary>
    public static int ConsumeInFreshProcess(SampleArgs args)
    {
        var ml = new MLContext(seed: 1);
        var (_, test, _) = SampleData.Load(ml, args.Data);
        var model = MlpModel.LoadModel(ml, args.Get("model")!, out _);
        var expected = File.ReadAllBytes(args.Get("scores")!);
        var actual = ToBytes(ReadScores(model.Transform(test)));
        bool same = expected.AsSpan().SequenceEqual(actual);
        Console.WriteLine($"  fresh process: {actual.Length / 4} score values, identical: {same}");
        return same ? 0 : 1;
    }

    private static bool RunFreshProcess(string modelPath, string dataset, string scoresPath)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            psi.ArgumentList.Add(typeof(MlpSample).Assembly.Location);
        foreach (var a in new[] { "mlp-consume", "--model", modelPath, "--data", dataset, "--scores", scoresPath })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    private static SchemaDefinition InputDefinition(int featureCount)
    {
        var schema = SchemaDefinition.Create(typeof(MlpModel.ModelInput));
        schema["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureCount);
        return schema;
    }

    private static float[] ReadScores(IDataView scored) =>
        scored.GetColumn<float[]>("Score").SelectMany(s => s).ToArray();

    private static byte[] ToBytes(float[] values) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    private static void WriteScores(string path, float[] scores) => File.WriteAllBytes(path, ToBytes(scores));

    private static long CountRows(IDataView data) => data.GetRowCount() ?? data.GetColumn<string>("Label").LongCount();
}
