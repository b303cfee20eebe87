using Allauzen.ML.Dynamics;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Dynamics;

[TestClass]
public sealed class DynamicalSystemsTests
{
    [TestMethod]
    public void Lorenz63Field_UsesMinusX2_NotThePapersTypo()
    {
        Span<double> dx = stackalloc double[3];
        DynamicalSystems.Lorenz63Field([1.0, 2.0, 3.0], dx);
        Assert.AreEqual(10.0 * (2 - 1), dx[0], 1e-15);
        Assert.AreEqual(1.0 * (28 - 3) - 2.0, dx[1], 1e-15);
        Assert.AreEqual(1.0 * 2 - 8.0 / 3 * 3, dx[2], 1e-15);
    }

    [TestMethod]
    public void Lorenz63Advance_AgreesWithFineFixedStepRk4()
    {
        double[] x0 = [-5.0, 3.0, 20.0];
        var adaptive = DynamicalSystems.Lorenz63Advance(x0, 0.5);
        // Classical RK4 with h = 1e-4 (global error ~ 1e-12 here).
        var x = (double[])x0.Clone();
        var k = new double[4][];
        double h = 1e-4;
        for (int s = 0; s < 5000; s++)
        {
            k[0] = F(x);
            k[1] = F(Add(x, k[0], h / 2));
            k[2] = F(Add(x, k[1], h / 2));
            k[3] = F(Add(x, k[2], h));
            for (int i = 0; i < 3; i++)
                x[i] += h / 6 * (k[0][i] + 2 * k[1][i] + 2 * k[2][i] + k[3][i]);
        }
        for (int i = 0; i < 3; i++)
            Assert.AreEqual(x[i], adaptive[i], 1e-7, $"coordinate {i}");
    }

    [TestMethod]
    public void Lorenz63_RowsChainAndAreDeterministic()
    {
        var data = DynamicalSystems.Lorenz63(200, 0.01, seed: 7);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 3), data.Schema["State"].Type);
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 3), data.Schema["NextState"].Type);
        var state = data.GetColumn<float[]>("State").ToArray();
        var next = data.GetColumn<float[]>("NextState").ToArray();
        Assert.HasCount(200, state);
        for (int i = 1; i < state.Length; i++)
            CollectionAssert.AreEqual(next[i - 1], state[i]);
        var again = DynamicalSystems.Lorenz63Trajectory(200, 0.01, seed: 7);
        for (int j = 0; j < 3; j++)
            Assert.AreEqual((float)again[200][j], next[199][j]);
        // On the attractor: |x| < 25, |y| < 30, 0 < z < 50.
        Assert.IsTrue(state.All(s => Math.Abs(s[0]) < 25 && Math.Abs(s[1]) < 30 && s[2] > 0 && s[2] < 50));
    }

    [TestMethod]
    public void ValidPredictionSteps_CountsLeadingStepsUnderThreshold()
    {
        double[][] truth = [[0, 0], [1, 0], [2, 0], [3, 0], [4, 0]];
        // σ = √(mean ‖x − x̄‖²) = √2; errors 0, 0.5, 1.0 → normalised 0, 0.35, 0.71.
        float[][] predicted = [[0, 0], [1, 0], [2.5f, 0], [4, 0], [4, 0]];
        Assert.AreEqual(2, DynamicalSystems.ValidPredictionSteps(predicted, truth, 0.4));
        Assert.AreEqual(4, DynamicalSystems.ValidPredictionSteps(predicted, truth, 0.8));
    }

    [TestMethod]
    public void Windows_FlattenConsecutiveStates()
    {
        double[][] traj = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]];
        var w = DynamicalSystems.Windows(traj, window: 2, stride: 2);
        var rows = w.GetColumn<float[]>("Window").ToArray();
        Assert.HasCount(2, rows);
        CollectionAssert.AreEqual(new float[] { 5, 6, 7, 8 }, rows[1]);
        CollectionAssert.AreEqual(new[] { 0, 2 }, w.GetColumn<int>("Start").ToArray());
    }

    private static double[] F(double[] x)
    {
        var d = new double[3];
        DynamicalSystems.Lorenz63Field(x, d);
        return d;
    }

    private static double[] Add(double[] x, double[] k, double a) => [x[0] + a * k[0], x[1] + a * k[1], x[2] + a * k[2]];
}
