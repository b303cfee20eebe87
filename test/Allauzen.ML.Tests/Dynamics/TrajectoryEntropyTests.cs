using Allauzen.ML.Dynamics;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Dynamics;

[TestClass]
public sealed class TrajectoryEntropyTests
{
    [TestMethod]
    public void Entropy_IsZeroInOneBoxAndLnMOverMBoxes()
    {
        // Partition of [0, 4] × [0, 4] in 4 × 4 boxes of side 1 (the training windows span the box).
        double[][] traj = [[0, 0], [4, 4], [0.5, 0.5], [0.6, 0.4], [1.5, 0.5], [2.5, 0.5], [3.5, 3.5], [3.6, 3.6]];
        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.TrajectoryEntropy("Window", stateSize: 2, bins: 4).Fit(DynamicalSystems.Windows(traj, 2, 2));
        Assert.AreEqual(0.0, model.Entropy([0.5f, 0.5f, 0.6f, 0.4f]), 1e-12);
        Assert.AreEqual(Math.Log(4), model.Entropy([0.5f, 0.5f, 1.5f, 0.5f, 2.5f, 0.5f, 3.5f, 3.5f]), 1e-12);
        // 3 of 4 states in one box: H = −(¾ ln ¾ + ¼ ln ¼).
        Assert.AreEqual(-(0.75 * Math.Log(0.75) + 0.25 * Math.Log(0.25)), model.Entropy([0.5f, 0.5f, 0.6f, 0.4f, 0.7f, 0.1f, 3.5f, 3.5f]), 1e-12);
        // Outside the bounding box: counted in the edge box.
        Assert.AreEqual(0.0, model.Entropy([-3f, -3f, 0.5f, 0.5f]), 1e-12);
        var column = model.Transform(DynamicalSystems.Windows(traj, 2, 2)).GetColumn<float>("Entropy").ToArray();
        Assert.AreEqual((float)Math.Log(2), column[0], 1e-6);
        Assert.AreEqual(0f, column[1]);
    }

    [TestMethod]
    public void Contract_SchemaBadInputSaveLoadRowMapper_OnnxRefused()
    {
        var ml = new MLContext(seed: 1);
        var data = DynamicalSystems.Windows(DynamicalSystems.Lorenz63Trajectory(400, 0.01, seed: 4), 20, 10);
        var wrong = DynamicalSystems.Windows(Enumerable.Range(0, 10).Select(i => new double[] { i, 1 }).ToArray(), 5, 5);
        var report = EstimatorContract.Check(ml.Transforms.TrajectoryEntropy(), data, data, ["Entropy"], [(wrong, "Window", false)], onnx: false);
        Assert.AreEqual(0.0, report.RowMapperMaxDiff);
        Assert.Throws<NotSupportedException>(() => ml.Model.ExportToOnnx(report.Transformer, data, new MemoryStream()));
    }
}
