using Allauzen.ML.Diachronic;

namespace Allauzen.ML.Tests.Diachronic;

/// <summary>The managed Adam of the dynamic Bernoulli model against Adam's formula written out in double precision.</summary>
[TestClass]
public sealed class RowAdamTests
{
    [TestMethod]
    public void DenseStepsFollowAdamsFormulaAndLazyStepsLeaveUntouchedRowsAlone()
    {
        const int rows = 3, k = 4;
        var p = new float[rows * k];
        var r = new Random(2);
        for (int i = 0; i < p.Length; i++)
            p[i] = (float)(r.NextDouble() - 0.5);
        var expected = p.Select(x => (double)x).ToArray();
        var m = new double[p.Length];
        var v = new double[p.Length];
        var adam = new RowAdam(p.Length);
        var scratch = new float[k];
        double[] lrs = [0.1, 0.05, 0.02, 0.01];
        for (int step = 1; step <= lrs.Length; step++)
        {
            var g = Enumerable.Range(0, p.Length).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
            // dense on steps 1-2; on steps 3-4 only row 1 moves (lazy Adam: rows 0 and 2 keep their moments and values)
            bool dense = step <= 2;
            adam.BeginStep(lrs[step - 1]);
            for (int row = 0; row < rows; row++)
            {
                if (!dense && row != 1)
                    continue;
                adam.Update(p.AsSpan(row * k, k), g.AsSpan(row * k, k), row * k, scratch);
                for (int i = row * k; i < (row + 1) * k; i++)
                {
                    m[i] = 0.9 * m[i] + 0.1 * g[i];
                    v[i] = 0.999 * v[i] + 0.001 * g[i] * (double)g[i];
                    double mHat = m[i] / (1 - Math.Pow(0.9, step)), vHat = v[i] / (1 - Math.Pow(0.999, step));
                    expected[i] -= lrs[step - 1] * mHat / (Math.Sqrt(vHat) + 1e-8);
                }
            }
            Assert.AreEqual(step, adam.Step);
        }
        // float32 arithmetic over 4 steps of size ≤ 0.1: errors of a few ulps of values ≈ 0.5, far below 1e-5
        for (int i = 0; i < p.Length; i++)
            Assert.AreEqual(expected[i], p[i], 1e-5, $"parameter {i}");
    }
}
