using Allauzen.ML.Evaluation;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Evaluation;

[TestClass]
public sealed class DiscretePrCurveTests
{
    [TestMethod]
    public void MatchesTheNumPyCurveAndAtLambdaOneBothEqualOneMinusTotalVariation()
    {
        var c = EvaluationData.Fixture.GetProperty("discrete_pr");
        var p = EvaluationData.Doubles(c.GetProperty("P"));
        var q = EvaluationData.Doubles(c.GetProperty("Q"));
        var lambdas = EvaluationData.Doubles(c.GetProperty("lambdas"));
        var curve = DiscretePrCurve.Compute(p, q, lambdas);
        var precision = EvaluationData.Doubles(c.GetProperty("precision"));
        var recall = EvaluationData.Doubles(c.GetProperty("recall"));
        for (int i = 0; i < lambdas.Length; i++)
        {
            Assert.AreEqual(lambdas[i], curve[i].Lambda);
            Assert.AreEqual(precision[i], curve[i].Precision, 1e-12);
            Assert.AreEqual(recall[i], curve[i].Recall, 1e-12);
        }
        double tv = c.GetProperty("tv").GetDouble();
        var one = DiscretePrCurve.Compute(p, q, [1.0])[0];
        Assert.AreEqual(1 - tv, one.Precision, 1e-12);
        Assert.AreEqual(1 - tv, one.Recall, 1e-12);

        var rng = new Random(3);
        for (int trial = 0; trial < 20; trial++)
        {
            int n = 1 + rng.Next(300);
            var a = Enumerable.Range(0, n).Select(_ => rng.NextDouble() < 0.3 ? 0 : rng.NextDouble()).ToArray();
            var b = Enumerable.Range(0, n).Select(_ => rng.NextDouble()).ToArray();
            double sa = a.Sum(), sb = b.Sum();
            if (sa == 0)
                continue;
            double total = 0.5 * a.Zip(b, (x, y) => Math.Abs(x / sa - y / sb)).Sum();
            var r = DiscretePrCurve.Compute(a, b, [1.0])[0];
            Assert.AreEqual(1 - total, r.Precision, 1e-12);
            Assert.AreEqual(r.Precision, r.Recall);
        }
    }

    [TestMethod]
    public void CountsAreNormalisedAndExtremeLambdasGiveFullRecallOrPrecision()
    {
        var probs = DiscretePrCurve.Compute([0.5, 0.5, 0], [0.25, 0.25, 0.5], [1e-9, 1, 1e9]);
        var counts = DiscretePrCurve.Compute([2, 2, 0], [1, 1, 2], [1e-9, 1, 1e9]);
        CollectionAssert.AreEqual(probs, counts);
        Assert.AreEqual(1.0, probs[0].Recall, 1e-9);    // λ → 0: β → Σ_{Q>0} P = 1
        Assert.AreEqual(0.5, probs[2].Precision, 1e-9); // λ → ∞: α → Σ_{P>0} Q = 0.5
    }

    [TestMethod]
    public void InvalidDistributionsAreRejectedWithTheArgumentAndIndex()
    {
        var e = Assert.Throws<ArgumentException>(() => DiscretePrCurve.Compute([0.5, 0.5], [1.0], [1]));
        StringAssert.Contains(e.Message, "same outcomes");
        e = Assert.Throws<ArgumentException>(() => DiscretePrCurve.Compute([0.5, -0.1], [0.5, 0.5], [1]));
        StringAssert.Contains(e.Message, "reference[1]");
        e = Assert.Throws<ArgumentException>(() => DiscretePrCurve.Compute([0.5, 0.5], [double.NaN, 0.5], [1]));
        StringAssert.Contains(e.Message, "model[0]");
        e = Assert.Throws<ArgumentException>(() => DiscretePrCurve.Compute([0, 0], [0.5, 0.5], [1]));
        StringAssert.Contains(e.Message, "reference");
        e = Assert.Throws<ArgumentException>(() => DiscretePrCurve.Compute([1, 0], [0.5, 0.5], [1, 0]));
        StringAssert.Contains(e.Message, "lambdas[1]");
    }

    private sealed class Token
    {
        public string Word { get; set; } = "";

        public int Id { get; set; }
    }

    [TestMethod]
    public void FromColumnsCountsTextIntegerAndKeyColumnsOverTheUnionOfValues()
    {
        var ml = new MLContext(seed: 1);
        string[] refWords = ["a", "a", "b", "c", "c", "c"], modelWords = ["a", "d", "d", "c"];
        var reference = ml.Data.LoadFromEnumerable(refWords.Select(w => new Token { Word = w, Id = w[0] }));
        var model = ml.Data.LoadFromEnumerable(modelWords.Select(w => new Token { Word = w, Id = w[0] }));
        double[] lambdas = [0.5, 1, 2];
        // Outcomes a, b, c, d: P = (2, 1, 3, 0)/6, Q = (1, 0, 1, 2)/4.
        var expected = DiscretePrCurve.Compute([2, 1, 3, 0], [1, 0, 1, 2], lambdas);
        var text = DiscretePrCurve.FromColumns(reference, model, "Word", lambdas);
        var ints = DiscretePrCurve.FromColumns(reference, model, "Id", lambdas);
        for (int i = 0; i < lambdas.Length; i++)
        {
            Assert.AreEqual(expected[i].Precision, text[i].Precision, 1e-15);
            Assert.AreEqual(expected[i].Precision, ints[i].Precision, 1e-15);
        }
        // Keys: two views with different dictionaries are matched by key value, not by index.
        var refKeys = ml.Transforms.Conversion.MapValueToKey("Word").Fit(reference).Transform(reference);
        var modelKeys = ml.Transforms.Conversion.MapValueToKey("Word").Fit(model).Transform(model);
        var keys = DiscretePrCurve.FromColumns(refKeys, modelKeys, "Word", lambdas);
        for (int i = 0; i < lambdas.Length; i++)
            Assert.AreEqual(expected[i].Recall, keys[i].Recall, 1e-15);

        var e = Assert.Throws<ArgumentOutOfRangeException>(() => DiscretePrCurve.FromColumns(reference, model, "Missing", lambdas));
        StringAssert.Contains(e.Message, "'Missing'");
        var floats = ml.Data.LoadFromEnumerable(new[] { new { X = 1f } }.Select(r => new FloatRow { X = r.X }));
        e = Assert.Throws<ArgumentOutOfRangeException>(() => DiscretePrCurve.FromColumns(floats, floats, "X", lambdas));
        StringAssert.Contains(e.Message, "'X'");
        StringAssert.Contains(e.Message, "Single");
    }

    private sealed class FloatRow
    {
        public float X { get; set; }
    }
}
