using Allauzen.ML.Mlp;

namespace Allauzen.ML.Samples.Mlp;

/// <summary>
/// The `mlp` sample: train, evaluate, save, reload in a fresh process, export to ONNX and check parity,
/// then consume the model with a PredictionEngine.
/// </summary>
public static class MlpSample
{
    private static readonly SampleCommand Cli = new("mlp", data: "digits", epochs: "30 on digits, 15 on fashion-mnist");

    private static readonly Option<string> ChildData = SampleCli.Data("digits");
    private static readonly Option<string> ChildModel = new("--model") { Description = "the saved model", Required = true };
    private static readonly Option<string> ChildScores = new("--scores") { Description = "the parent's test scores (raw float32)", Required = true };

    /// <summary>`mlp`: train, evaluate, save, reload in a fresh process, ONNX export and parity, one prediction.</summary>
    public static Command Command { get; } = Cli.Create(
        "MLP classifier: train, evaluate, save, reload in a fresh process, export to ONNX and check parity, predict.",
        Run);

    /// <summary>`mlp-consume`: the fresh process of the reload check.</summary>
    public static Command ConsumeCommand { get; } = SampleCli.Child("mlp-consume",
        "Child process of mlp: load the model in a fresh MLContext and compare its test scores with the parent's.",
        ConsumeInFreshProcess, ChildModel, ChildData, ChildScores);

    private static int Run(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        var (train, test, dataset) = SampleData.Load(ml, Cli.Data(args));
        string outputFolder = Cli.OutputFolder(args);
        int featureCount = ((VectorDataViewType)train.Schema["Features"].Type).Size;
        long rowsTrain = CountRows(train), rowsTest = CountRows(test);
        int? epochs = Cli.Epochs(args);
        var options = dataset == "digits"
            ? new MlpOptions { HiddenSizes = [128], Epochs = epochs ?? 30, BatchSize = 32, LearningRate = 2e-3 }
            : new MlpOptions { HiddenSizes = [256], Epochs = epochs ?? 15, BatchSize = 128, LearningRate = 1e-3, LearningRateSchedule = LearningRateSchedule.Cosine };
        Console.WriteLine($"MLP on {dataset}: {rowsTrain} training rows, {rowsTest} test rows, {featureCount} features, hidden {string.Join("x", options.HiddenSizes)}");

        // Train
        var sw = Stopwatch.StartNew();
        ITransformer model;
        using (var progress = new ConsoleProgress("training", options.Epochs))
        {
            options.Progress = progress.Epochs();
            model = MlpModel.Train(ml, train, options);
        }
        double trainSeconds = sw.Elapsed.TotalSeconds;

        // Evaluate
        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"test: accuracy {metrics.MicroAccuracy:P2}, macro accuracy {metrics.MacroAccuracy:P2}, log-loss {metrics.LogLoss:F4}, train {trainSeconds:F1} s"));

        // Save, then reload in a fresh process and compare the scores bit for bit
        string modelPath = Path.Combine(outputFolder, $"mlp-{dataset}.zip");
        MlpModel.SaveModel(ml, model, train.Schema, modelPath);
        string scoresPath = Path.Combine(outputFolder, $"mlp-{dataset}.scores.bin");
        File.WriteAllBytes(scoresPath, ChildProcess.ScoreBytes(scored));
        SampleCli.Wrote(scoresPath, "test scores for the reload check");
        bool reloadIdentical = ChildProcess.Run(["mlp-consume", "--model", modelPath, "--data", dataset, "--scores", scoresPath]) == 0;
        Console.WriteLine($"reload in a fresh process identical: {reloadIdentical}");

        // ONNX export and parity
        string onnxPath = Path.Combine(outputFolder, $"mlp-{dataset}.onnx");
        double onnxDiff = OnnxParity.ExportAndCompare(ml, model, test, onnxPath);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"max |Score(ML.NET) - Score(ONNX Runtime)| = {onnxDiff:E2}"));

        // Consume: one prediction with the generated-style consumption code (loads the saved model)
        var inputDefinition = SchemaDefinition.Create(typeof(MlpModel.ModelInput));
        inputDefinition["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureCount);
        var first = ml.Data.CreateEnumerable<MlpModel.ModelInput>(test, reuseRowObject: false, schemaDefinition: inputDefinition).First();
        var output = MlpModel.Predict(first);
        var top = MlpModel.GetSortedScoresWithLabels(output).Take(3)
            .Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:P1}"));
        Console.WriteLine($"predict: true '{first.Label}', predicted '{output.PredictedLabel}' (top 3: {string.Join(", ", top)})");

        Cli.WriteMetrics(args, new Dictionary<string, object?>
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
    private static int ConsumeInFreshProcess(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        var (_, test, _) = SampleData.Load(ml, args.GetValue(ChildData)!);
        var model = ml.Model.Load(args.GetValue(ChildModel)!, out _);
        return ChildProcess.CompareScores(model.Transform(test), args.GetValue(ChildScores)!);
    }

    private static long CountRows(IDataView data) => data.GetRowCount() ?? data.GetColumn<string>("Label").LongCount();
}
