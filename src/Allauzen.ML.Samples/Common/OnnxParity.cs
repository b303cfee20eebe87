using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Allauzen.ML.Samples.Common;

/// <summary>Exports a model with ml.Model.ExportToOnnx and compares ONNX Runtime's Score with ML.NET's.</summary>
public static class OnnxParity
{
    /// <summary>Returns max |Score(Transform) − Score(ONNX Runtime)| over up to <paramref name="maxRows"/> rows.</summary>
    public static double ExportAndCompare(MLContext ml, ITransformer model, IDataView data, string onnxPath, int maxRows = 1000)
    {
        var sample = ml.Data.TakeRows(data, maxRows);
        ml.Model.ExportToOnnx(model, sample, onnxPath);
        SampleCli.Wrote(onnxPath, "ONNX");
        var expected = model.Transform(sample).GetColumn<float[]>("Score").ToArray();
        var features = sample.GetColumn<float[]>("Features").ToArray();
        var labels = sample.GetColumn<string>("Label").ToArray();
        int n = features.Length, d = features[0].Length;

        using var session = new InferenceSession(onnxPath);
        var inputs = new List<NamedOnnxValue>();
        foreach (var (name, meta) in session.InputMetadata)
        {
            if (name == "Features")
                inputs.Add(NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(features.SelectMany(f => f).ToArray(), [n, d])));
            else if (name == "Label")
                inputs.Add(NamedOnnxValue.CreateFromTensor(name, new DenseTensor<string>(labels, [n, 1])));
            else
                throw new InvalidOperationException($"Unexpected ONNX graph input '{name}' ({meta.ElementType}).");
        }
        using var results = session.Run(inputs);
        var score = results.First(r => r.Name == "Score.output").AsTensor<float>();
        double max = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < expected[i].Length; j++)
                max = Math.Max(max, Math.Abs(expected[i][j] - score[i, j]));
        }
        return max;
    }
}
