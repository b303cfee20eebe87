using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Allauzen.ML.Samples.Common;
using Allauzen.ML.Speech;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Speech;

/// <summary>
/// The `speech` sample: featurize a folder of WAVs with a speech SSL encoder (ONNX), train a classifier on the pooled
/// features (voice or language id on an espeak-ng corpus, or voice id on excerpts of the shipped utterance), evaluate,
/// compare with a log-mel baseline, save, reload in a fresh process, and predict one file.
/// </summary>
/// <remarks>
/// Options: --data FOLDER (one sub-folder of WAVs per class; default: synthesised with espeak-ng when installed, else
/// cut from the shipped utterance), --model FILE.onnx (default: the shipped random-init tiny wav2vec2, which tests the
/// plumbing, not speech quality: export a LeBenchmark model as the README explains for real features),
/// --task language|voice (espeak-ng corpus, default language) or shipped (no espeak-ng), --layer N|average|last, --pooling mean|meanstd|max, --metrics-out FILE, --output DIR.
/// </remarks>
public static class SpeechSample
{
    public static string ShippedModel => Path.Combine(AppContext.BaseDirectory, "Data", "Speech", "w2v2_tiny.onnx");

    public static string ShippedUtterance => Path.Combine(AppContext.BaseDirectory, "Data", "Speech", "utt16k.wav");

    public static int Run(SampleArgs args)
    {
        var ml = new MLContext(seed: 1);
        ml.UseAllauzen();
        string onnx = args.Get("model") ?? ShippedModel;
        Directory.CreateDirectory(args.Output);

        // Corpus
        List<Recording> corpus;
        string dataset;
        if (args.Get("data") is { } folder && Directory.Exists(folder))
        {
            corpus = SpeechCorpus.FromFolder(folder);
            dataset = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
        }
        else if (args.Get("task") != "shipped" && SpeechCorpus.HasEspeak())
        {
            string task = args.Get("task") ?? "language";
            if (task is not ("voice" or "language"))
                throw new ArgumentException($"Unknown --task '{task}': use language, voice or shipped.") { Source = SampleArgs.UsageSource };
            corpus = SpeechCorpus.Synthesize(Path.Combine(args.Output, $"speech-corpus-espeak-{task}"), task);
            dataset = $"espeak-{task}";
        }
        else
        {
            if (args.Get("task") != "shipped")
                Console.WriteLine("espeak-ng not found (apt-get install espeak-ng): using excerpts of the shipped utterance, two voices.");
            corpus = SpeechCorpus.FromShippedUtterance(ShippedUtterance, Path.Combine(args.Output, "speech-corpus-shipped"));
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
        if (args.Get("layer") is { } layer)
            options.Layers = layer == "average" ? SslLayers.Average : layer == "last" ? SslLayers.Last : SslLayers.Layer(int.Parse(layer, CultureInfo.InvariantCulture));
        if (args.Get("pooling") is { } pooling)
            options.Pooling = Enum.Parse<SslPooling>(pooling, ignoreCase: true);
        options.Progress = new Progress<SslFeaturizerProgress>(p =>
        {
            if (p.Rows % 64 == 0)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  featurized {p.Rows} recordings, {p.AudioSeconds:F1} s of audio, {p.RealTimeFactor:F1}x real time"));
        });
        var sw = Stopwatch.StartNew();
        var (model, featurizer) = SpeechModel.Train(ml, train, options);
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
        if (args.Get("model") is null)
            Console.WriteLine("note: the shipped wav2vec2 is a random-init 0.47M-parameter model (it tests the plumbing): expect chance-level SSL accuracy; pass --model with a LeBenchmark export for real features.");
        baselineFeaturizer.Dispose();

        // Save (ONNX model embedded), reload in a fresh process, compare the scores bit for bit
        string modelPath = Path.Combine(args.Output, "speech-model.zip");
        SpeechModel.SaveModel(ml, model, train.Schema, modelPath);
        string scoresPath = Path.Combine(args.Output, "speech-model.scores.bin");
        string listPath = Path.Combine(args.Output, "speech-model.test.txt");
        File.WriteAllBytes(scoresPath, ToBytes(ReadScores(scored)));
        File.WriteAllLines(listPath, testRows.Select(r => r.Audio));
        bool reloadIdentical = RunFreshProcess(modelPath, listPath, scoresPath);
        Console.WriteLine($"saved {modelPath} ({new FileInfo(modelPath).Length:N0} bytes); reload in a fresh process identical: {reloadIdentical}");

        // ONNX export is not available for this component (it is itself an ONNX model behind an audio front end): a clear error
        string onnxExport;
        try
        {
            ml.Model.ExportToOnnx(model, test, Path.Combine(args.Output, "speech-model.onnx"));
            onnxExport = "exported";
        }
        catch (NotSupportedException e)
        {
            onnxExport = "not supported";
            Console.WriteLine($"ExportToOnnx: {e.Message.Split(':')[0]}: not exportable (expected)");
        }

        // Consume: one prediction through a PredictionEngine
        var ml2 = new MLContext(seed: 1);
        var reloaded = SpeechModel.LoadModel(ml2, modelPath);
        var output = SpeechModel.Predict(ml2, reloaded, ShippedUtterance);
        Console.WriteLine($"predict {Path.GetFileName(ShippedUtterance)} (French, espeak-ng): '{output.PredictedLabel}' " +
            $"({string.Join(", ", output.Score.Select(s => s.ToString("P1", CultureInfo.InvariantCulture)))})");

        MetricsFile.Write(args.MetricsOut, new Dictionary<string, object?>
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
    public static int ConsumeInFreshProcess(SampleArgs args)
    {
        var ml = new MLContext(seed: 1);
        var model = SpeechModel.LoadModel(ml, args.Get("model")!);
        var files = File.ReadAllLines(args.Get("list")!);
        var data = ml.Data.LoadFromEnumerable(files.Select(f => new SpeechModel.ModelInput { Audio = f }).ToArray());
        var actual = ToBytes(ReadScores(model.Transform(data)));
        var expected = File.ReadAllBytes(args.Get("scores")!);
        bool same = expected.AsSpan().SequenceEqual(actual);
        Console.WriteLine($"  fresh process: {actual.Length / 4} score values, identical: {same}");
        return same ? 0 : 1;
    }

    private static bool RunFreshProcess(string modelPath, string listPath, string scoresPath)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            psi.ArgumentList.Add(typeof(SpeechSample).Assembly.Location);
        foreach (var a in new[] { "speech-consume", "--model", modelPath, "--list", listPath, "--scores", scoresPath })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    private static float[] ReadScores(IDataView scored) => scored.GetColumn<float[]>("Score").SelectMany(s => s).ToArray();

    private static byte[] ToBytes(float[] values) => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}
