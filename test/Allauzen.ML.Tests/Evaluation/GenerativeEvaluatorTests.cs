using Allauzen.ML.Evaluation;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Evaluation;

[TestClass]
public sealed class GenerativeEvaluatorTests
{
    private static readonly MLContext Ml = new(seed: 1);

    private static GenerativeMetrics Evaluate(VectorSet p, VectorSet q, GenerativeEvaluatorOptions? o = null) =>
        Ml.Data.EvaluateGenerative(EvaluationData.View(Ml, p), EvaluationData.View(Ml, q), o ?? new GenerativeEvaluatorOptions());

    [TestMethod]
    public void IdenticalSetsGiveExactlyOne()
    {
        var p = EvaluationData.Mixture(300, 8, 10, seed: 1);
        var view = EvaluationData.View(Ml, p);
        foreach (var o in new[] { new GenerativeEvaluatorOptions(), new GenerativeEvaluatorOptions { L2Normalize = false, PcaExplainedVariance = 0, K = 3 } })
        {
            var m = Ml.Data.EvaluateGenerative(view, view, o);
            Assert.AreEqual(1.0, m.Precision);
            Assert.AreEqual(1.0, m.Recall);
            Assert.AreEqual(1.0, m.Density);
            Assert.AreEqual(1.0, m.Coverage);
            Assert.AreEqual(o.K, m.K);
            Assert.AreEqual(300, m.ReferenceRows);
            Assert.AreEqual(300, m.GeneratedRows);
        }
    }

    [TestMethod]
    public void SwappingTheSetsSwapsPrecisionAndRecall()
    {
        var p = EvaluationData.Mixture(250, 8, 10, seed: 2);
        var q = EvaluationData.Mixture(200, 8, 10, seed: 3, keep: [0, 1, 2, 3], scale: 0.7);
        var a = Evaluate(p, q);
        var b = Evaluate(q, p);
        Assert.AreEqual(a.Precision, b.Recall);
        Assert.AreEqual(a.Recall, b.Precision);
        Assert.AreNotEqual(a.Precision, a.Recall);
    }

    [TestMethod]
    public void DroppingHalfTheModesHalvesRecallAndKeepsPrecision()
    {
        var p = EvaluationData.Mixture(1000, 8, 10, seed: 4);
        var q = EvaluationData.Mixture(1000, 8, 10, seed: 5, keep: [0, 1, 2, 3, 4]);
        var m = Evaluate(p, q);
        Console.WriteLine($"5 of 10 modes: {m}");
        Assert.AreEqual(0.5, m.Recall, 0.1, m.ToString());
        Assert.IsGreaterThan(0.85, m.Precision, m.ToString());
        Assert.AreEqual(0.5, m.Coverage, 0.1, m.ToString());
        var same = Evaluate(p, EvaluationData.Mixture(1000, 8, 10, seed: 6));
        Console.WriteLine($"same distribution: {same}");
        Assert.IsGreaterThan(0.85, same.Recall, same.ToString());
    }

    [TestMethod]
    public void EveryMetricMatchesTheNumPyImplementationWithinTwoOverN()
    {
        foreach (var c in EvaluationData.Fixture.GetProperty("prdc").EnumerateArray())
        {
            int d = c.GetProperty("d").GetInt32();
            var p = EvaluationData.Floats(c.GetProperty("reference"));
            var q = EvaluationData.Floats(c.GetProperty("generated"));
            var m = Ml.Data.EvaluateGenerative(EvaluationData.View(Ml, p, d), EvaluationData.View(Ml, q, d), new GenerativeEvaluatorOptions
            {
                K = c.GetProperty("k").GetInt32(),
                L2Normalize = c.GetProperty("l2").GetBoolean(),
                PcaExplainedVariance = c.GetProperty("pca").GetDouble(),
            });
            string name = c.GetProperty("name").GetString()!;
            double tol = 2.0 / Math.Min(m.ReferenceRows, m.GeneratedRows);
            Assert.AreEqual(c.GetProperty("dims").GetInt32(), m.Dimensions, name);
            Assert.AreEqual(c.GetProperty("precision").GetDouble(), m.Precision, tol, name);
            Assert.AreEqual(c.GetProperty("recall").GetDouble(), m.Recall, tol, name);
            Assert.AreEqual(c.GetProperty("density").GetDouble(), m.Density, tol, name);
            Assert.AreEqual(c.GetProperty("coverage").GetDouble(), m.Coverage, tol, name);
        }
    }

    [TestMethod]
    public void MaxSamplesSubsamplesEachSetReproducibly()
    {
        var p = EvaluationData.Mixture(400, 8, 10, seed: 7);
        var q = EvaluationData.Mixture(300, 8, 10, seed: 8);
        var o = new GenerativeEvaluatorOptions { MaxSamples = 120, Seed = 3 };
        var a = Evaluate(p, q, o);
        Assert.AreEqual(120, a.ReferenceRows);
        Assert.AreEqual(120, a.GeneratedRows);
        Assert.AreEqual(a.ToString(), Evaluate(p, q, o).ToString());
        var subset = VectorSet.Read(EvaluationData.View(Ml, p), "Features", "feature", null, 120, 3);
        Assert.AreEqual(120, subset.Rows);
        Assert.AreEqual(400, VectorSet.Read(EvaluationData.View(Ml, p), "Features", "feature", null, 1000, 3).Rows);
    }

    [TestMethod]
    public void DuplicatedPointsHaveAnEmptyBallAndDoNotFail()
    {
        // Every point appears 4 times: with k = 3 every radius is 0, so no ball holds anything.
        var baseSet = EvaluationData.Mixture(20, 3, 2, seed: 9);
        var dup = new VectorSet(Enumerable.Range(0, 4).SelectMany(_ => baseSet.Data).ToArray(), 80, 3);
        var m = Evaluate(dup, dup, new GenerativeEvaluatorOptions { K = 3, PcaExplainedVariance = 0 });
        Assert.AreEqual(0.0, m.Precision);
        Assert.AreEqual(0.0, m.Coverage);
        var k5 = Evaluate(dup, dup, new GenerativeEvaluatorOptions { K = 5, PcaExplainedVariance = 0 });
        Assert.AreEqual(1.0, k5.Precision);
        Assert.AreEqual(1.0, k5.Recall);
    }

    [TestMethod]
    public void BadInputsFailWithTheColumnTheExpectedAndTheActualType()
    {
        var p = EvaluationData.View(Ml, EvaluationData.Mixture(30, 4, 2, seed: 10));
        var q3 = EvaluationData.View(Ml, EvaluationData.Mixture(30, 3, 2, seed: 11));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Data.EvaluateGenerative(p, p, new GenerativeEvaluatorOptions { FeatureColumnName = "Embedding" }));
        StringAssert.Contains(e.Message, "'Embedding'");
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Data.EvaluateGenerative(p, q3, new GenerativeEvaluatorOptions()));
        StringAssert.Contains(e.Message, "'Features'");
        StringAssert.Contains(e.Message, "Vector<Single, 4>");
        StringAssert.Contains(e.Message, "Vector<Single, 3>");
        var text = Ml.Data.LoadFromEnumerable(new[] { new TextRow { Features = "a" } });
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Data.EvaluateGenerative(p, text, new GenerativeEvaluatorOptions()));
        StringAssert.Contains(e.Message, "'Features'");
        StringAssert.Contains(e.Message, "String");
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Data.EvaluateGenerative(p, p, new GenerativeEvaluatorOptions { K = 30 }));
        StringAssert.Contains(e.Message, "30 row");
        StringAssert.Contains(e.Message, "'Features'");
        var nan = EvaluationData.View(Ml, [1, float.NaN, 0, 0], 2);
        var n = Assert.Throws<InvalidOperationException>(() => Ml.Data.EvaluateGenerative(nan, p, new GenerativeEvaluatorOptions { K = 1 }));
        StringAssert.Contains(n.Message, "'Features'");
    }

    private sealed class TextRow
    {
        public string Features { get; set; } = "";
    }
}
