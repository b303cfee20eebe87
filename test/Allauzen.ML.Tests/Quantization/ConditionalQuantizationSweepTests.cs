using Allauzen.ML.Quantization;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Quantization;

/// <summary>The issue's numeric checks that need several fits: distortion against n, and n = 1 against plain MSE training.</summary>
[TestClass]
public sealed class ConditionalQuantizationSweepTests
{
    private static ConditionalQuantizationOptions Options(int points, int epochs, int seed = 1) => new()
    {
        NumberOfPoints = points,
        HiddenSizes = [32, 32],
        Epochs = epochs,
        BatchSize = 64,
        LearningRate = 3e-3,
        Seed = seed,
    };

    /// <summary>Held-out distortion for n = 1, 2, 4, 8 points.</summary>
    private static double[] DistortionByPoints(MLContext ml, IDataView train, IDataView test, int epochs, string label = "Label")
    {
        var result = new List<double>();
        foreach (int n in new[] { 1, 2, 4, 8 })
        {
            var o = Options(n, epochs);
            o.LabelColumnName = label;
            var model = ml.Regression.Trainers.ConditionalQuantization(o).Fit(train);
            var m = ml.Regression.EvaluateQuantization(model.Transform(test), labelColumnName: label);
            Console.WriteLine($"n = {n}: held-out distortion {m.Distortion:G4}, score RMSE {m.ScoreRootMeanSquaredError:G4}, 90 % interval coverage {m.IntervalCoverage:F3}");
            result.Add(m.Distortion);
        }
        return [.. result];
    }

    private static void AssertNonIncreasing(double[] d)
    {
        for (int i = 1; i < d.Length; i++)
            Assert.IsLessThanOrEqualTo(d[i - 1], d[i], $"distortion rose from n = {1 << (i - 1)} to n = {1 << i}: {string.Join(", ", d)}");
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void Toy_DistortionIsNonIncreasingInN()
    {
        var ml = new MLContext(seed: 1);
        AssertNonIncreasing(DistortionByPoints(ml, ml.Data.LoadFromEnumerable(TwoBranchToy.Generate(3000, 1)),
            ml.Data.LoadFromEnumerable(TwoBranchToy.Generate(2000, 2)), 40));
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void OldFaithful_DistortionIsNonIncreasingInN()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = Faithful(ml);
        AssertNonIncreasing(DistortionByPoints(ml, train, test, 150));
    }

    /// <summary>The variants the docs describe: plain winner-takes-all, dead-head re-seeding and the warm start, on the toy.</summary>
    [TestMethod]
    [TestCategory("Slow")]
    public void Toy_Variants_AreReported()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TwoBranchToy.Generate(3000, 1));
        var test = ml.Data.LoadFromEnumerable(TwoBranchToy.Generate(2000, 2, referenceSamples: 256));
        foreach (var (name, n, sorted, reseed, warm) in new[]
        {
            ("sorted", 2, true, true, false), ("plain winner-takes-all", 2, false, true, false), ("sorted, warm start", 2, true, true, true),
            ("sorted", 4, true, true, false), ("sorted, no re-seeding", 4, true, false, false), ("plain winner-takes-all", 4, false, true, false),
            ("plain, no re-seeding", 4, false, false, false),
        })
        {
            var o = Options(n, 40);
            o.SortedHeads = sorted;
            o.ReinitializeDeadHeads = reseed;
            o.WarmStartFromMean = warm;
            var dead = new List<double>();
            o.Progress = new Progress<TrainingProgress>(p => dead.Add(p.Diagnostics.GetValueOrDefault("dead heads")));
            var model = ml.Regression.Trainers.ConditionalQuantization(o).Fit(train);
            var m = ml.Regression.EvaluateQuantization(model.Transform(test), referenceSamplesColumnName: "ReferenceSamples");
            var (points, weights) = model.Predict([0.5f]);
            Console.WriteLine($"n = {n}, {name}: distortion {m.Distortion:G3}, W2 {m.Wasserstein2:G3}, energy {m.EnergyDistance:G3}, " +
                $"at x = 0.5 points ({string.Join(", ", points.Select(v => v.ToString("F2")))}) weights ({string.Join(", ", weights.Select(v => v.ToString("F2")))})");
            Assert.IsTrue(double.IsFinite(m.Distortion));
        }
    }

    [TestMethod]
    public void OnePoint_MatchesPlainMseTraining_Within2PercentRmse()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Smooth(1500, 1));
        var test = ml.Data.LoadFromEnumerable(Smooth(500, 2));
        double Rmse(bool plain)
        {
            var o = Options(1, 20);
            o.PlainMseBaseline = plain;
            var model = ml.Regression.Trainers.ConditionalQuantization(o).Fit(train);
            return ml.Regression.Evaluate(model.Transform(test)).RootMeanSquaredError;
        }
        double cq = Rmse(false), mse = Rmse(true);
        Console.WriteLine($"RMSE: n = 1 conditional quantization {cq:G5}, plain MSE {mse:G5}");
        // With one point the argmin and the classifier are inert: the same seed trains the same network as plain MSE, so
        // the RMSEs agree far within the issue's 2 % (a different seed moves either by more: that is MSE training's own spread).
        Assert.AreEqual(mse, cq, 1e-6 * mse);
    }

    /// <summary>y = sin(3x₁) + x₂² − x₃ + 0.1ε, five features in [−1, 1].</summary>
    private static SmoothRow[] Smooth(int rows, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, rows).Select(_ =>
        {
            var x = Enumerable.Range(0, 5).Select(_ => (float)(2 * rng.NextDouble() - 1)).ToArray();
            return new SmoothRow { Features = x, Label = (float)(Math.Sin(3 * x[0]) + x[1] * x[1] - x[2] + 0.1 * TestData.Gaussian(rng)) };
        })];
    }

    /// <summary>Old Faithful (272 rows): eruption duration → waiting time, min-max normalised, split 70/30 by a seeded shuffle.</summary>
    internal static (IDataView Train, IDataView Test) Faithful(MLContext ml)
    {
        var rows = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Data", "faithful.csv")).Skip(1)
            .Select(l => l.Split(',')).Select(p => new FaithfulRow { Features = [float.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture) / 5f],
                Label = float.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture) }).ToArray();
        Assert.HasCount(272, rows);
        var order = rows.OrderBy(_ => 0).ToArray();
        new Random(7).Shuffle(order);
        return (ml.Data.LoadFromEnumerable(order[..190]), ml.Data.LoadFromEnumerable(order[190..]));
    }

    internal sealed class FaithfulRow
    {
        [VectorType(1)]
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }

    internal sealed class SmoothRow
    {
        [VectorType(5)]
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }
}
