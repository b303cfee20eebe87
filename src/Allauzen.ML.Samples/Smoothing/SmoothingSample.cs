using Allauzen.ML.Evaluation;
using Allauzen.ML.Mlp;
using Allauzen.ML.Plots;
using Allauzen.ML.Smoothing;

namespace Allauzen.ML.Samples.Smoothing;

/// <summary>
/// The `smoothing` sample: train a noise-augmented MLP, export it to ONNX, certify a test subset with Cohen
/// (ONNX Runtime) and, from one sampling pass on the TorchSharp model, with Cohen, CPM, CPM with Bridging's
/// Lipschitz-based radius and LVM-RS (sound and as published); print and plot the certified-accuracy curves.
/// </summary>
public static class SmoothingSample
{
    /// <summary>The radii the certified accuracy is reported at (also used by the certify-cluster sample).</summary>
    internal static readonly double[] Radii = [0, 0.25, 0.5, 0.75, 1.0];

    private static readonly SampleCommand Cli = new("smoothing", data: "digits", epochs: "30 on digits, 8 on fashion-mnist");
    private static readonly Option<double> Sigma = SampleCli.Real("--sigma", 0.25, "σ of the Gaussian noise (training augmentation and certification)", min: 1e-6);
    private static readonly Option<int> N = SampleCli.Int("--n", 10_000, "noise samples per row for the estimation");
    private static readonly Option<int> Rows = SampleCli.Int("--rows", 100, "test rows to certify");
    private static readonly Option<double> Alpha = SampleCli.Real("--alpha", 0.001, "failure probability α of each certificate", min: 1e-12);

    /// <summary>`smoothing`: certified accuracy of a noise-trained MLP under randomized smoothing, five certifiers.</summary>
    public static Command Command { get; } = Cli.Create(
        "Randomized smoothing: train a noise-augmented MLP, certify a test subset with Cohen (ONNX Runtime), CPM, Bridging and LVM-RS, plot the curves.",
        Run, Sigma, N, Rows, Alpha);

    private static int Run(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        double sigma = args.GetValue(Sigma), alpha = args.GetValue(Alpha);
        int n = args.GetValue(N), rows = args.GetValue(Rows);
        if (alpha >= 1)
            throw new UsageException($"Invalid value '{alpha}' for option '--alpha': must be below 1.");
        var (trainRaw, testRaw, dataset) = SampleData.Load(ml, Cli.Data(args));
        string outputFolder = Cli.OutputFolder(args);
        var prep = SmoothingModel.BuildPreparation(ml, trainRaw);
        var train = prep.Transform(trainRaw);
        var test = ml.Data.TakeRows(ml.Data.ShuffleRows(prep.Transform(testRaw), seed: 1), rows);
        test = ml.Data.Cache(ml.Transforms.SelectColumns("Features", "Label").Fit(test).Transform(test));
        int d = ((VectorDataViewType)train.Schema["Features"].Type).Size;

        // 1. Train the base model on Gaussian-augmented data (σ as at certification).
        var sw = Stopwatch.StartNew();
        bool digits = dataset == "digits";
        var augmented = SmoothingModel.Augment(ml, train, sigma, copies: digits ? 3 : 1, seed: 1);
        int? epochs = Cli.Epochs(args);
        var options = digits
            ? new MlpOptions { HiddenSizes = [128], Epochs = epochs ?? 30, BatchSize = 64, LearningRate = 2e-3 }
            : new MlpOptions { HiddenSizes = [256], Epochs = epochs ?? 8, BatchSize = 128, LearningRate = 1e-3 };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{dataset}: training the base MLP on Gaussian-augmented data (σ = {sigma}), {options.Epochs} epochs"));
        MlpTransformer mlp;
        using (var progress = new ConsoleProgress("training", options.Epochs))
        {
            options.Progress = progress.Epochs();
            mlp = SmoothingModel.Train(ml, augmented, options);
        }
        double clean = ml.MulticlassClassification.Evaluate(mlp.Transform(test)).MicroAccuracy;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{dataset}: base MLP trained with σ = {sigma} noise in {sw.Elapsed.TotalSeconds:F1} s; clean accuracy on the {rows}-row subset {clean:P1}"));

        // 2. Export the base model to ONNX and certify with Cohen through ONNX Runtime.
        string onnxPath = Path.Combine(outputFolder, $"smoothing-base-{dataset}.onnx");
        ml.Model.ExportToOnnx(mlp, ml.Transforms.SelectColumns("Features").Fit(test).Transform(test), onnxPath);
        SampleCli.Wrote(onnxPath, "ONNX base model");
        var cohenOnnx = SmoothingModel.BuildCertifier(ml, new RandomizedSmoothingOptions
        {
            BaseModelOnnxPath = onnxPath, OnnxInputName = "Features", OnnxOutputName = "Score.output", BaseModelOutputsProbabilities = true,
            Sigma = sigma, SelectionSamples = 100, EstimationSamples = n, Alpha = alpha, Method = SmoothingMethod.Cohen, Seed = 1,
        }).Fit(test);
        sw.Restart();
        CertifiedAccuracyMetrics cohenCurve;
        using (var progress = new ConsoleProgress("Cohen via ONNX Runtime, rows", rows, TimeSpan.FromSeconds(5)))
        {
            cohenOnnx.Progress = RowProgress(progress);
            cohenCurve = ml.MulticlassClassification.EvaluateCertified(ml.Data.Cache(cohenOnnx.Transform(test)), radii: Radii, saturationRadius: cohenOnnx.SaturationRadius);
            cohenOnnx.Progress = null;
        }
        double onnxSeconds = sw.Elapsed.TotalSeconds;
        double samplesPerSecond = rows * (100.0 + n) / onnxSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Cohen via ONNX Runtime: {rows} rows × (100 + {n}) samples in {onnxSeconds:F1} s = {samplesPerSecond:N0} samples/s"));

        // 3. One sampling pass on the TorchSharp model (votes + the sound LVM maps), then certify it four ways.
        var samplerOptions = new RandomizedSmoothingOptions
        {
            BaseModel = mlp, Sigma = sigma, SelectionSamples = 100, EstimationSamples = n, Alpha = alpha, Method = SmoothingMethod.LvmSound, Seed = 2,
        };
        sw.Restart();
        IDataView stats;
        using (var progress = new ConsoleProgress("sampling pass (TorchSharp), rows", rows, TimeSpan.FromSeconds(5)))
        {
            samplerOptions.Progress = RowProgress(progress);
            stats = ml.Data.Cache(ml.Transforms.SampleRandomizedSmoothing(samplerOptions).Fit(test).Transform(test));
            stats.GetColumn<ulong>(SmoothingColumnNames.NoiseSeed).Count(); // run the sampling pass once
        }
        double torchSeconds = sw.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"sampling pass (TorchSharp, votes + {SimplexMap.SoundDefault.Count} simplex maps): {torchSeconds:F1} s = {rows * (100.0 + n) / torchSeconds:N0} samples/s"));
        double cap = SmoothingCertifier.SaturationRadius(sigma, n, alpha);
        var curves = new Dictionary<string, CertifiedAccuracyMetrics> { ["Cohen (ONNX)"] = cohenCurve };
        foreach (var method in new[] { SmoothingMethod.Cohen, SmoothingMethod.BridgingCpm, SmoothingMethod.LvmSound, SmoothingMethod.LvmAsPublished })
        {
            var certified = ml.Transforms.CertifySmoothingStatistics(new SmoothingCertifierOptions { Method = method, Alpha = alpha, Sigma = sigma })
                .Fit(stats).Transform(stats);
            curves[method.ToString()] = ml.MulticlassClassification.EvaluateCertified(certified, radii: Radii, saturationRadius: cap);
        }
        // Bridging's Lipschitz-based radius from the same pass: the first sampled map is softmax(0.5·logits), and the
        // MLP's certified Gram-iteration bound gives L (a product of layer norms: loose, so the radius gains little).
        double lipschitz = mlp.LipschitzBound();
        var lipschitzCertified = ml.Transforms.CertifySmoothingStatistics(new SmoothingCertifierOptions
        {
            Method = SmoothingMethod.BridgingCpm, Alpha = alpha, Sigma = sigma, LipschitzConstant = lipschitz, LipschitzSoftmaxScale = SimplexMap.SoundDefault[0].T,
        }).Fit(stats).Transform(stats);
        curves["BridgingCpmLipschitz"] = ml.MulticlassClassification.EvaluateCertified(lipschitzCertified, radii: Radii, saturationRadius: cap);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"BridgingCpmLipschitz: CPM buckets on softmax({SimplexMap.SoundDefault[0].T}·logits), certified L = {lipschitz:G4} (MlpTransformer.LipschitzBound)"));
        foreach (var (name, curve) in curves)
        {
            Console.WriteLine($"\n{name}");
            Console.Write(curve.ToTable(name));
        }
        Console.WriteLine("(LvmAsPublished uses α/K per bound as the reference code: not a valid level-α certificate; shown for parity.)");
        string png = Path.Combine(outputFolder, $"smoothing-{dataset}.png");
        curves.SavePlot(png, $"Randomized smoothing on {dataset}, σ = {sigma}, n = {n}, α = {alpha}");
        SampleCli.Wrote(png, "certified-accuracy plot");

        // 4. Save the ONNX-based certifier (the ONNX bytes are embedded) and certify one input with a PredictionEngine.
        string modelPath = Path.Combine(outputFolder, $"smoothing-{dataset}.zip");
        SmoothingModel.SaveModel(ml, cohenOnnx, test.Schema, modelPath);
        var first = ml.Data.CreateEnumerable<SmoothingModel.PreparedRow>(test, false, schemaDefinition: SmoothingModel.Definition(d, (uint)((KeyDataViewType)test.Schema["Label"].Type).Count)).First();
        var output = SmoothingModel.Predict(new SmoothingModel.ModelInput { Features = first.Features });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"reloaded certifier, one input: true key {first.Label}, certified key {output.PredictedLabel} (abstained {output.Abstained}), radius {output.CertifiedRadius:F3}"));

        Cli.WriteMetrics(args, new Dictionary<string, object?>
        {
            ["sample"] = "smoothing",
            ["dataset"] = dataset,
            ["sigma"] = sigma,
            ["alpha"] = alpha,
            ["n"] = n,
            ["rows"] = rows,
            ["clean_accuracy"] = clean,
            ["saturation_radius"] = cap,
            ["lipschitz_constant"] = lipschitz,
            ["certified_accuracy"] = curves.ToDictionary(kv => kv.Key, kv => kv.Value.Curve.ToDictionary(p => p.Radius.ToString("0.##", CultureInfo.InvariantCulture), p => p.CertifiedAccuracy)),
            ["abstain_rate"] = curves.ToDictionary(kv => kv.Key, kv => kv.Value.AbstainRate),
            ["samples_per_second"] = samplesPerSecond,
            ["samples_per_second_torch_with_maps"] = rows * (100.0 + n) / torchSeconds,
        });
        return 0;
    }

    private static SyncProgress<SmoothingProgress> RowProgress(ConsoleProgress progress) => new(p => progress.Report(p.Rows,
        string.Create(CultureInfo.InvariantCulture, $"{p.Samples:N0} samples, {p.Samples / Math.Max(p.Elapsed.TotalSeconds, 1e-9):N0} samples/s")));
}
