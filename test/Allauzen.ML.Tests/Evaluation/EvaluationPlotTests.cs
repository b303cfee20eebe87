using Allauzen.ML.Evaluation;
using Allauzen.ML.Plots;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Evaluation;

[TestClass]
public sealed class EvaluationPlotTests
{
    private static readonly MLContext Ml = new(seed: 1);

    /// <summary>Runs <paramref name="save"/> on a temporary path and checks a non-trivial PNG was written.</summary>
    private static void AssertPng(Action<string> save)
    {
        string png = Path.Combine(Path.GetTempPath(), $"evaluation-plot-{Guid.NewGuid():N}.png");
        try
        {
            save(png);
            var bytes = File.ReadAllBytes(png);
            CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes.Take(4).ToArray());
            Assert.IsGreaterThan(5000, bytes.Length);
        }
        finally
        {
            File.Delete(png);
        }
    }

    [TestMethod]
    public void PrCurvePlotIsWritten()
    {
        double[] lambdas = [.. Enumerable.Range(-20, 41).Select(i => Math.Pow(10, i / 10.0))];
        var curve = DiscretePrCurve.Compute([0.4, 0.3, 0.2, 0.1, 0], [0.1, 0.2, 0.3, 0.2, 0.2], lambdas);
        AssertPng(path => curve.SavePrCurvePlot(path, "Q"));
    }

    [TestMethod]
    public void PrdcBarPlotIsWritten()
    {
        var reference = EvaluationData.View(Ml, EvaluationData.Mixture(200, 4, 4, 1));
        var same = Ml.Data.EvaluateGenerative(reference, EvaluationData.View(Ml, EvaluationData.Mixture(200, 4, 4, 2)), new GenerativeEvaluatorOptions { PcaExplainedVariance = 0 });
        var half = Ml.Data.EvaluateGenerative(reference, EvaluationData.View(Ml, EvaluationData.Mixture(200, 4, 4, 3, keep: [0, 1])), new GenerativeEvaluatorOptions { PcaExplainedVariance = 0 });
        AssertPng(path => new Dictionary<string, GenerativeMetrics> { ["same law"] = same, ["half the modes"] = half }.SavePlot(path));
    }

    [TestMethod]
    public void RocPlotIsWrittenAndTheRocRunsFromOriginToOne()
    {
        var rng = new Random(1);
        double[] members = [.. Enumerable.Range(0, 500).Select(_ => rng.NextDouble() + 0.3)];
        double[] nonMembers = [.. Enumerable.Range(0, 500).Select(_ => rng.NextDouble())];
        var audit = MembershipStatistics.Compute(members, nonMembers, 0, 0.05);
        Assert.AreEqual((0.0, 0.0), audit.Roc[0]);
        Assert.AreEqual((1.0, 1.0), audit.Roc[^1]);
        AssertPng(path => audit.SaveRocPlot(path, "shifted scores"));
    }
}
