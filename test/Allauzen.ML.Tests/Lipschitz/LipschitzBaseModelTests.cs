using Allauzen.ML.Core;
using Allauzen.ML.Lipschitz;
using Allauzen.ML.Smoothing;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Allauzen.ML.Tests.Lipschitz;

/// <summary>A trained certified classifier as the base model of the randomized-smoothing certifier (with its own Lipschitz constant).</summary>
[TestClass]
public sealed class LipschitzBaseModelTests
{
    [TestMethod]
    public void SmoothingCertifiesTheLipschitzClassifierWithItsConstant()
    {
        var ml = new MLContext(seed: 1);
        var data = TestData.BlobsPrepared(ml, 300);
        var model = ml.MulticlassClassification.Trainers.LipschitzClassifier(new LipschitzClassifierOptions
        {
            Architecture = LipschitzArchitecture.Sll, Depth = 2, Width = 16, Epochs = 3, BatchSize = 32, LearningRate = 1e-2, Seed = 1,
        }).Fit(data);

        // its logits are the ones the transformer scores
        var features = TestData.ReadColumn(data, "Features");
        int n = features.Length, d = features[0].Length;
        var flat = features.SelectMany(r => r.Select(v => (float)v)).ToArray();
        using (torch.NewDisposeScope())
        using (torch.no_grad())
        {
            var logits = ((ILogitsModel)model).ForwardLogits(torch.tensor(flat, [n, d])).contiguous().data<float>().ToArray();
            CollectionAssert.AreEqual(model.PredictLogits(flat), logits);
        }
        Assert.AreEqual(model.LipschitzConstant, ((ILogitsModel)model).LipschitzUpperBound()!.Value, 0.0);

        var rows = ml.Data.TakeRows(data, 20);
        CertifiedBaseModel.AssertSmoothingUsesTheModelsBound(ml, model, rows, model.LipschitzConstant);

        // Cohen on the same model: the smoothed prediction agrees with the model on these well separated rows
        var cohen = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = model, Sigma = 0.1, SelectionSamples = 50, EstimationSamples = 500, Alpha = 0.01, Seed = 4,
        }).Fit(rows).Transform(rows);
        var smoothed = cohen.GetColumn<uint>("PredictedLabel").ToArray();
        var plain = model.Transform(rows).GetColumn<uint>("PredictedLabel").ToArray();
        Assert.IsGreaterThanOrEqualTo(18, smoothed.Zip(plain).Count(p => p.First == p.Second));
    }
}
