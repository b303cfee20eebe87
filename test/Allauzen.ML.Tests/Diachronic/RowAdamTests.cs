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

    [TestMethod]
    [DataRow(64)]
    [DataRow(100)]
    [DataRow(3)]
    public void FusedRowUpdateGivesTheBitsOfTheTenPassForm(int k)
    {
        // Same machine, same operations per element in the same order: bit identity is the contract here.
        const int rows = 5;
        var r = new Random(k);
        var p1 = Enumerable.Range(0, rows * k).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var p2 = (float[])p1.Clone();
        var fused = new RowAdam(p1.Length);
        var passes = new RowAdam(p2.Length);
        var scratch = new float[k];
        for (int step = 1; step <= 6; step++)
        {
            var g = Enumerable.Range(0, p1.Length).Select(_ => (float)((r.NextDouble() * 2 - 1) * Math.Pow(10, r.Next(-6, 2)))).ToArray();
            fused.BeginStep(0.01 / step);
            passes.BeginStep(0.01 / step);
            for (int row = 0; row < rows; row++)
            {
                fused.Update(p1.AsSpan(row * k, k), g.AsSpan(row * k, k), row * k, scratch);
                passes.UpdateByPasses(p2.AsSpan(row * k, k), g.AsSpan(row * k, k), row * k, scratch);
            }
        }
        for (int i = 0; i < p1.Length; i++)
            Assert.AreEqual(BitConverter.SingleToInt32Bits(p2[i]), BitConverter.SingleToInt32Bits(p1[i]), $"element {i}: {p1[i]:R} vs {p2[i]:R}");
    }
}
