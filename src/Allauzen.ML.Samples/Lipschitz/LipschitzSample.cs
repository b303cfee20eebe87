using Allauzen.ML.Datasets;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Lipschitz;
using Allauzen.ML.Mlp;
using Allauzen.ML.Plots;

namespace Allauzen.ML.Samples.Lipschitz;

/// <summary>
/// The `lipschitz` sample: train SLL and CPL certified classifiers (Fashion-MNIST, or digits when absent), report clean and
/// certified accuracy at ε ∈ {36, 72, 108, 255}/255, compare with a plain Mlp (its certificate from its own Lipschitz bound,
/// and its accuracy under random L2 noise), save/reload, export to ONNX and check parity.
/// </summary>
public static class LipschitzSample
{
    private static readonly double[] Radii = [0, 36 / 255.0, 72 / 255.0, 108 / 255.0, 1.0];

    private static readonly SampleCommand Cli = new("lipschitz", data: "fashion-mnist", epochs: "30 on digits, 4 on fashion-mnist");
    private static readonly Option<int> TrainRows = SampleCli.Int("--train-rows", 10_000, "Fashion-MNIST training rows");
    private static readonly Option<int> TestRows = SampleCli.Int("--test-rows", 2_000, "Fashion-MNIST test rows");
    private static readonly Option<bool> Conv = SampleCli.Option("--conv", false, "convolutional SLL/CPL layers instead of dense ones");

    /// <summary>`lipschitz`: certified accuracy of SLL and CPL classifiers against a plain MLP.</summary>
    public static Command Command { get; } = Cli.Create(
        "Lipschitz certified classifiers (SLL, CPL) vs a plain MLP: clean and certified accuracy, plots, save/reload, ONNX parity.",
        Run, TrainRows, TestRows, Conv);

    private static int Run(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        bool conv = args.GetValue(Conv);
        var (train, test, dataset, side) = Load(ml, Cli.Data(args), args.GetValue(TrainRows), args.GetValue(TestRows));
        int features = side * side;
        Console.WriteLine($"Lipschitz classifiers on {dataset}: {Count(train)} training rows, {Count(test)} test rows, {features} features in [0, 1]");
        string outputFolder = Cli.OutputFolder(args);
        int? epochs = Cli.Epochs(args);

        var results = new Dictionary<string, (CertifiedAccuracyMetrics Metrics, double L, double Noise, double Seconds)>();
        CertifiedAccuracyMetrics? sllPairwise = null;
        ITransformer? sllModel = null;
        foreach (var arch in new[] { LipschitzArchitecture.Sll, LipschitzArchitecture.Cpl })
        {
            var o = new LipschitzClassifierOptions
            {
                Architecture = arch, Depth = conv ? 3 : 3, Width = conv ? 16 : 256, Epochs = epochs ?? (dataset == "digits" ? 30 : 4),
                BatchSize = 128, LearningRate = 3e-3, LearningRateSchedule = LearningRateSchedule.Cosine, Offset = Math.Sqrt(2) / 2, Seed = 1,
                Convolutional = conv, ImageHeight = conv ? side : 0, ImageWidth = conv ? side : 0, ImageChannels = 1,
                PoolSize = side >= 28 ? 4 : 2, DenseDepth = 1, DenseWidth = 256,
            };
            Console.WriteLine($"{arch} ({(conv ? "conv" : "dense")}, depth {o.Depth}, width {o.Width}):");
            var sw = Stopwatch.StartNew();
            ITransformer model;
            using (var progress = new ConsoleProgress($"training {arch}", o.Epochs))
            {
                o.Progress = progress.Epochs();
                model = LipschitzModel.Train(ml, train, o);
            }
            double seconds = sw.Elapsed.TotalSeconds;
            var lip = FindLipschitz(model);
            lip.CheckInputRange(test);
            // Evaluate before the final MapKeyToValue: the evaluator compares key-typed labels.
            var keyed = test;
            foreach (var t in ((IEnumerable<ITransformer>)model).Take(2))
                keyed = t.Transform(keyed);
            var m = ml.MulticlassClassification.EvaluateCertified(keyed, radii: Radii);
            double noise = NoiseAccuracy(ml, model, test, 108 / 255.0);
            Console.WriteLine($"  certified Lipschitz constant L = {lip.LipschitzConstant:G6} (layer bounds: {string.Join(", ", lip.LayerBounds.Select(b => b.ToString("G6", CultureInfo.InvariantCulture)))})");
            Console.Write(m.ToTable());
            string png = Path.Combine(outputFolder, $"lipschitz-{arch.ToString().ToLowerInvariant()}-{dataset}.png");
            m.SavePlot(png, title: $"{arch} on {dataset}");
            SampleCli.Wrote(png, "certified-accuracy plot");
            results[arch.ToString()] = (m, lip.LipschitzConstant, noise, seconds);
            if (arch == LipschitzArchitecture.Sll)
            {
                // The same weights certified with the last-layer pairwise rule (1-Lipschitz body, unit-norm head rows): never smaller.
                using var pairwise = lip.WithRadiusRule(LipschitzRadiusRule.LastLayerPairwise);
                var keyedInput = ((IEnumerable<ITransformer>)model).First().Transform(test);
                sllPairwise = ml.MulticlassClassification.EvaluateCertified(pairwise.Transform(keyedInput), radii: Radii);
                Console.WriteLine("  with the last-layer pairwise radius rule:");
                Console.Write(sllPairwise.ToTable());
            }
            if (arch == LipschitzArchitecture.Sll)
                sllModel = model;
        }

        // Baseline: a plain Mlp. Its certificate uses its own Lipschitz bound (product of layer norms), which is loose.
        var mlpOptions = new MlpOptions { HiddenSizes = [256], Epochs = epochs ?? (dataset == "digits" ? 30 : 4), BatchSize = 128, LearningRate = 1e-3, Seed = 1 };
        TransformerChain<MlpTransformer> mlp;
        using (var progress = new ConsoleProgress("training the Mlp baseline", mlpOptions.Epochs))
        {
            mlpOptions.Progress = progress.Epochs();
            mlp = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.Mlp(mlpOptions)).Fit(train);
        }
        var mlpTransformer = mlp.LastTransformer;
        double mlpL = mlpTransformer.LipschitzBound();
        var mlpScored = mlp.Transform(test);
        var mlpMetrics = ml.MulticlassClassification.Evaluate(mlpScored);
        double mlpCert36 = MlpCertified(mlpScored, mlpL, 36 / 255.0);
        double mlpNoise = NoiseAccuracy(ml, mlp, test, 108 / 255.0);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Mlp baseline: accuracy {mlpMetrics.MicroAccuracy:P2}, Lipschitz bound {mlpL:G4}, certified at 36/255 {mlpCert36:P2}, accuracy under random L2 noise of norm 108/255 {mlpNoise:P2}"));
        foreach (var (name, r) in results)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name}: accuracy {r.Metrics.Accuracy:P2}, certified 36/72/108/255: {r.Metrics.At(Radii[1]):P2} / {r.Metrics.At(Radii[2]):P2} / {r.Metrics.At(Radii[3]):P2} / {r.Metrics.At(1.0):P2}, under noise {r.Noise:P2}, L {r.L:G6}, train {r.Seconds:F1} s"));
        }

        // Save, reload, ONNX parity for the SLL model
        string modelPath = Path.Combine(outputFolder, $"lipschitz-sll-{dataset}.zip");
        LipschitzModel.SaveModel(ml, sllModel!, train.Schema, modelPath);
        var ml2 = new MLContext(seed: 2);
        var reloaded = ml2.Model.Load(modelPath, out _);
        bool identical = Column(sllModel!.Transform(test), "CertifiedRadius").SequenceEqual(Column(reloaded.Transform(test), "CertifiedRadius"));
        string onnxPath = Path.Combine(outputFolder, $"lipschitz-sll-{dataset}.onnx");
        double onnxDiff = OnnxParity.ExportAndCompare(ml, sllModel!, test, onnxPath);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"reload identical: {identical}; max |Score(ML.NET) − Score(ONNX Runtime)| = {onnxDiff:E2}"));

        // Consume one prediction with the generated-style consumption code (loads the saved model)
        var first = ml.Data.CreateEnumerable<ImageRow>(test, reuseRowObject: false).First();
        var output = LipschitzModel.Predict(new LipschitzModel.ModelInput { Label = first.Label, Features = first.Features });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"predict: true '{first.Label}', predicted '{output.PredictedLabel}', certified radius {output.CertifiedRadius:F4} ({output.CertifiedRadius * 255:F1}/255)"));

        var sll = results["Sll"];
        Cli.WriteMetrics(args, new Dictionary<string, object?>
        {
            ["sample"] = "lipschitz",
            ["dataset"] = dataset,
            ["convolutional"] = conv,
            ["accuracy"] = sll.Metrics.Accuracy,
            ["certified_accuracy_36"] = sll.Metrics.At(Radii[1]),
            ["certified_accuracy_72"] = sll.Metrics.At(Radii[2]),
            ["certified_accuracy_108"] = sll.Metrics.At(Radii[3]),
            ["certified_accuracy_255"] = sll.Metrics.At(1.0),
            ["lipschitz_constant"] = sll.L,
            ["pairwise_certified_accuracy_36"] = sllPairwise!.At(Radii[1]),
            ["pairwise_certified_accuracy_72"] = sllPairwise.At(Radii[2]),
            ["pairwise_certified_accuracy_108"] = sllPairwise.At(Radii[3]),
            ["cpl_accuracy"] = results["Cpl"].Metrics.Accuracy,
            ["cpl_certified_accuracy_36"] = results["Cpl"].Metrics.At(Radii[1]),
            ["cpl_certified_accuracy_72"] = results["Cpl"].Metrics.At(Radii[2]),
            ["cpl_certified_accuracy_108"] = results["Cpl"].Metrics.At(Radii[3]),
            ["cpl_lipschitz_constant"] = results["Cpl"].L,
            ["mlp_accuracy"] = mlpMetrics.MicroAccuracy,
            ["mlp_lipschitz_bound"] = mlpL,
            ["mlp_certified_accuracy_36"] = mlpCert36,
            ["mlp_noise_accuracy_108"] = mlpNoise,
            ["sll_noise_accuracy_108"] = sll.Noise,
            ["train_seconds_sll"] = sll.Seconds,
            ["train_seconds_cpl"] = results["Cpl"].Seconds,
            ["onnx_max_abs_diff"] = onnxDiff,
            ["reload_identical"] = identical,
        });
        return identical && onnxDiff <= 1e-5 ? 0 : 1;
    }

    public sealed class ImageRow
    {
        public string Label { get; set; } = "";

        public float[] Features { get; set; } = [];
    }

    /// <summary>Pixels scaled to [0, 1] with a fixed factor (so an L2 radius means the same thing for every pixel).</summary>
    private static (IDataView Train, IDataView Test, string Name, int Side) Load(MLContext ml, string data, int trainRows, int testRows)
    {
        IDataView View(IEnumerable<ImageRow> rows, int n)
        {
            var def = SchemaDefinition.Create(typeof(ImageRow));
            def[nameof(ImageRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, n);
            return ml.Data.Cache(ml.Data.LoadFromEnumerable(rows.ToList(), def));
        }
        if (data == "fashion-mnist" && FashionMnist.IsAvailable())
        {
            IEnumerable<ImageRow> Rows(bool train, int max) => FashionMnist.Read(train, maxRows: max)
                .Select(i => new ImageRow { Label = i.Label, Features = i.Features.Select(v => v / 255f).ToArray() });
            return (View(Rows(true, trainRows), 784), View(Rows(false, testRows), 784), "fashion-mnist", 28);
        }
        if (data == "fashion-mnist")
            Console.WriteLine($"Fashion-MNIST not found in {FashionMnist.DebianDirectory} (apt-get install dataset-fashion-mnist); using digits.");
        else if (data != "digits")
            throw new UsageException($"Unknown --data '{data}': use digits or fashion-mnist.");
        var all = ml.Data.LoadFromTextFile<DigitRow>(SampleData.DigitsPath, separatorChar: ',', hasHeader: false);
        var split = ml.Data.TrainTestSplit(all, testFraction: 0.2, seed: 1);
        IEnumerable<ImageRow> Digits(IDataView v) => ml.Data.CreateEnumerable<DigitRow>(v, reuseRowObject: false)
            .Select(r => new ImageRow { Label = r.Label, Features = r.Features.Select(x => x / 16f).ToArray() });
        return (View(Digits(split.TrainSet), 64), View(Digits(split.TestSet), 64), "digits", 8);
    }

    private static LipschitzClassifierTransformer FindLipschitz(ITransformer model) =>
        ((IEnumerable<ITransformer>)model).OfType<LipschitzClassifierTransformer>().Single();

    private static long Count(IDataView v) => v.GetRowCount() ?? v.GetColumn<string>("Label").LongCount();

    private static float[] Column(IDataView v, string name) => v.GetColumn<float>(name).ToArray();

    /// <summary>Accuracy on test images with Gaussian noise rescaled to L2 norm ε (a weak, black-box robustness check).</summary>
    private static double NoiseAccuracy(MLContext ml, ITransformer model, IDataView test, double eps)
    {
        var rng = new Random(7);
        var rows = ml.Data.CreateEnumerable<ImageRow>(test, reuseRowObject: false).Select(r =>
        {
            var noise = r.Features.Select(_ => Gaussian(rng)).ToArray();
            double norm = Math.Sqrt(noise.Sum(x => x * x));
            return new ImageRow { Label = r.Label, Features = r.Features.Select((x, j) => (float)(x + eps * noise[j] / norm)).ToArray() };
        }).ToList();
        var def = SchemaDefinition.Create(typeof(ImageRow));
        def[nameof(ImageRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, rows[0].Features.Length);
        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows, def));
        var truth = rows.Select(r => r.Label).ToArray();
        var predicted = PredictedNames(scored);
        return truth.Zip(predicted).Count(t => t.First == t.Second) / (double)truth.Length;
    }

    private static string[] PredictedNames(IDataView scored)
    {
        var col = scored.Schema["PredictedLabel"];
        if (col.Type is TextDataViewType)
            return scored.GetColumn<string>(col).ToArray();
        VBuffer<ReadOnlyMemory<char>> names = default;
        col.Annotations.GetValue("KeyValues", ref names);
        var n = names.DenseValues().Select(x => x.ToString()).ToArray();
        return scored.GetColumn<uint>(col).Select(k => k == 0 ? "" : n[k - 1]).ToArray();
    }

    /// <summary>Mlp certified accuracy from its global bound: radius = (top1 − top2 logit)/(√2·L), logits recovered as log-probabilities.</summary>
    private static double MlpCertified(IDataView scored, double L, double eps)
    {
        var label = scored.GetColumn<uint>("Label").ToArray();
        var pred = scored.GetColumn<uint>("PredictedLabel").ToArray();
        var score = scored.GetColumn<float[]>("Score").ToArray();
        int ok = 0;
        for (int i = 0; i < label.Length; i++)
        {
            var s = score[i].OrderDescending().ToArray();
            double margin = Math.Log(Math.Max(s[0], 1e-30)) - Math.Log(Math.Max(s[1], 1e-30));
            if (label[i] == pred[i] && margin / (Math.Sqrt(2) * L) > eps)
                ok++;
        }
        return ok / (double)label.Length;
    }

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
