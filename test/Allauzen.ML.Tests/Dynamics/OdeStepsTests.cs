using Allauzen.ML.Dynamics;
using TorchSharp;

namespace Allauzen.ML.Tests.Dynamics;

[TestClass]
public sealed class OdeStepsTests
{
    // ẋ = M x with M = [[-0.5, 1.0], [-2.0, -0.3]]: the steps are polynomials in hM, computed here by hand.
    private static readonly double[,] M = { { -0.5, 1.0 }, { -2.0, -0.3 } };

    private static double[] Mul(double[,] a, double[] x) => [a[0, 0] * x[0] + a[0, 1] * x[1], a[1, 0] * x[0] + a[1, 1] * x[1]];

    [TestMethod]
    public void Fehlberg32_LinearOde_EqualsTaylorPolynomialsTo1e12()
    {
        double[] x = [1.3, -0.4];
        double h = 0.2;
        // Mx, M²x, M³x by hand: Mx = (-0.5·1.3 + 1·(-0.4), -2·1.3 − 0.3·(-0.4)) = (-1.05, -2.48);
        // M²x = M(-1.05, -2.48) = (0.525 − 2.48, 2.1 + 0.744) = (-1.955, 2.844);
        // M³x = M(-1.955, 2.844) = (0.9775 + 2.844, 3.91 − 0.8532) = (3.8215, 3.0568).
        double[] m1 = [-1.05, -2.48], m2 = [-1.955, 2.844], m3 = [3.8215, 3.0568];
        CollectionAssert.AreEqual(m1, Mul(M, x), new Tolerance(1e-15));
        var f = (double[] v) => Mul(M, v);
        var (a1, a2) = OdeSteps.Fehlberg32(f, x, h);
        for (int i = 0; i < 2; i++)
        {
            // A₁ = (I + hM + h²M²/2) x (Heun); A₂ = A₁ + h³M³x/6 (RK3).
            double heun = x[i] + h * m1[i] + h * h / 2 * m2[i];
            double rk3 = heun + h * h * h / 6 * m3[i];
            Assert.AreEqual(heun, a1[i], 1e-12);
            Assert.AreEqual(rk3, a2[i], 1e-12);
            Assert.AreEqual(x[i] + h * m1[i], OdeSteps.Euler(f, x, h)[i], 1e-12);
        }
        Assert.AreEqual(Math.Abs(a1[0] - a2[0]) + Math.Abs(a1[1] - a2[1]), OdeSteps.ErrorRate(a1, a2, h) * h, 1e-15);
    }

    [TestMethod]
    public void Rk3_ScalarLinearOde_LocalErrorIsFourthOrder()
    {
        // ẋ = λx: RK3 gives x(1 + z + z²/2 + z³/6), z = λh, so the local error is x(z⁴/24 + O(z⁵)).
        double lambda = -1.7, x0 = 0.8;
        foreach (double h in new[] { 0.1, 0.05, 0.025 })
        {
            double z = lambda * h;
            double step = OdeSteps.Rk3(v => [lambda * v[0]], [x0], h)[0];
            Assert.AreEqual(x0 * (1 + z + z * z / 2 + z * z * z / 6), step, 1e-12);
            double err = Math.Abs(step - x0 * Math.Exp(z));
            Assert.AreEqual(Math.Abs(x0) * Math.Pow(z, 4) / 24, err, Math.Abs(x0) * Math.Pow(Math.Abs(z), 5) / 60);
        }
    }

    [TestMethod]
    public void Float32Steps_AgreeWithFloat64()
    {
        using var scope = torch.NewDisposeScope();
        var mt = torch.tensor(new float[] { -0.5f, 1.0f, -2.0f, -0.3f }, [2, 2]);
        Func<torch.Tensor, torch.Tensor> f = v => v.matmul(mt.t());
        var x = torch.tensor(new float[] { 1.3f, -0.4f, 0.2f, 0.9f }, [2, 2]);
        var (a1, a2) = OdeSteps.Fehlberg32(f, x, 0.2);
        var euler = OdeSteps.Integrate(OdeSolver.Euler, f, x, 3);
        var rk3 = OdeSteps.Integrate(OdeSolver.Rk3, f, x, 3);
        var rows = new[] { new double[] { 1.3, -0.4 }, new double[] { 0.2, 0.9 } };
        var g = (double[] v) => Mul(M, v);
        for (int r = 0; r < 2; r++)
        {
            var (b1, b2) = OdeSteps.Fehlberg32(g, rows[r], 0.2);
            double[] e = rows[r], k = rows[r];
            for (int s = 0; s < 3; s++)
            {
                e = OdeSteps.Euler(g, e, 1.0 / 3);
                k = OdeSteps.Rk3(g, k, 1.0 / 3);
            }
            for (int i = 0; i < 2; i++)
            {
                Assert.AreEqual(b1[i], a1[r, i].item<float>(), 1e-6);
                Assert.AreEqual(b2[i], a2[r, i].item<float>(), 1e-6);
                Assert.AreEqual(e[i], euler[r, i].item<float>(), 1e-6);
                Assert.AreEqual(k[i], rk3[r, i].item<float>(), 1e-6);
            }
        }
    }

    [TestMethod]
    public void ProposedSteps_FollowThePaperRule()
    {
        Assert.AreEqual(1.0, OdeSteps.ProposedSteps(0.1, 0.1, 0.9, 10));
        // r = 0.4, ε = 0.1: h' = 0.9·√0.25 = 0.45, 1/h' = 2.22… → 3 whole steps.
        Assert.AreEqual(1 / 0.45, OdeSteps.ProposedSteps(0.4, 0.1, 0.9, 10), 1e-12);
        Assert.AreEqual(3, OdeSteps.WholeSteps(1 / 0.45, 10));
        Assert.AreEqual(10.0, OdeSteps.ProposedSteps(1e6, 0.1, 0.9, 10));
        Assert.AreEqual(10, OdeSteps.WholeSteps(10.0, 10));
    }

    private sealed class Tolerance(double tol) : System.Collections.IComparer
    {
        public int Compare(object? a, object? b) => Math.Abs((double)a! - (double)b!) <= tol ? 0 : 1;
    }
}
