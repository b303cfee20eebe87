using Allauzen.ML.Tests.TestSupport;
using Allauzen.ML.Torch;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Allauzen.ML.Tests.Torch;

[TestClass]
public sealed class TensorBatcherTests
{
    [ClassInitialize]
    public static void Init(TestContext _) => TorchRuntime.EnsureInitialized();

    private static long[] EpochOrder(TensorBatcher b, int seed, int batchSize = 7)
    {
        var order = new List<long>();
        foreach (var batch in b.GetBatches(batchSize, shuffle: true, seed, CancellationToken.None))
        {
            using (batch)
            {
                // Feature 0 holds the row index in this data set.
                var x = batch.X.select(1, 0).contiguous().data<float>().ToArray();
                order.AddRange(x.Select(v => (long)v));
                Assert.IsTrue(batch.X.shape[0] == batch.Count && batch.Y!.shape[0] == batch.Count);
            }
        }
        return order.ToArray();
    }

    private static IDataView Indexed(MLContext ml, int rows) =>
        ml.Data.LoadFromEnumerable(Enumerable.Range(0, rows).Select(i => new IndexRow { Features = [i, i % 3], Label = (uint)(i % 3) }));

    [TestMethod]
    [DataRow(DataCaching.InMemory)]
    [DataRow(DataCaching.Streaming)]
    public void Shuffle_SameSeedSameOrder_EveryRowOnce_EpochsDiffer(DataCaching caching)
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.Cache(Indexed(ml, 100));
        using var b = TensorBatcher.Create(data, "Features", "Label", caching, 1 << 30, null, InvalidRowPolicy.Throw, 1000, torch.CPU);
        Assert.AreEqual(caching == DataCaching.InMemory, b.InMemory);
        var a1 = EpochOrder(b, 11);
        var a2 = EpochOrder(b, 11);
        var c = EpochOrder(b, 12);
        CollectionAssert.AreEqual(a1, a2);
        CollectionAssert.AreNotEqual(a1, c);
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 100).Select(i => (long)i).ToArray(), a1);
        // Labels are key − 1 and stay aligned with their rows.
        foreach (var batch in b.GetBatches(9, true, 3, CancellationToken.None))
        {
            using (batch)
            {
                var x = batch.X.select(1, 1).contiguous().data<float>().ToArray();
                var y = batch.Y!.data<long>().ToArray();
                CollectionAssert.AreEqual(x.Select(v => (long)v).ToArray(), y);
            }
        }
    }

    [TestMethod]
    public void NonShufflableView_IsShuffledThroughThePool()
    {
        var ml = new MLContext(seed: 1);
        var data = Indexed(ml, 200);
        Assert.IsFalse(data.CanShuffle);
        using var b = TensorBatcher.Create(data, "Features", "Label", DataCaching.Streaming, 0, null, InvalidRowPolicy.Throw, 50, torch.CPU);
        var order = EpochOrder(b, 5);
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 200).Select(i => (long)i).ToArray(), order);
        CollectionAssert.AreNotEqual(Enumerable.Range(0, 200).Select(i => (long)i).ToArray(), order);
        CollectionAssert.AreEqual(order, EpochOrder(b, 5));
    }

    [TestMethod]
    public void EarlierBatchesStayValid_WhenBuffersAreReused()
    {
        var ml = new MLContext(seed: 1);
        using var b = TensorBatcher.Create(Indexed(ml, 50), "Features", "Label", DataCaching.Streaming, 0, null, InvalidRowPolicy.Throw, 10, torch.CPU);
        var batches = b.GetBatches(10, shuffle: false, 0, CancellationToken.None).ToList();
        var firsts = batches.Select(t => t.X[0, 0].item<float>()).ToArray();
        CollectionAssert.AreEqual(new float[] { 0, 10, 20, 30, 40 }, firsts);
        foreach (var t in batches)
            t.Dispose();
    }

    [TestMethod]
    public void Streaming_OneMillionRows_BoundedMemory()
    {
        const int Rows = 1_000_000, Width = 16;
        var data = new GeneratedView(Rows, Width);
        using var b = TensorBatcher.Create(data, "Features", "Label", DataCaching.Auto, maxInMemoryBytes: 8 << 20, null,
            InvalidRowPolicy.Throw, 1000, torch.CPU);
        Assert.IsFalse(b.InMemory, "1e6 × 16 floats exceed the 8 MB threshold: the batcher must stream");
        GC.Collect();
        long before = GC.GetTotalMemory(true);
        long rows = 0, peak = 0;
        double sum = 0;
        int batches = 0;
        foreach (var batch in b.GetBatches(4096, shuffle: true, 1, CancellationToken.None))
        {
            using (batch)
            {
                rows += batch.Count;
                sum += batch.Y!.sum().item<long>();
                if (++batches % 50 == 0)
                    peak = Math.Max(peak, GC.GetTotalMemory(false) - before);
            }
        }
        Assert.AreEqual(Rows, rows);
        Assert.AreEqual(Rows / 2.0, sum, 1.0, "labels alternate 0/1");
        // The whole matrix would be 64 MB; streaming keeps a batch and a shuffle pool.
        Assert.IsLessThan(32L << 20, peak, $"managed memory grew by {peak >> 20} MB while streaming");
    }

    /// <summary>Note: LoadFromEnumerable reads a [KeyType(n)] uint as 0-based (value v → key v + 1; v ≥ n → missing).</summary>
    public sealed class IndexRow
    {
        [VectorType(2)]
        public float[] Features { get; set; } = [];

        [KeyType(3)]
        public uint Label { get; set; }
    }

    /// <summary>A view that computes its rows on the fly (nothing materialised), not shufflable.</summary>
    private sealed class GeneratedView(int rows, int width) : IDataView
    {
        private readonly DataViewSchema _schema = MakeSchema(width);
        private readonly int _width = width;

        private static DataViewSchema MakeSchema(int width)
        {
            var b = new DataViewSchema.Builder();
            b.AddColumn("Features", new VectorDataViewType(NumberDataViewType.Single, width));
            b.AddColumn("Label", new KeyDataViewType(typeof(uint), 2));
            return b.ToSchema();
        }

        public DataViewSchema Schema => _schema;

        public bool CanShuffle => false;

        public long? GetRowCount() => rows;

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
            new Cursor(this, columnsNeeded.Select(c => c.Index).ToHashSet());

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            [GetRowCursor(columnsNeeded, rand)];

        private sealed class Cursor(GeneratedView view, HashSet<int> active) : DataViewRowCursor
        {
            private long _pos = -1;

            public override DataViewSchema Schema => view._schema;

            public override long Position => _pos;

            public override long Batch => 0;

            public override bool MoveNext() => ++_pos < view.GetRowCount();

            public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_pos, 0);

            public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

            public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
            {
                if (column.Index == 0)
                {
                    ValueGetter<VBuffer<float>> g = (ref VBuffer<float> v) =>
                    {
                        var e = VBufferEditor.Create(ref v, view._width);
                        for (int i = 0; i < view._width; i++)
                            e.Values[i] = (_pos + i) % 7;
                        v = e.Commit();
                    };
                    return (ValueGetter<TValue>)(Delegate)g;
                }
                ValueGetter<uint> l = (ref uint v) => v = (uint)(_pos % 2 + 1);
                return (ValueGetter<TValue>)(Delegate)l;
            }
        }
    }
}
