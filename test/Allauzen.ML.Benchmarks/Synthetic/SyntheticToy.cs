using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Benchmarks.Synthetic;

/// <summary>The data of the synthetic-data probes: the notes' 8-D two-mode toy and a feature-column loader.</summary>
internal static class SyntheticToy
{
    public const int Dimensions = 8;

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
    }

    /// <summary>½N(+μ, I) + ½N(−μ, I), μ = 2.65·(1, …, 1), alternating rows, raw scale (n×8, row-major); the same
    /// rows as the unit tests' toy for the same seed.</summary>
    public static float[] TwoModes(int n, int seed)
    {
        var rng = new Random(seed);
        var y = new float[n * Dimensions];
        for (int i = 0; i < n; i++)
        {
            double sign = i % 2 == 0 ? 1 : -1;
            for (int t = 0; t < Dimensions; t++)
                y[i * Dimensions + t] = (float)(sign * 2.65 + Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        }
        return y;
    }

    /// <summary>Row-major values (rows×d) as a data view with one <c>Features</c> column of <c>Vector&lt;Single, d&gt;</c>.</summary>
    public static IDataView Load(MLContext ml, float[] values, int d)
    {
        var rows = Enumerable.Range(0, values.Length / d).Select(i => new Row { Features = values.AsSpan(i * d, d).ToArray() }).ToArray();
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, d);
        return ml.Data.LoadFromEnumerable(rows, schema);
    }
}
