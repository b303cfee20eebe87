using Allauzen.ML.Speech;

namespace Allauzen.ML.Samples.Speech;

/// <summary>
/// The `speech` sample: featurize a folder of WAVs with a speech SSL encoder (ONNX), train a classifier on the pooled
/// features (voice or language id on an espeak-ng corpus, or voice id on excerpts of the shipped utterance), evaluate,
/// compare with a log-mel baseline, save, reload in a fresh process, and predict one file.
/// </summary>
public static class SpeechSample
{
    public static string ShippedModel => Path.Combine(AppContext.BaseDirectory, "Data", "Speech", "w2v2_tiny.onnx");

    public static string ShippedUtterance => Path.Combine(AppContext.BaseDirectory, "Data", "Speech", "utt16k.wav");

    private static readonly Option<string?> Data = SampleCli.Text("--data",
        "folder with one sub-folder of WAV files per class (default: a corpus synthesised with espeak-ng when installed, else excerpts of the shipped utterance)");
    private static readonly Option<string?> Model = SampleCli.Text("--model",
        "speech SSL encoder, ONNX (default: the shipped random-init tiny wav2vec2, which tests the plumbing, not speech quality)");
    private static readonly Option<string> Task = SampleCli.Choice("--task", "language",
        "espeak-ng corpus task (language or voice id), or shipped (excerpts of the shipped utterance, no espeak-ng)", "language", "voice", "shipped");
    private static readonly Option<string?> Layer = SampleCli.Text("--layer", "encoder layer: N, average or last (default: average)");
    private static readonly Option<string> Pooling = SampleCli.Choice("--pooling", "meanstd", "pooling over time", "mean", "meanstd", "max");
    private static readonly SampleCommand Cli = new("speech");

    private static readonly Option<string> ChildModel = new("--model") { Description = "the saved model", Required = true };
    private static readonly Option<string> ChildList = new("--list") { Description = "the test WAV files, one per line", Required = true };
    private static readonly Option<string> ChildScores = new("--scores") { Description = "the parent's test scores (raw float32)", Required = true };

    /// <summary>`speech`: speech SSL features + a classifier head, against a log-mel baseline.</summary>
    public static Command Command { get; } = Cli.Create(
        "Speech SSL featurizer (ONNX encoder) + classifier: voice or language id, log-mel baseline, save, reload in a fresh process, predict.",
        Run, Data, Model, Task, Layer, Pooling);

    /// <summary>`speech-consume`: the fresh process of the reload check.</summary>
    public static Command ConsumeCommand { get; } = SampleCli.Child("speech-consume",
        "Child process of speech: load the model in a fresh MLContext and compare its test scores with the parent's.",
        ConsumeInFreshProcess, ChildModel, ChildList, ChildScores);

    private static int Run(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        string onnx = args.GetValue(Model) ?? ShippedModel;
        string outputFolder = Cli.OutputFolder(args);
        string task = args.GetValue(Task)!;

        // Corpus
        List<Recording> corpus;
        string dataset;
        if (args.GetValue(Data) is { } folder)
        {
            if (!Directory.Exists(folder))
                throw new UsageException($"Invalid value '{folder}' for option '--data': no such folder.");
            corpus = SpeechCorpus.FromFolder(folder);
            dataset = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
        }
        else if (task != "shipped" && SpeechCorpus.HasEspeak())
        {
            corpus = SpeechCorpus.Synthesize(Path.Combine(outputFolder, $"speech-corpus-espeak-{task}"), task);
            dataset = $"espeak-{task}";
        }
        else
        {
            if (task != "shipped")
                Console.WriteLine("espeak-ng not found (apt-get install espeak-ng): using excerpts of the shipped utterance, two voices.");
            corpus = SpeechCorpus.FromShippedUtterance(ShippedUtterance, Path.Combine(outputFolder, "speech-corpus-shipped"));
            dataset = "shipped-voices";
        }
        // Split by group (sentence or excerpt), so that no sentence is in both sets.
        var trainRows = corpus.Where(r => r.Group % 4 != 3).Select(r => new SpeechModel.ModelInput { Audio = r.Audio, Label = r.Label }).ToArray();
        var testRows = corpus.Where(r => r.Group % 4 == 3).Select(r => new SpeechModel.ModelInput { Audio = r.Audio, Label = r.Label }).ToArray();
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var test = ml.Data.LoadFromEnumerable(testRows);
        var classes = corpus.Select(r => r.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        Console.WriteLine($"speech SSL features on {dataset}: {trainRows.Length} training and {testRows.Length} test recordings, classes {string.Join(", ", classes)}");
        Console.WriteLine($"encoder: {onnx}");

        // Train: featurize (frozen encoder) + classifier head
        var options = SpeechModel.FeaturizerOptions(onnx);
        if (args.GetValue(Layer) is { } layer)
        {
            options.Layers = layer == "average" ? SslLayers.Average : layer == "last" ? SslLayers.Last
                : int.TryParse(layer, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) && n >= 0 ? SslLayers.Layer(n)
                : throw new UsageException($"Invalid value '{layer}' for option '--layer': use a layer number, average or last.");
        }
        options.Pooling = Enum.Parse<SslPooling>(args.GetValue(Pooling)!, ignoreCase: true);
        var sw = Stopwatch.StartNew();
        ITransformer model;
        SslFeaturizerTransformer featurizer;
        using (var progress = new ConsoleProgress("featurizing the training recordings", trainRows.Length, TimeSpan.FromSeconds(5)))
        {
            options.Progress = new SyncProgress<SslFeaturizerProgress>(p => progress.Report(p.Rows,
                string.Create(CultureInfo.InvariantCulture, $"{p.AudioSeconds:F1} s of audio, {p.RealTimeFactor:F1}x real time")));
            (model, featurizer) = SpeechModel.Train(ml, train, options);
            featurizer.Progress = null;
        }
        double trainSeconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"featurizer: hidden {featurizer.HiddenSize}, {featurizer.LayerCount} layers, pooling {featurizer.Pooling} ({featurizer.OutputSize} features), " +
            $"normalise {featurizer.Normalize}, batched {featurizer.BatchesUtterances}, {featurizer.ExecutionProvider}; trained in {trainSeconds:F1} s"));

        // Evaluate
        var scored = ml.Data.Cache(model.Transform(test));
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        var stats = featurizer.Statistics;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"test: accuracy {metrics.MicroAccuracy:P2}, macro accuracy {metrics.MacroAccuracy:P2}, log-loss {metrics.LogLoss:F4}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"featurization: {stats.Rows} recordings, {stats.AudioSeconds:F1} s of audio in {stats.Elapsed.TotalSeconds:F2} s = {stats.RealTimeFactor:F1}x real time (rtf = audio s / wall s)"));

        // Baseline: the same pipeline on log-mel filter banks (an ONNX front end built in code, no download)
        var logMelOptions = SpeechModel.FeaturizerOptions(onnx);
        logMelOptions.ModelPath = null;
        logMelOptions.ModelBytes = SpeechEncoders.LogMelSpectrogram();
        logMelOptions.Layers = SslLayers.Last;
        var (baseline, baselineFeaturizer) = SpeechModel.Train(ml, train, logMelOptions);
        var baselineMetrics = ml.MulticlassClassification.Evaluate(baseline.Transform(test));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"baseline log-mel (80 bands, mean+std): test accuracy {baselineMetrics.MicroAccuracy:P2}, {baselineFeaturizer.Statistics.RealTimeFactor:F0}x real time"));
        if (args.GetValue(Model) is null)
            Console.WriteLine("note: the shipped wav2vec2 is a random-init 0.47M-parameter model (it tests the plumbing): expect chance-level SSL accuracy; pass --model with a LeBenchmark export for real features.");
        baselineFeaturizer.Dispose();

        // Save (ONNX model embedded), reload in a fresh process, compare the scores bit for bit
        string modelPath = Path.Combine(outputFolder, "speech-model.zip");
        SpeechModel.SaveModel(ml, model, train.Schema, modelPath);
        string scoresPath = Path.Combine(outputFolder, "speech-model.scores.bin");
        string listPath = Path.Combine(outputFolder, "speech-model.test.txt");
        File.WriteAllBytes(scoresPath, ChildProcess.ScoreBytes(scored));
        SampleCli.Wrote(scoresPath, "test scores for the reload check");
        File.WriteAllLines(listPath, testRows.Select(r => r.Audio));
        SampleCli.Wrote(listPath, "test recordings for the reload check");
        bool reloadIdentical = ChildProcess.Run(["speech-consume", "--model", modelPath, "--list", listPath, "--scores", scoresPath]) == 0;
        Console.WriteLine($"reload in a fresh process identical: {reloadIdentical}");

        // ONNX export is not available for this component (it is itself an ONNX model behind an audio front end): a clear error
        string onnxExport;
        try
        {
            string onnxPath = Path.Combine(outputFolder, "speech-model.onnx");
            ml.Model.ExportToOnnx(model, test, onnxPath);
            SampleCli.Wrote(onnxPath, "ONNX");
            onnxExport = "exported";
        }
        catch (NotSupportedException e)
        {
            onnxExport = "not supported";
            Console.WriteLine($"ExportToOnnx: {e.Message.Split(':')[0]}: not exportable (expected)");
        }

        // Consume: one prediction through a PredictionEngine
        var output = SpeechModel.Predict(new SpeechModel.ModelInput { Audio = ShippedUtterance });
        Console.WriteLine($"predict {Path.GetFileName(ShippedUtterance)} (French, espeak-ng): '{output.PredictedLabel}' " +
            $"({string.Join(", ", output.Score.Select(s => s.ToString("P1", CultureInfo.InvariantCulture)))})");

        Cli.WriteMetrics(args, new Dictionary<string, object?>
        {
            ["sample"] = "speech",
            ["dataset"] = dataset,
            ["rows_train"] = trainRows.Length,
            ["rows_test"] = testRows.Length,
            ["accuracy"] = metrics.MicroAccuracy,
            ["macro_accuracy"] = metrics.MacroAccuracy,
            ["log_loss"] = metrics.LogLoss,
            ["train_seconds"] = trainSeconds,
            ["audio_seconds"] = stats.AudioSeconds,
            ["rtf"] = stats.RealTimeFactor,
            ["accuracy_logmel_baseline"] = baselineMetrics.MicroAccuracy,
            ["onnx_export"] = onnxExport,
            ["reload_identical"] = reloadIdentical,
        });
        return reloadIdentical ? 0 : 1;
    }

    /// <summary>Child process: load the model in a fresh MLContext and compare its test scores with the parent's.</summary>
    private static int ConsumeInFreshProcess(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Model.Load(args.GetValue(ChildModel)!, out _);
        var files = File.ReadAllLines(args.GetValue(ChildList)!);
        var data = ml.Data.LoadFromEnumerable(files.Select(f => new SpeechModel.ModelInput { Audio = f }).ToArray());
        return ChildProcess.CompareScores(model.Transform(data), args.GetValue(ChildScores)!);
    }
}
