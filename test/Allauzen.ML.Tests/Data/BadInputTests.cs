using Allauzen.ML.Mlp;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Data;

[TestClass]
public sealed class BadInputTests
{
    private static readonly MLContext Ml = new(seed: 1);

    private static MlpTrainer Trainer(InvalidRowPolicy policy = InvalidRowPolicy.Throw) =>
        Ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [4], Epochs = 1, InvalidRows = policy });

    private static IDataView Rows(params KeyRow[] rows) => Ml.Data.LoadFromEnumerable(rows);

    private static KeyRow Row(uint label, params float[] f) => new() { Label = label, Features = f.Length == 0 ? [1, 2, 3] : f };

    [TestMethod]
    public void MissingFeatureColumn_NamesIt()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            Ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { FeatureColumnName = "Pixels" }).Fit(Rows(Row(1), Row(2))));
        StringAssert.Contains(e.Message, "'Pixels'");
    }

    [TestMethod]
    public void LabelNotAKey_SaysMapValueToKey()
    {
        var data = Ml.Data.LoadFromEnumerable(new[] { new FloatLabelRow { Label = 1, Features = [1, 2, 3] } });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Trainer().Fit(data));
        StringAssert.Contains(e.Message, "'Label'");
        StringAssert.Contains(e.Message, "MapValueToKey");
    }

    [TestMethod]
    public void NaNFeature_ThrowsWithRowIndex_OrIsSkipped()
    {
        var data = Rows(Row(1), Row(2), Row(1, 1, float.NaN, 3), Row(2));
        var e = Assert.Throws<InvalidDataException>(() => Trainer().Fit(data));
        StringAssert.Contains(e.Message, "'Features'");
        StringAssert.Contains(e.Message, "row 2");
        Assert.IsNotNull(Trainer(InvalidRowPolicy.Skip).Fit(data));
        var inf = Rows(Row(1), Row(2, 1, float.PositiveInfinity, 3));
        Assert.Throws<InvalidDataException>(() => Trainer().Fit(inf));
    }

    [TestMethod]
    public void MissingLabelKeyZero_ThrowsWithRowIndex()
    {
        var data = Rows(Row(1), Row(7), Row(2)); // 7 ≥ KeyType count: LoadFromEnumerable makes it a missing key (0)
        var e = Assert.Throws<InvalidDataException>(() => Trainer().Fit(data));
        StringAssert.Contains(e.Message, "'Label'");
        StringAssert.Contains(e.Message, "row 1");
    }

    [TestMethod]
    public void EmptyData_Throws()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Trainer().Fit(Rows()));
        StringAssert.Contains(e.Message, "has no rows");
    }

    [TestMethod]
    public void OneClass_Throws()
    {
        var data = Ml.Data.LoadFromEnumerable(new[] { new BlobRow { Label = "x", Features = new float[8] }, new BlobRow { Label = "x", Features = new float[8] } });
        var keyed = Ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Trainer().Fit(keyed));
        StringAssert.Contains(e.Message, "at least 2 classes");
    }

    [TestMethod]
    public void WrongVectorSizeAtScoring_NamesColumnExpectedAndActual()
    {
        var t = Trainer().Fit(Rows(Row(1), Row(2), Row(1), Row(2)));
        var wide = Ml.Data.LoadFromEnumerable(new[] { new WideKeyRow { Label = 1, Features = new float[5] } });
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => t.Transform(wide));
        StringAssert.Contains(e.Message, "'Features'");
        StringAssert.Contains(e.Message, "Vector<Single, 3>");
        StringAssert.Contains(e.Message, "Vector<Single, 5>");
    }

    public sealed class KeyRow
    {
        [VectorType(3)]
        public float[] Features { get; set; } = [];

        [KeyType(3)]
        public uint Label { get; set; }
    }

    public sealed class WideKeyRow
    {
        [VectorType(5)]
        public float[] Features { get; set; } = [];

        [KeyType(3)]
        public uint Label { get; set; }
    }

    public sealed class FloatLabelRow
    {
        [VectorType(3)]
        public float[] Features { get; set; } = [];

        public float Label { get; set; }
    }
}
