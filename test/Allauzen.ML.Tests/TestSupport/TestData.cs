using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.TestSupport;

public sealed class DigitRow
{
    [LoadColumn(0, 63), VectorType(64)]
    public float[] Features { get; set; } = [];

    [LoadColumn(64)]
    public string Label { get; set; } = "";
}

public sealed class BlobRow
{
    [VectorType(8)]
    public float[] Features { get; set; } = [];

    public string Label { get; set; } = "";
}

/// <summary>Data for tests: the shipped UCI digits CSV and Gaussian blobs.</summary>
public static class TestData
{
    public static string DigitsPath => Path.Combine(AppContext.BaseDirectory, "Data", "digits.csv");

    /// <summary>Digits split 80/20 with a fixed seed, cached.</summary>
    public static (IDataView Train, IDataView Test) Digits(MLContext ml)
    {
        var all = ml.Data.LoadFromTextFile<DigitRow>(DigitsPath, separatorChar: ',');
        var split = ml.Data.TrainTestSplit(all, 0.2, seed: 1);
        return (ml.Data.Cache(split.TrainSet), ml.Data.Cache(split.TestSet));
    }

    /// <summary>Digits with the label mapped to a key and features scaled to [0, 1] (what a trainer sees).</summary>
    public static (IDataView Train, IDataView Test) DigitsPrepared(MLContext ml)
    {
        var (train, test) = Digits(ml);
        var prep = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.Transforms.NormalizeMinMax("Features")).Fit(train);
        return (ml.Data.Cache(prep.Transform(train)), ml.Data.Cache(prep.Transform(test)));
    }

    /// <summary>Three well separated Gaussian blobs in 8 dimensions (string labels "a", "b", "c").</summary>
    public static BlobRow[] Blobs(int rows, int seed = 0, int classes = 3)
    {
        var rng = new Random(seed);
        var result = new BlobRow[rows];
        for (int i = 0; i < rows; i++)
        {
            int c = i % classes;
            var f = new float[8];
            for (int j = 0; j < 8; j++)
                f[j] = (float)(Gaussian(rng) * 0.5 + (j % classes == c ? 2.0 : 0.0));
            result[i] = new BlobRow { Features = f, Label = ((char)('a' + c)).ToString() };
        }
        return result;
    }

    public static IDataView BlobsPrepared(MLContext ml, int rows, int seed = 0, int classes = 3)
    {
        var data = ml.Data.LoadFromEnumerable(Blobs(rows, seed, classes));
        return ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
    }

    public static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>Reads a float-vector, float, key or bool column as rows of doubles (for comparisons).</summary>
    public static double[][] ReadColumn(IDataView data, string column)
    {
        var col = data.Schema[column];
        var result = new List<double[]>();
        using var cursor = data.GetRowCursor([col]);
        if (col.Type is VectorDataViewType)
        {
            var g = cursor.GetGetter<VBuffer<float>>(col);
            VBuffer<float> v = default;
            while (cursor.MoveNext())
            {
                g(ref v);
                result.Add(v.DenseValues().Select(x => (double)x).ToArray());
            }
        }
        else if (col.Type is KeyDataViewType)
        {
            var g = cursor.GetGetter<uint>(col);
            uint v = 0;
            while (cursor.MoveNext())
            {
                g(ref v);
                result.Add([v]);
            }
        }
        else if (col.Type.RawType == typeof(float))
        {
            var g = cursor.GetGetter<float>(col);
            float v = 0;
            while (cursor.MoveNext())
            {
                g(ref v);
                result.Add([v]);
            }
        }
        else if (col.Type.RawType == typeof(double))
        {
            var g = cursor.GetGetter<double>(col);
            double v = 0;
            while (cursor.MoveNext())
            {
                g(ref v);
                result.Add([v]);
            }
        }
        else if (col.Type.RawType == typeof(bool))
        {
            var g = cursor.GetGetter<bool>(col);
            bool v = false;
            while (cursor.MoveNext())
            {
                g(ref v);
                result.Add([v ? 1 : 0]);
            }
        }
        else
        {
            throw new NotSupportedException($"ReadColumn does not read {col.Type}.");
        }
        return result.ToArray();
    }

    public static double MaxAbsDiff(double[][] a, double[][] b)
    {
        if (a.Length != b.Length)
            throw new InvalidOperationException($"Row counts differ: {a.Length} vs {b.Length}.");
        double m = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i].Length != b[i].Length)
                throw new InvalidOperationException($"Row {i}: lengths differ: {a[i].Length} vs {b[i].Length}.");
            for (int j = 0; j < a[i].Length; j++)
                m = Math.Max(m, Math.Abs(a[i][j] - b[i][j]));
        }
        return m;
    }
}
