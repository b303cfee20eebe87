using Allauzen.ML.Smoothing;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.TestSupport;

/// <summary>Checks shared by every Allauzen network used as the base model of the randomized-smoothing certifier.</summary>
internal static class CertifiedBaseModel
{
    /// <summary>
    /// BridgingCpm with <c>UseModelLipschitzConstant</c> takes exactly <paramref name="bound"/> from <paramref name="model"/>, gives the
    /// same radii as passing it explicitly, and certifies some of <paramref name="rows"/> (well separated data).
    /// </summary>
    public static void AssertSmoothingUsesTheModelsBound(MLContext ml, ITransformer model, IDataView rows, double bound)
    {
        RandomizedSmoothingOptions Options(bool fromModel, double? l) => new()
        {
            BaseModel = model, Method = SmoothingMethod.BridgingCpm, Sigma = 0.5, SelectionSamples = 50, EstimationSamples = 500,
            Alpha = 0.01, Seed = 4, UseModelLipschitzConstant = fromModel, LipschitzConstant = l,
        };
        var fromModel = ml.Transforms.CertifyRandomizedSmoothing(Options(true, null)).Fit(rows);
        Assert.AreEqual(bound, fromModel.LipschitzConstant!.Value, 0.0);
        double[] Radius(ITransformer t) => t.Transform(rows).GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray();
        var given = ml.Transforms.CertifyRandomizedSmoothing(Options(false, bound)).Fit(rows);
        CollectionAssert.AreEqual(Radius(given), Radius(fromModel));
        Assert.IsTrue(Radius(fromModel).Any(r => r > 0), "separable blobs certify some rows");
    }
}
