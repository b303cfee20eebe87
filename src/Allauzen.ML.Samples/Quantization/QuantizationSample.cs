using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Quantization;
using Allauzen.ML.Samples.Common;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Allauzen.ML.Samples.Quantization;

/// <summary>
/// The `quantization` sample: conditional distribution quantization on the two-branch toy (distortion against the noise
/// floor, points and weights at x = 0.5, a plot of the branches) and on Old Faithful (eruption duration → waiting time:
/// distortion against n = 1, Score RMSE against ML.NET's SDCA and FastTree), then save, reload, ONNX export with parity, and one prediction.
/// </summary>
public static class QuantizationSample
{
    private static readonly Option<int?> Epochs = SampleCli.Epochs("40 on the toy, 150 on Old Faithful");
    private static readonly Option<int> Points = SampleCli.Int("--points", 4, "quantization points on Old Faithful");
    private static readonly Option<string?> MetricsOut = SampleCli.MetricsOut();
    private static readonly Option<string?> Output = SampleCli.Output("quantization");

    /// <summary>`quantization`: toy and Old Faithful, save/reload, ONNX parity, predict.</summary>
    public static Command Command { get; } = SampleCli.Sample("quantization",
        "Conditional distribution quantization: the ±|x| toy and Old Faithful; distortion, W2, coverage, ONNX parity, predict.",
        Run, Epochs, Points, MetricsOut, Output);

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static int Run(ParseResult args)
    {
        var ml = new MLContext(seed: 1);
        string folder = SampleCli.OutputFolder(args.GetValue(Output), "quantization");
        int? epochs = args.GetValue(Epochs);
        var metrics = new Dictionary<string, object?> { ["sample"] = "quantization" };

        // 1. The toy y = ±|x| + 0.05ε: two branches of weight 1/2; the best distortion with two points is σ² = 0.0025.
        var toyTrain = ml.Data.LoadFromEnumerable(TwoBranchToy.Generate(3000, 1));
        var toyTestRows = TwoBranchToy.Generate(2000, 2, referenceSamples: 256);
        var toyTest = ml.Data.LoadFromEnumerable(toyTestRows);
        var toyOptions = new ConditionalQuantizationOptions { NumberOfPoints = 2, HiddenSizes = [32, 32], Epochs = epochs ?? 40, LearningRate = 3e-3, Seed = 1 };
        var sw = Stopwatch.StartNew();
        ConditionalQuantizationTransformer toy;
        using (var progress = new ConsoleProgress("toy", toyOptions.Epochs))
        {
            toyOptions.Progress = progress.Epochs();
            toy = ml.Regression.Trainers.ConditionalQuantization(toyOptions).Fit(toyTrain);
        }
        var tm = ml.Regression.EvaluateQuantization(toy.Transform(toyTest), referenceSamplesColumnName: "ReferenceSamples");
        // The oracle: the exact two-point law (±|x|, 1/2 each) scored against the same reference samples.
        double oracleW2 = Math.Sqrt(toyTestRows.Average(r => QuantizationEvaluator.Wasserstein2Squared(Oracle(r), [0.5f, 0.5f], r.ReferenceSamples)));
        double oracleEnergy = toyTestRows.Average(r => QuantizationEvaluator.EnergyDistance(Oracle(r), [0.5f, 0.5f], r.ReferenceSamples));
        var (p05, w05) = toy.Predict([0.5f]);
        Console.WriteLine(F($"toy, n = 2 sorted heads: held-out distortion {tm.Distortion:F5} (noise floor 0.00250), W2 {tm.Wasserstein2:F4} (exact law: {oracleW2:F4}), energy distance {tm.EnergyDistance:F5} (exact law: {oracleEnergy:F5}), {sw.Elapsed.TotalSeconds:F1} s"));
        Console.WriteLine(F($"toy at x = 0.5: points ({p05[0]:F3}, {p05[1]:F3}), weights ({w05[0]:F3}, {w05[1]:F3}); truth (-0.5, 0.5) with 1/2 each"));
        SavePlot(toy, toyTestRows, Path.Combine(folder, "quantization-toy.png"));
        metrics["toy_distortion"] = tm.Distortion;
        metrics["toy_w2"] = tm.Wasserstein2;
        metrics["toy_w2_exact_law"] = oracleW2;
        metrics["toy_energy"] = tm.EnergyDistance;
        metrics["toy_points_at_0.5"] = p05;
        metrics["toy_weights_at_0.5"] = w05;

        // 2. Old Faithful: eruption duration → waiting time. Short eruptions are followed by short waits, long by long, and
        //    durations near 3 minutes by either: the conditional law is bimodal there.
        var all = ml.Data.LoadFromTextFile<QuantizationModel.ModelInput>(QuantizationModel.DataPath, separatorChar: ',', hasHeader: true);
        var split = ml.Data.TrainTestSplit(all, testFraction: 0.3, seed: 7);
        int n = args.GetValue(Points);
        double Distortion(int points, out ITransformer model)
        {
            model = QuantizationModel.Train(ml, split.TrainSet, new ConditionalQuantizationOptions
            {
                NumberOfPoints = points, HiddenSizes = [32, 32], Epochs = epochs ?? 150, LearningRate = 3e-3, BatchSize = 32, Seed = 1,
            });
            return ml.Regression.EvaluateQuantization(model.Transform(split.TestSet), labelColumnName: "Waiting").Distortion;
        }
        double d1 = Distortion(1, out _);
        double dn = Distortion(n, out var faithful);
        var scored = faithful.Transform(split.TestSet);
        var fm = ml.Regression.EvaluateQuantization(scored, labelColumnName: "Waiting");
        // ML.NET's own regressors on the same features and split, with their default settings: SDCA (linear) and FastTree
        // (boosted trees). They predict the mean only, so only Score RMSE compares.
        double Baseline(IEstimator<ITransformer> trainer) => ml.Regression.Evaluate(ml.Transforms.Concatenate("Features", "Eruptions")
            .Append(ml.Transforms.NormalizeMinMax("Features")).Append(trainer).Fit(split.TrainSet).Transform(split.TestSet),
            labelColumnName: "Waiting").RootMeanSquaredError;
        double sdcaRmse = Baseline(ml.Regression.Trainers.Sdca(labelColumnName: "Waiting"));
        double fastTreeRmse = Baseline(ml.Regression.Trainers.FastTree(labelColumnName: "Waiting"));
        double rmse = ml.Regression.Evaluate(scored, labelColumnName: "Waiting").RootMeanSquaredError;
        Console.WriteLine(F($"Old Faithful (272 rows, 30 % held out): distortion n = 1 {d1:F2}, n = {n} {dn:F2} (min²); Score RMSE {rmse:F2} vs SDCA {sdcaRmse:F2}, FastTree {fastTreeRmse:F2} min; 90 % interval coverage {fm.IntervalCoverage:P0}, mean width {fm.MeanIntervalWidth:F1} min"));
        metrics["faithful_distortion_n1"] = d1;
        metrics["faithful_distortion"] = dn;
        metrics["faithful_points"] = n;
        metrics["faithful_rmse"] = rmse;
        metrics["faithful_sdca_rmse"] = sdcaRmse;
        metrics["faithful_fasttree_rmse"] = fastTreeRmse;
        metrics["faithful_coverage_90"] = fm.IntervalCoverage;

        // 3. Save, reload in a fresh MLContext (no registration call), compare; ONNX export and parity.
        string modelPath = Path.Combine(folder, "quantization-faithful.zip");
        QuantizationModel.SaveModel(ml, faithful, split.TrainSet.Schema, modelPath);
        var reloaded = new MLContext(seed: 2).Model.Load(modelPath, out _);
        bool identical = Read(scored, "QuantizationPoints").SequenceEqual(Read(reloaded.Transform(split.TestSet), "QuantizationPoints"));
        Console.WriteLine($"reload identical: {identical}");
        string onnxPath = Path.Combine(folder, "quantization-faithful.onnx");
        double onnxDiff = OnnxDiff(ml, faithful, split.TestSet, onnxPath);
        Console.WriteLine(F($"max |ML.NET − ONNX Runtime| over Score, points and weights = {onnxDiff:E2}"));
        metrics["reload_identical"] = identical;
        metrics["onnx_max_abs_diff"] = onnxDiff;

        // 4. Consume: a 3-minute eruption, where the next wait is either short or long.
        var output = QuantizationModel.Predict(new QuantizationModel.ModelInput { Eruptions = 3.0f });
        Console.WriteLine("predict (eruption 3.0 min): " + string.Join(", ", output.QuantizationPoints.Zip(output.QuantizationWeights,
            (p, w) => F($"{p:F1} min ({w:P0})"))) + F($"; mean {output.Score:F1}, mode {output.ModePoint:F1}"));

        MetricsFile.Write(args.GetValue(MetricsOut), metrics);
        // Labels < 128 min: one float32 ulp is ≤ 7.6e-6, and ONNX stays within one ulp (docs/components/quantization.md).
        return identical && onnxDiff <= 1e-5 ? 0 : 1;
    }

    private static float[] Oracle(TwoBranchToyRow r) => [-Math.Abs(r.Features[0]), Math.Abs(r.Features[0])];

    private static float[] Read(IDataView data, string column) =>
        data.GetColumn<float[]>(column).SelectMany(v => v).ToArray();

    /// <summary>The data, and each point as a curve over x with its weight as the marker size.</summary>
    private static void SavePlot(ConditionalQuantizationTransformer model, TwoBranchToyRow[] rows, string path)
    {
        var plot = new ScottPlot.Plot();
        var data = plot.Add.ScatterPoints(rows.Select(r => (double)r.Features[0]).ToArray(), rows.Select(r => (double)r.Label).ToArray());
        data.MarkerSize = 2;
        data.LegendText = "y = ±|x| + 0.05ε";
        var xs = Enumerable.Range(0, 81).Select(i => -1 + i / 40f).ToArray();
        var (points, weights) = model.Predict(xs);
        int n = model.NumberOfPoints;
        for (int i = 0; i < n; i++)
        {
            var curve = plot.Add.ScatterLine(xs.Select(x => (double)x).ToArray(), xs.Select((_, r) => (double)points[r * n + i]).ToArray());
            curve.LineWidth = 2;
            curve.LegendText = F($"f{i + 1}(x), mean weight {Enumerable.Range(0, xs.Length).Average(r => weights[r * n + i]):F2}");
        }
        plot.Title("Conditional quantization, n = 2 sorted heads");
        plot.XLabel("x");
        plot.YLabel("y");
        plot.ShowLegend(ScottPlot.Alignment.UpperCenter);
        File.WriteAllBytes(path, plot.GetImageBytes(760, 460, ScottPlot.ImageFormat.Png));
        SampleCli.Wrote(path, "plot");
    }

    /// <summary>Exports with ml.Model.ExportToOnnx and returns max |Transform − ONNX Runtime| over Score, points and weights.</summary>
    private static double OnnxDiff(MLContext ml, ITransformer model, IDataView data, string path)
    {
        ml.Model.ExportToOnnx(model, data, path);
        SampleCli.Wrote(path, "ONNX");
        var eruptions = data.GetColumn<float>("Eruptions").ToArray();
        var waiting = data.GetColumn<float>("Waiting").ToArray();
        using var session = new InferenceSession(path);
        var inputs = session.InputMetadata.Keys.Select(name => NamedOnnxValue.CreateFromTensor(name,
            new DenseTensor<float>(name == "Eruptions" ? eruptions : waiting, [eruptions.Length, 1]))).ToList();
        using var results = session.Run(inputs);
        var scored = model.Transform(data);
        double max = 0;
        foreach (var column in new[] { "QuantizationPoints", "QuantizationWeights" })
        {
            var expected = Read(scored, column);
            var actual = results.First(r => r.Name == column + ".output").AsTensor<float>().ToArray();
            max = Math.Max(max, expected.Zip(actual).Max(z => Math.Abs(z.First - z.Second)));
        }
        var score = scored.GetColumn<float>("Score").ToArray();
        var onnxScore = results.First(r => r.Name == "Score.output").AsTensor<float>().ToArray();
        return Math.Max(max, score.Zip(onnxScore).Max(z => Math.Abs(z.First - z.Second)));
    }
}
