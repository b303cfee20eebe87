using Allauzen.ML.Synthetic;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Synthetic;

[TestClass]
public sealed class TabularSyntheticDataTests
{
    private const int D = 5;

    private sealed class Row
    {
        [VectorType(D)]
        public float[] Features { get; set; } = [];
    }

    /// <summary>Two numeric features in [0, 10] and a 3-way categorical (one-hot in slots 2–4) with frequencies 60/30/10 %.</summary>
    private static IDataView Table(MLContext ml, int n)
    {
        var rng = new Random(4);
        var rows = new Row[n];
        for (int i = 0; i < n; i++)
        {
            int category = i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2;
            var v = new float[D];
            v[0] = (float)Math.Clamp(2 + 3 * category + SlicedWassersteinFlowTests.Gaussian(rng), 0, 10);
            v[1] = (float)(10 * rng.NextDouble());
            v[2 + category] = 1;
            rows[i] = new Row { Features = v };
        }
        return ml.Data.LoadFromEnumerable(rows);
    }

    private static PrivateSyntheticDataOptions Options() => new()
    {
        Epsilon = double.PositiveInfinity,
        LowerBounds = [0, 0, 0, 0, 0],
        UpperBounds = [10, 10, 1, 1, 1],
        CategoricalSlots = [[2, 3, 4]],
        ClipNorm = Math.Sqrt(D) / 2,
        Steps = 150,
        Seed = 1,
    };

    [TestMethod]
    public void GeneratesValuesWithinThePublicBoundsAndOneHotCategories()
    {
        var ml = new MLContext(1);
        var generator = ml.Transforms.PrivateSyntheticData(Options()).Fit(Table(ml, 600));
        var rows = generator.Generate(600, 3).GetColumn<float[]>("Features").ToArray();
        var counts = new int[3];
        foreach (var r in rows)
        {
            Assert.IsTrue(r[0] is >= 0 and <= 10 && r[1] is >= 0 and <= 10, $"numeric values {r[0]}, {r[1]} outside [0, 10]");
            Assert.AreEqual(1f, r[2] + r[3] + r[4], "one category per row");
            Assert.IsTrue(r.Skip(2).All(v => v is 0f or 1f), "categorical slots are 0 or 1");
            counts[Array.IndexOf(r, 1f, 2) - 2]++;
        }
        Console.WriteLine($"category counts {string.Join(", ", counts)}");
        Assert.IsTrue(counts[0] > counts[1] && counts[1] > counts[2], $"category frequencies 60/30/10 % should keep their order: {string.Join(", ", counts)}");
    }

    [TestMethod]
    public void TabularSettingsAreValidatedAndSurviveSaveLoad()
    {
        var ml = new MLContext(1);
        var data = Table(ml, 200);
        var bad = Options();
        bad.UpperBounds = [10, 10, 1, 1];
        Assert.Throws<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(bad).Fit(data));
        bad = Options();
        bad.CategoricalSlots = [[2, 3], [3, 4]];
        Assert.Throws<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(bad).Fit(data));
        bad = Options();
        bad.LowerBounds = null;
        Assert.Throws<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(bad).Fit(data));

        var options = Options();
        options.Steps = 20;
        var generator = ml.Transforms.PrivateSyntheticData(options).Fit(data);
        string path = Path.Combine(Path.GetTempPath(), $"dpsw-tab-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(generator, data.Schema, path);
            var loaded = (PrivateSyntheticDataTransformer)new MLContext(2).Model.Load(path, out _);
            var a = generator.Generate(30, 4).GetColumn<float[]>("Features").SelectMany(r => r).ToArray();
            var b = loaded.Generate(30, 4).GetColumn<float[]>("Features").SelectMany(r => r).ToArray();
            CollectionAssert.AreEqual(a, b);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
