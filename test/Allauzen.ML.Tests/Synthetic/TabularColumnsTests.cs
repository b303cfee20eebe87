using System.Globalization;
using Allauzen.ML.Core;
using Allauzen.ML.Synthetic;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Synthetic;

[TestClass]
public sealed class TabularColumnsTests
{
    private static readonly string[] Numeric = ["SepalLength", "SepalWidth", "PetalLength", "PetalWidth"];
    private static readonly string[] Columns = [.. Numeric, "Species"];
    private static readonly string[] SpeciesNames = ["setosa", "versicolor", "virginica"];

    // Public bounds of the iris measurements (cm), wider than the data; D = 4 numeric + 3 one-hot slots.
    private static readonly float[] Lower = [4, 2, 1, 0];
    private static readonly float[] Upper = [8, 4.5f, 7, 2.6f];
    private static readonly double NoClip = Math.Sqrt(7) / 2;

    private sealed class IrisRow
    {
        public float SepalLength { get; set; }
        public float SepalWidth { get; set; }
        public float PetalLength { get; set; }
        public float PetalWidth { get; set; }
        public string Species { get; set; } = "";
    }

    /// <summary>The 150 iris rows (Fixtures/Synthetic/iris.csv), Species mapped to a key in order of appearance.</summary>
    private static IDataView Iris(MLContext ml)
    {
        var rows = File.ReadLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "Synthetic", "iris.csv")).Skip(1)
            .Select(line => line.Split(','))
            .Select(f => new IrisRow
            {
                SepalLength = float.Parse(f[0], CultureInfo.InvariantCulture),
                SepalWidth = float.Parse(f[1], CultureInfo.InvariantCulture),
                PetalLength = float.Parse(f[2], CultureInfo.InvariantCulture),
                PetalWidth = float.Parse(f[3], CultureInfo.InvariantCulture),
                Species = SpeciesNames[int.Parse(f[4], CultureInfo.InvariantCulture)],
            }).ToList();
        Assert.AreEqual(150, rows.Count);
        var data = ml.Data.LoadFromEnumerable(rows);
        return ml.Data.Cache(ml.Transforms.Conversion.MapValueToKey("Species").Fit(data).Transform(data));
    }

    /// <summary>Rows as (four measurements, species key).</summary>
    private static List<(float[] X, uint Species)> Read(IDataView view)
    {
        var cols = Numeric.Select(n => view.GetColumn<float>(view.Schema[n]).ToArray()).ToArray();
        var species = view.GetColumn<uint>(view.Schema["Species"]).ToArray();
        return species.Select((s, i) => (cols.Select(c => c[i]).ToArray(), s)).ToList();
    }

    private static PrivateSyntheticDataOptions Options(double epsilon, bool publicBounds, int steps) => new()
    {
        InputColumnNames = Columns,
        Epsilon = epsilon,
        LowerBounds = publicBounds ? Lower : null,
        UpperBounds = publicBounds ? Upper : null,
        ClipNorm = NoClip,
        Steps = steps,
        Seed = 1,
    };

    [TestMethod]
    public void TheInverseMappingReturnsEveryIrisRow()
    {
        var ml = new MLContext(1);
        var data = Iris(ml);
        var generator = ml.Transforms.PrivateSyntheticData(Options(double.PositiveInfinity, publicBounds: true, steps: 1)).Fit(data);
        var s = generator.Settings;
        Assert.AreEqual(7, s.Dimensions);
        var original = Read(data);
        var encoded = new object[original.Count][];
        for (int i = 0; i < original.Count; i++)
        {
            // The documented forward map: clamp to the bounds, to [−½, ½], divide by ClipNorm (√D/2: nothing clipped).
            var (x, species) = original[i];
            var z = new float[7];
            for (int t = 0; t < 7; t++)
            {
                double v = t < 4 ? x[t] : (t - 4 == species - 1 ? 1 : 0);
                z[t] = (float)(((Math.Clamp(v, s.LowerBounds![t], s.UpperBounds![t]) - s.LowerBounds[t]) / (s.UpperBounds[t] - s.LowerBounds[t]) - 0.5) / s.ClipNorm);
            }
            var back = new float[7];
            s.ToFeatureScale(z, back);
            encoded[i] = [new VBuffer<float>(7, back)];
        }
        var decoded = Read(generator.Tabular!.Decode(encoded, null));
        for (int i = 0; i < original.Count; i++)
        {
            Assert.AreEqual(original[i].Species, decoded[i].Species, $"row {i}: species");
            for (int t = 0; t < 4; t++)
            {
                // Two affine maps in float: a few ulps of the bounds' width (≤ 6 cm).
                Assert.AreEqual(original[i].X[t], decoded[i].X[t], 1e-5f, $"row {i}, {Numeric[t]}");
            }
        }
    }

    [TestMethod]
    public void GeneratesTheIrisColumnsWithinTheBoundsAndKeepsTheSpeciesStructure()
    {
        var ml = new MLContext(1);
        var data = Iris(ml);
        var generator = ml.Transforms.PrivateSyntheticData(Options(double.PositiveInfinity, publicBounds: false, steps: 300)).Fit(data);
        var report = generator.PrivacyReport;
        Assert.IsTrue(report.BoundsFittedOnData);
        StringAssert.Contains(report.Mechanism, "FITTED ON THE PRIVATE DATA");
        var view = generator.Generate(300, 2);
        Assert.AreEqual(Columns.Length, view.Schema.Count);
        for (int c = 0; c < Columns.Length; c++)
        {
            Assert.AreEqual(Columns[c], view.Schema[c].Name);
            Assert.AreEqual(data.Schema[Columns[c]].Type, view.Schema[c].Type, Columns[c]);
        }
        VBuffer<ReadOnlyMemory<char>> keys = default;
        view.Schema["Species"].GetKeyValues(ref keys);
        CollectionAssert.AreEqual(SpeciesNames, keys.DenseValues().Select(k => k.ToString()).ToArray());

        var train = Read(data);
        var rows = Read(view);
        var counts = new int[3];
        var petal = new double[3];
        foreach (var (x, species) in rows)
        {
            for (int t = 0; t < 4; t++)
            {
                float min = train.Min(r => r.X[t]), max = train.Max(r => r.X[t]);
                Assert.IsTrue(x[t] >= min && x[t] <= max, $"{Numeric[t]} = {x[t]} outside the fitted [{min}, {max}]");
            }
            Assert.IsTrue(species is >= 1 and <= 3, $"species key {species}");
            counts[species - 1]++;
            petal[species - 1] += x[2];
        }
        for (int k = 0; k < 3; k++)
            petal[k] /= Math.Max(1, counts[k]);
        Console.WriteLine($"species counts {string.Join(", ", counts)}; mean petal length {string.Join(", ", petal.Select(p => p.ToString("F2", CultureInfo.InvariantCulture)))} (data: 1.46, 4.26, 5.55)");
        Assert.IsTrue(counts.All(c => c is >= 50 and <= 150), $"each species should keep about a third of 300 rows: {string.Join(", ", counts)}");
        Assert.IsTrue(petal[0] < petal[1] && petal[1] < petal[2], "the joint flow keeps the species' petal-length order (setosa < versicolor < virginica)");

        string path = Path.Combine(Path.GetTempPath(), $"dpsw-iris-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(generator, data.Schema, path);
            var loaded = (PrivateSyntheticDataTransformer)new MLContext(2).Model.Load(path, out _);
            Assert.AreEqual(report, loaded.PrivacyReport);
            var again = Read(loaded.Generate(300, 2));
            for (int i = 0; i < rows.Count; i++)
            {
                Assert.AreEqual(rows[i].Species, again[i].Species);
                CollectionAssert.AreEqual(rows[i].X, again[i].X);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void NoGeneratedRowIsATrainingRowUnderEitherMechanism()
    {
        var ml = new MLContext(1);
        var data = Iris(ml);
        var train = Read(data);
        var resampled = Options(5, publicBounds: true, steps: 60);
        resampled.Mechanism = PrivateSyntheticMechanism.ResampledProjections;
        resampled.SamplingRate = 0.5;
        resampled.NumberOfProjections = 30;
        resampled.Percentiles = 30;
        foreach (var options in new[] { Options(5, publicBounds: true, steps: 100), resampled })
        {
            var generator = ml.Transforms.PrivateSyntheticData(options).Fit(data);
            Assert.IsFalse(generator.PrivacyReport.BoundsFittedOnData);
            Assert.IsTrue(generator.PrivacyReport.Epsilon <= 5);
            foreach (var (x, species) in Read(generator.Generate(300, 3)))
            {
                double closest = train.Min(r => r.Species != species ? double.PositiveInfinity : r.X.Zip(x).Sum(p => (double)(p.First - p.Second) * (p.First - p.Second)));
                Assert.IsTrue(closest > 0, $"{options.Mechanism}: generated row ({string.Join(", ", x)}, species {species}) is a training row");
            }
        }
    }

    private sealed class MixedRow
    {
        public float Amount { get; set; }

        [VectorType(2)]
        public float[] Position { get; set; } = [];

        public string Color { get; set; } = "";

        public string Label { get; set; } = "";
    }

    [TestMethod]
    public void MixesScalarVectorAndKeyColumnsWithAClassColumn()
    {
        var ml = new MLContext(1);
        var rng = new Random(3);
        string[] colors = ["red", "green", "blue"];
        var rows = Enumerable.Range(0, 200).Select(i => new MixedRow
        {
            Amount = (float)(100 * rng.NextDouble()),
            Position = [(float)rng.NextDouble(), (float)rng.NextDouble()],
            Color = colors[i % 3],
            Label = i % 2 == 0 ? "yes" : "no",
        }).ToList();
        var raw = ml.Data.LoadFromEnumerable(rows);
        var data = ml.Transforms.Conversion.MapValueToKey("Color").Append(ml.Transforms.Conversion.MapValueToKey("Label")).Fit(raw).Transform(raw);
        var options = new PrivateSyntheticDataOptions
        {
            InputColumnNames = ["Amount", "Position", "Color"],
            LowerBounds = [0, 0, 0],
            UpperBounds = [100, 1, 1],
            ClassConditional = "Label",
            ClipNorm = Math.Sqrt(6) / 2,
            Steps = 20,
        };
        var estimator = ml.Transforms.PrivateSyntheticData(options);
        estimator.GetOutputSchema(SchemaShapes.FromSchema(data.Schema));
        var shapeError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => estimator.GetOutputSchema(SchemaShapes.FromSchema(raw.Schema)));
        StringAssert.Contains(shapeError.Message, "Color");
        var generator = estimator.Fit(data);
        var view = generator.Generate(10, 1);
        CollectionAssert.AreEqual(new[] { "Amount", "Position", "Color", "Label" }, view.Schema.Select(c => c.Name).ToArray());
        foreach (var name in new[] { "Amount", "Position", "Color", "Label" })
            Assert.AreEqual(data.Schema[name].Type, view.Schema[name].Type, name);
        Assert.IsTrue(view.GetColumn<float>(view.Schema["Amount"]).All(v => v is >= 0 and <= 100));
        Assert.IsTrue(view.GetColumn<float[]>(view.Schema["Position"]).All(p => p.Length == 2 && p.All(v => v is >= 0 and <= 1)));
        Assert.IsTrue(view.GetColumn<uint>(view.Schema["Color"]).All(k => k is >= 1 and <= 3));
        CollectionAssert.AreEqual(new uint[] { 1, 1, 1, 1, 1, 2, 2, 2, 2, 2 }, view.GetColumn<uint>(view.Schema["Label"]).ToArray());
    }

    [TestMethod]
    public void RejectsUnsupportedColumnsAndInconsistentBounds()
    {
        var ml = new MLContext(1);
        var data = Iris(ml);
        var withText = ml.Transforms.CopyColumns("Name", "Species").Fit(data).Transform(data);
        withText = ml.Transforms.Conversion.MapKeyToValue("Name").Fit(withText).Transform(withText);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { InputColumnNames = ["SepalLength", "Name"] }).Fit(withText));
        StringAssert.Contains(ex.Message, "Name");
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { InputColumnNames = ["Nope"] }).Fit(data));
        StringAssert.Contains(missing.Message, "Nope");
        var bounds = Options(5, publicBounds: true, steps: 1);
        bounds.LowerBounds = [4, 2, 1];
        var bex = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(bounds).Fit(data));
        StringAssert.Contains(bex.Message, "4 numeric slots");
        var slots = Options(5, publicBounds: true, steps: 1);
        slots.CategoricalSlots = [[4, 5, 6]];
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(slots).Fit(data));
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { InputColumnNames = ["Species"], ClassConditional = "Species" }));
        Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions { InputColumnNames = ["A", "A"] }));
    }
}
