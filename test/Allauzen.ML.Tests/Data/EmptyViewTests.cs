using Allauzen.ML.Mlp;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Data;

/// <summary>Issue #14 row 10: an empty training view is reported as "no rows", not as a class count.</summary>
[TestClass]
public sealed class EmptyViewTests
{
    private static readonly MLContext Ml = new(seed: 1);

    private static MlpTrainer Trainer() =>
        Ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [4], Epochs = 1 });

    private static IDataView TwoRows()
    {
        var data = Ml.Data.LoadFromEnumerable(new[]
        {
            new BlobRow { Label = "a", Features = new float[8] },
            new BlobRow { Label = "b", Features = new float[8] },
        });
        return Ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
    }

    [TestMethod]
    public void EmptyViewAfterMapValueToKey_SaysNoRows_WithColumnNames()
    {
        var empty = Ml.Data.LoadFromEnumerable(Array.Empty<BlobRow>());
        var keyed = Ml.Transforms.Conversion.MapValueToKey("Label").Fit(empty).Transform(empty);
        var e = Assert.Throws<InvalidOperationException>(() => Trainer().Fit(keyed));
        StringAssert.Contains(e.Message, "training data has no rows");
        StringAssert.Contains(e.Message, "'Features'");
        StringAssert.Contains(e.Message, "'Label'");
        Assert.DoesNotContain("class", e.Message);
    }

    [TestMethod]
    public void EmptyFilteredView_SaysNoRows()
    {
        var keyed = TwoRows();
        var none = Ml.Data.SkipRows(keyed, 10); // no row left
        var e = Assert.Throws<InvalidOperationException>(() => Trainer().Fit(none));
        StringAssert.Contains(e.Message, "has no rows");
    }

    [TestMethod]
    public void EmptyValidationView_SaysNoRows()
    {
        var keyed = TwoRows();
        var none = Ml.Data.SkipRows(keyed, 10);
        var trainer = Ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [4], Epochs = 1, ValidationData = none });
        var e = Assert.Throws<InvalidOperationException>(() => trainer.Fit(keyed));
        StringAssert.Contains(e.Message, "validation data has no rows");
    }
}
