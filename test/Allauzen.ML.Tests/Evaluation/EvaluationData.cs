using System.Text.Json;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Evaluation;

/// <summary>Data views and fixtures of the Evaluation tests.</summary>
internal static class EvaluationData
{
    private static readonly Lazy<JsonDocument> Doc = new(() => JsonDocument.Parse(
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "Evaluation", "evaluation.json"))));

    /// <summary>The root of evaluation.json (written by Fixtures/Evaluation/make_fixtures.py).</summary>
    public static JsonElement Fixture => Doc.Value.RootElement;

    public static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    public static float[] Floats(JsonElement e) => e.EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();

    private sealed class Row
    {
        public float[] Features { get; set; } = [];
    }

    /// <summary>A view with one <c>Vector&lt;Single, d&gt;</c> column named <paramref name="column"/>.</summary>
    public static IDataView View(MLContext ml, float[] flat, int d, string column = "Features")
    {
        var rows = Enumerable.Range(0, flat.Length / d).Select(i => new Row { Features = flat.AsSpan(i * d, d).ToArray() }).ToList();
        var schema = SchemaDefinition.Create(typeof(Row));
        schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, d);
        schema[nameof(Row.Features)].ColumnName = column;
        return ml.Data.LoadFromEnumerable(rows, schema);
    }

    public static IDataView View(MLContext ml, VectorSet s, string column = "Features") => View(ml, s.Data, s.Dimensions, column);

    /// <summary>n points of a mixture of <paramref name="modes"/> Gaussians in d dimensions (unit noise, centres N(0, 4²)
    /// fixed by seed 7), drawing modes from <paramref name="keep"/> (all by default).</summary>
    public static VectorSet Mixture(int n, int d, int modes, int seed, int[]? keep = null, double scale = 1.0)
    {
        var centres = new Random(7);
        var c = Enumerable.Range(0, modes * d).Select(_ => 4.0 * TestData.Gaussian(centres)).ToArray();
        var rng = new Random(seed);
        var data = new float[n * d];
        for (int i = 0; i < n; i++)
        {
            int m = keep is null ? rng.Next(modes) : keep[rng.Next(keep.Length)];
            for (int t = 0; t < d; t++)
                data[i * d + t] = (float)(c[m * d + t] + scale * TestData.Gaussian(rng));
        }
        return new VectorSet(data, n, d);
    }

    /// <summary>Uniform points in [0, 1)^d.</summary>
    public static VectorSet Uniform(int n, int d, int seed)
    {
        var rng = new Random(seed);
        return new VectorSet(Enumerable.Range(0, n * d).Select(_ => (float)rng.NextDouble()).ToArray(), n, d);
    }
}
