using Allauzen.ML.Datasets;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Benchmarks;

public sealed class DigitRow
{
    [LoadColumn(0, 63), VectorType(64)]
    public float[] Features { get; set; } = [];

    [LoadColumn(64)]
    public string Label { get; set; } = "";
}

/// <summary>Benchmark data: Fashion-MNIST when installed (dataset-fashion-mnist), else the shipped digits.</summary>
public static class BenchData
{
    public static (IDataView Train, IDataView Test, string Name) Load(MLContext ml)
    {
        if (FashionMnist.IsAvailable())
            return (ml.Data.Cache(FashionMnist.Load(ml, true)), ml.Data.Cache(FashionMnist.Load(ml, false)), "fashion-mnist");
        var all = ml.Data.LoadFromTextFile<DigitRow>(Path.Combine(AppContext.BaseDirectory, "Data", "digits.csv"), separatorChar: ',');
        var split = ml.Data.TrainTestSplit(all, 0.2, seed: 1);
        return (ml.Data.Cache(split.TrainSet), ml.Data.Cache(split.TestSet), "digits");
    }

    /// <summary>Label → key and features scaled, fitted on the training data.</summary>
    public static (IDataView Train, IDataView Test, string Name) Prepared(MLContext ml)
    {
        var (train, test, name) = Load(ml);
        var prep = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.NormalizeMinMax("Features")).Fit(train);
        return (ml.Data.Cache(prep.Transform(train)), ml.Data.Cache(prep.Transform(test)), name);
    }
}
