using Allauzen.ML.Datasets;

namespace Allauzen.ML.Samples.Common;

/// <summary>One row of the UCI 8×8 digits CSV: 64 pixel counts (0–16) then the digit.</summary>
public sealed class DigitRow
{
    [LoadColumn(0, 63), VectorType(64)]
    public float[] Features { get; set; } = [];

    [LoadColumn(64)]
    public string Label { get; set; } = "";
}

/// <summary>Train/test data for the samples: digits (shipped) or Fashion-MNIST (Debian package).</summary>
public static class SampleData
{
    /// <summary>Path of the shipped digits CSV next to the executable.</summary>
    public static string DigitsPath => Path.Combine(AppContext.BaseDirectory, "Data", "digits.csv");

    /// <summary>Loads (train, test, dataset name). Fashion-MNIST falls back to digits when absent, and says so.</summary>
    public static (IDataView Train, IDataView Test, string Name) Load(MLContext ml, string data)
    {
        switch (data.ToLowerInvariant())
        {
            case "digits":
                var all = ml.Data.LoadFromTextFile<DigitRow>(DigitsPath, separatorChar: ',', hasHeader: false);
                var split = ml.Data.TrainTestSplit(all, testFraction: 0.2, seed: 1);
                return (ml.Data.Cache(split.TrainSet), ml.Data.Cache(split.TestSet), "digits");
            case "fashion-mnist":
                if (!FashionMnist.IsAvailable())
                {
                    Console.WriteLine($"Fashion-MNIST not found in {FashionMnist.DebianDirectory} (apt-get install dataset-fashion-mnist); using digits.");
                    return Load(ml, "digits");
                }
                return (FashionMnist.Load(ml, train: true), FashionMnist.Load(ml, train: false), "fashion-mnist");
            default:
                throw new UsageException($"Unknown --data '{data}': use digits or fashion-mnist.");
        }
    }
}
