using Allauzen.ML.Core;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Core;

[TestClass]
public sealed class MlNetInternalsTests
{
    [TestMethod]
    public void SelfTestFindsEveryMemberOnThisMlNet()
    {
        var missing = MlNetInternals.MissingMembers();
        Assert.IsEmpty(missing, "missing: " + string.Join("; ", missing.Select(m => m.Name)));
        Assert.IsGreaterThanOrEqualTo(18, MlNetInternals.AllMembers.Count);
        MlNetInternals.EnsureAvailable();
        StringAssert.StartsWith(MlNetInternals.LoadedVersion, "Microsoft.ML " + MlNetInternals.WrittenFor);
    }

    [TestMethod]
    public void MissingMemberMessageNamesMemberAndBothVersions()
    {
        string message = MlNetInternals.MissingMessage("Microsoft.ML.Foo.Bar()");
        StringAssert.Contains(message, "Microsoft.ML.Foo.Bar()");
        StringAssert.Contains(message, MlNetInternals.LoadedVersion);
        StringAssert.Contains(message, "written for ML.NET 5.0.1");
    }

    [TestMethod]
    public void EveryUseWorksThroughTheDoor()
    {
        var ml = new MLContext(seed: 1);
        var env = MlNetInternals.CatalogEnvironment(ml.Transforms);
        Assert.IsNotNull(env);
        Assert.IsNull(MlNetInternals.CatalogEnvironment(new object()));

        var (gpu, fallback) = MlNetInternals.EnvironmentDevice(env!);
        Assert.AreEqual(ml.GpuDeviceId, gpu);
        Assert.AreEqual(ml.FallbackToCpu, fallback);

        var column = MlNetInternals.NewSchemaShapeColumn("F", SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, new SchemaShape([]));
        Assert.AreEqual("F", column.Name);
        Assert.AreEqual(NumberDataViewType.Single, column.ItemType);

        var data = ml.Data.LoadFromEnumerable(new[] { new Row { X = 1 } });
        Assert.IsNull(MlNetInternals.FindOnnxWalkBlocker(data, data));
        var normalized = ml.Transforms.NormalizeMinMax("X").Fit(data).Transform(data);
        Assert.IsNull(MlNetInternals.FindOnnxWalkBlocker(normalized, data), "ML.NET's own transform is walked through");
        var foreign = new ForeignView(data);
        Assert.AreSame(foreign, MlNetInternals.FindOnnxWalkBlocker(foreign, data));
    }

    private sealed class Row
    {
        public float X { get; set; }
    }

    private sealed class ForeignView(IDataView source) : IDataView
    {
        public bool CanShuffle => false;

        public DataViewSchema Schema => source.Schema;

        public long? GetRowCount() => source.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
            => source.GetRowCursor(columnsNeeded, rand);

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
            => source.GetRowCursorSet(columnsNeeded, n, rand);
    }
}
