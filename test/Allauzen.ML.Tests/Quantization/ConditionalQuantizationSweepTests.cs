using Allauzen.ML.Quantization;
using Allauzen.ML.Tests.TestSupport;
using Allauzen.ML.Torch;
using TorchSharp;
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
    public void OnePoint_TakesThePlainMseCodePath()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(SmoothRows(1500, 1));
        var test = ml.Data.LoadFromEnumerable(SmoothRows(500, 2));
        double Rmse(bool plain)
        {
            var o = Options(1, 20);
            o.PlainMseBaseline = plain;
            var model = ml.Regression.Trainers.ConditionalQuantization(o).Fit(train);
            return ml.Regression.Evaluate(model.Transform(test)).RootMeanSquaredError;
        }
        double cq = Rmse(false), mse = Rmse(true);
        Console.WriteLine($"RMSE: n = 1 conditional quantization {cq:G5}, plain MSE baseline {mse:G5}");
        // With one point the argmin and the classifier are inert: the same seed trains the same network as the benchmarks'
        // plain-MSE baseline (PlainMseBaseline), so the two RMSEs are equal (the benchmark ratio compares like with like).
        Assert.AreEqual(mse, cq, 1e-6 * mse);
    }

    /// <summary>
    /// The issue's check: n = 1 against an MSE regressor of the same network, written in the test from TorchSharp alone
    /// (<see cref="ReferenceMseRmse"/>), so a fault in the trainer's code path (label standardisation, loss, batching,
    /// scoring) shows. One MSE fit moves by ±4 % RMSE between seeds on this set even near convergence (measured: 3,000
    /// rows, 60 cosine epochs, noise floor 0.1, RMSE 0.107–0.111), so the mean over six seeds of each is compared.
    /// </summary>
    [TestMethod]
    [TestCategory("Slow")]
    public void OnePoint_MatchesAnIndependentMseRegressorOfTheSameNetwork_Within2PercentRmse()
    {
        var ml = new MLContext(seed: 1);
        var trainRows = SmoothRows(3000, 1);
        var testRows = SmoothRows(1000, 2);
        var train = ml.Data.LoadFromEnumerable(trainRows);
        var test = ml.Data.LoadFromEnumerable(testRows);
        var cq = new List<double>();
        var reference = new List<double>();
        for (int seed = 1; seed <= 6; seed++)
        {
            var o = Options(1, 60, seed);
            o.LearningRateSchedule = LearningRateSchedule.Cosine;
            var model = ml.Regression.Trainers.ConditionalQuantization(o).Fit(train);
            cq.Add(ml.Regression.Evaluate(model.Transform(test)).RootMeanSquaredError);
            reference.Add(ReferenceMseRmse(trainRows, testRows, [32, 32], 60, 64, 3e-3, seed));
            Console.WriteLine($"seed {seed}: RMSE n = 1 quantization {cq[^1]:G5}, independent MSE regressor {reference[^1]:G5}");
        }
        Console.WriteLine($"mean RMSE: quantization {cq.Average():G5}, MSE regressor {reference.Average():G5}, ratio {cq.Average() / reference.Average():F4}");
        Assert.AreEqual(reference.Average(), cq.Average(), 0.02 * reference.Average(), "n = 1 within 2 % RMSE of MSE training");
        Assert.IsLessThan(0.12, reference.Average(), "the reference itself converged near the noise floor 0.1");
    }

    /// <summary>
    /// An MSE regressor written here from TorchSharp alone, independent of the trainer's code: the same network
    /// (ReLU trunk <paramref name="hidden"/>, one linear output), Adam with cosine annealing, the same batch size, learning rate and epochs, the
    /// label standardised by the training mean and standard deviation. Returns the held-out RMSE in label units.
    /// </summary>
    internal static double ReferenceMseRmse(SmoothRow[] train, SmoothRow[] test, int[] hidden, int epochs, int batch, double lr, int seed)
    {
        TorchRuntime.EnsureInitialized();
        torch.random.manual_seed(seed);
        using var scope = torch.NewDisposeScope();
        int nx = train[0].Features.Length;
        var layers = new List<(string, torch.nn.Module<torch.Tensor, torch.Tensor>)>();
        int width = nx;
        for (int i = 0; i < hidden.Length; i++)
        {
            layers.Add(($"fc{i}", torch.nn.Linear(width, hidden[i])));
            layers.Add(($"relu{i}", torch.nn.ReLU()));
            width = hidden[i];
        }
        layers.Add(("out", torch.nn.Linear(width, 1)));
        var net = torch.nn.Sequential(layers);
        double mean = train.Average(r => (double)r.Label);
        double std = Math.Sqrt(train.Average(r => (r.Label - mean) * (r.Label - mean)));
        var x = torch.tensor(train.SelectMany(r => r.Features).ToArray(), [train.Length, nx]);
        var y = (torch.tensor(train.Select(r => r.Label).ToArray(), [train.Length, 1]) - mean) / std;
        var optimizer = torch.optim.Adam(net.parameters(), lr);
        var rng = new Random(seed);
        var order = Enumerable.Range(0, train.Length).ToArray();
        net.train();
        for (int e = 0; e < epochs; e++)
        {
            foreach (var group in optimizer.ParamGroups)
                group.LearningRate = lr * 0.5 * (1 + Math.Cos(Math.PI * e / epochs)); // cosine annealing, per epoch
            rng.Shuffle(order);
            for (int start = 0; start < order.Length; start += batch)
            {
                using var step = torch.NewDisposeScope();
                var idx = torch.tensor(order[start..Math.Min(order.Length, start + batch)].Select(i => (long)i).ToArray());
                optimizer.zero_grad();
                var loss = torch.nn.functional.mse_loss(net.forward(x.index_select(0, idx)), y.index_select(0, idx));
                loss.backward();
                optimizer.step();
            }
        }
        net.eval();
        using var noGrad = torch.no_grad();
        var xt = torch.tensor(test.SelectMany(r => r.Features).ToArray(), [test.Length, nx]);
        var prediction = (net.forward(xt) * std + mean).data<float>().ToArray();
        return Math.Sqrt(test.Select((r, i) => (r.Label - (double)prediction[i]) * (r.Label - prediction[i])).Average());
    }

    /// <summary>y = sin(3x₁) + x₂² − x₃ + 0.1ε, five features in [−1, 1].</summary>
    internal static SmoothRow[] SmoothRows(int rows, int seed)
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
