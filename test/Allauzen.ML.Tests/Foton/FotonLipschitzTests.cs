using Allauzen.ML.Core;
using Allauzen.ML.Foton;
using Allauzen.ML.Smoothing;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Allauzen.ML.Tests.Foton;

/// <summary>A trained FOTON network as a certified base model: its Lipschitz bound, its logits, and the smoothing certifier on top.</summary>
[TestClass]
public sealed class FotonLipschitzTests
{
    private static (MLContext Ml, IDataView Data, FotonTransformer Model) Trained(FotonActivation activation)
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 300);
        var model = ml.MulticlassClassification.Trainers.Foton(new FotonOptions
        {
            HiddenSizes = [8, 6], Epochs = 3, BatchSize = 32, Dropout = 0, Seed = 1, Activation = activation, LearningRate = 0.1,
        }).Fit(data);
        return (ml, data, model);
    }

    [TestMethod]
    [DataRow(FotonActivation.Relu)]
    [DataRow(FotonActivation.Tanh)]
    [DataRow(FotonActivation.MaxMin)]
    public void LipschitzBoundHoldsOnRandomPairsAndIsAboutOneForAnOrthonormalNetwork(FotonActivation activation)
    {
        var (_, _, model) = Trained(activation);
        double bound = model.LipschitzBound();
        // orthonormal layers (error ≤ the projection tolerance) and 1-Lipschitz activations: the bound is ≈ 1
        Assert.IsLessThanOrEqualTo(1 + 1e-4, bound);
        Assert.IsGreaterThanOrEqualTo(1 - 1e-4, bound, "a non-expanding orthonormal chain keeps some direction's norm");
        var lm = (ILogitsModel)model;
        Assert.AreEqual(bound, lm.LipschitzUpperBound()!.Value, 0.0);

        var rng = new Random(3);
        int d = model.FeatureCount, pairs = 2000;
        var x = new float[pairs * d];
        var y = new float[pairs * d];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(3 * TestData.Gaussian(rng));
            y[i] = x[i] + (float)((i / d % 2 == 0 ? 1e-2 : 1) * TestData.Gaussian(rng));
        }
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var fx = lm.ForwardLogits(torch.tensor(x, [pairs, d])).to_type(torch.ScalarType.Float64);
        var fy = lm.ForwardLogits(torch.tensor(y, [pairs, d])).to_type(torch.ScalarType.Float64);
        var dx = (torch.tensor(x, [pairs, d]).to_type(torch.ScalarType.Float64) - torch.tensor(y, [pairs, d]).to_type(torch.ScalarType.Float64)).norm(1);
        double worst = ((fx - fy).norm(1) / dx).max().ToDouble();
        Assert.IsLessThanOrEqualTo(bound * (1 + 1e-5), worst, $"empirical ratio {worst} above the certified bound {bound}");
        Assert.IsGreaterThan(0.1, worst, "the logits depend on the input");
    }

    [TestMethod]
    public void LogitsMatchTheTransformersProbabilities()
    {
        var (_, data, model) = Trained(FotonActivation.Relu);
        var features = TestData.ReadColumn(data, "Features");
        var scores = TestData.ReadColumn(model.Transform(data), "Score");
        int n = features.Length, d = features[0].Length;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var x = torch.tensor(features.SelectMany(r => r.Select(v => (float)v)).ToArray(), [n, d]);
        var p = torch.nn.functional.softmax(((ILogitsModel)model).ForwardLogits(x), 1).contiguous().data<float>().ToArray();
        double diff = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < scores[i].Length; k++)
                diff = Math.Max(diff, Math.Abs(p[i * scores[i].Length + k] - scores[i][k]));
        Assert.IsLessThanOrEqualTo(1e-6, diff);
    }

    [TestMethod]
    public void SmoothingCertifierTakesTheFotonModelAndItsBound()
    {
        var (ml, data, model) = Trained(FotonActivation.Relu);
        CertifiedBaseModel.AssertSmoothingUsesTheModelsBound(ml, model, ml.Data.TakeRows(data, 20), model.LipschitzBound());
    }
}
