// Smoke test of the packed Allauzen.ML, run by build/smoke/run.sh in two processes:
//   train <digits.csv> <dir>   train an MLP on the rows, evaluate, save <dir>/model.zip and its test scores
//   load  <digits.csv> <dir>   a fresh process: ml.Model.Load with no registration call, same scores,
//                              ExportToOnnx, score the ONNX file with ApplyOnnxModel, parity <= 1e-5
// Each step prints "ok: ..." or "FAIL: ..."; any failure exits 1.
using System.Runtime.InteropServices;
using Allauzen.ML.Mlp;
using Microsoft.ML;
using Microsoft.ML.Data;

const double OnnxTolerance = 1e-5;
const double AccuracyFloor = 0.6; // 10 classes, ~200 training rows: chance is 0.1

if (args.Length != 3 || args[0] is not ("train" or "load"))
{
    Console.Error.WriteLine("usage: Smoke train|load <digits.csv> <dir>");
    return 2;
}
string dataPath = args[1], dir = args[2];
string modelPath = Path.Combine(dir, "model.zip"), scoresPath = Path.Combine(dir, "scores.bin"), onnxPath = Path.Combine(dir, "model.onnx");
try
{
    return args[0] == "train" ? Train() : Load();
}
catch (Exception e)
{
    var inner = e;
    while (inner.InnerException is not null)
        inner = inner.InnerException;
    Console.WriteLine($"FAIL: {args[0]}: {inner.GetType().Name}: {inner.Message}");
    Console.WriteLine(e);
    return 1;
}

int Train()
{
    var ml = new MLContext(seed: 1);
    var (train, test) = Split(ml);
    var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.Transforms.NormalizeMinMax("Features"))
        .Append(ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [64], Epochs = 30, BatchSize = 32, LearningRate = 3e-3 }))
        .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    var model = pipeline.Fit(train);
    var scored = model.Transform(test);
    var metrics = ml.MulticlassClassification.Evaluate(scored);
    Console.WriteLine($"{(metrics.MicroAccuracy >= AccuracyFloor ? "ok" : "FAIL")}: trained, test accuracy {metrics.MicroAccuracy:F3} (floor {AccuracyFloor})");
    if (metrics.MicroAccuracy < AccuracyFloor)
        return 1;
    ml.Model.Save(model, train.Schema, modelPath);
    File.WriteAllBytes(scoresPath, MemoryMarshal.AsBytes(Scores(scored).AsSpan()).ToArray());
    Console.WriteLine($"ok: saved {modelPath} ({new FileInfo(modelPath).Length} bytes) with ml.Model.Save");
    return 0;
}

int Load()
{
    var ml = new MLContext(seed: 1);
    var (_, test) = Split(ml);
    var loaded = new MLContext().Model.Load(modelPath, out var inputSchema); // no registration call: the package must suffice
    Console.WriteLine($"ok: loaded {modelPath} with ml.Model.Load and no registration ({inputSchema.Count} input columns)");

    var expected = MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(scoresPath)).ToArray();
    var reloaded = Scores(loaded.Transform(test));
    double reloadDiff = MaxAbsDiff(expected, reloaded);
    Console.WriteLine($"{(reloadDiff == 0 ? "ok" : "FAIL")}: reloaded model scores like the trained one (max |diff| {reloadDiff:E2}, {reloaded.Length} values)");

    ml.Model.ExportToOnnx(loaded, test, onnxPath);
    var onnx = ml.Transforms.ApplyOnnxModel(["Score.output"], ["Features", "Label"], onnxPath).Fit(test).Transform(test);
    double onnxDiff = MaxAbsDiff(reloaded, Scores(onnx));
    bool onnxOk = onnxDiff <= OnnxTolerance;
    Console.WriteLine($"{(onnxOk ? "ok" : "FAIL")}: ExportToOnnx + ApplyOnnxModel Score parity {onnxDiff:E2} (tolerance {OnnxTolerance:E0}), {new FileInfo(onnxPath).Length} bytes");
    return reloadDiff == 0 && onnxOk ? 0 : 1;
}

(IDataView Train, IDataView Test) Split(MLContext ml)
{
    var all = ml.Data.LoadFromTextFile<Digit>(dataPath, separatorChar: ',');
    var split = ml.Data.TrainTestSplit(all, testFraction: 0.25, seed: 1);
    return (ml.Data.Cache(split.TrainSet), split.TestSet);
}

static float[] Scores(IDataView view) => view.GetColumn<float[]>("Score").SelectMany(s => s).ToArray();

static double MaxAbsDiff(float[] a, float[] b)
{
    if (a.Length != b.Length || a.Length == 0)
        throw new InvalidOperationException($"score counts differ or are empty: {a.Length} vs {b.Length}");
    return a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
}

/// <summary>One row of the UCI 8x8 digits CSV: 64 pixel counts, then the digit.</summary>
sealed class Digit
{
    [LoadColumn(0, 63), VectorType(64)]
    public float[] Features { get; set; } = [];

    [LoadColumn(64)]
    public string Label { get; set; } = "";
}
