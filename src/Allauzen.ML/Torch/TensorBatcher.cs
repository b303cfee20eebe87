using Allauzen.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Torch;

/// <summary>One mini-batch: features [count, n] float32 and labels [count] int64 (class index = key − 1).</summary>
internal sealed class TensorBatch(Tensor x, Tensor? y, int count) : IDisposable
{
    public Tensor X { get; } = x;

    public Tensor? Y { get; } = y;

    public int Count { get; } = count;

    public void Dispose()
    {
        X.Dispose();
        Y?.Dispose();
    }
}

/// <summary>
/// Reads a <c>Vector&lt;Single, n&gt;</c> feature column and an optional key-typed label from any
/// <see cref="IDataView"/> into float32/int64 tensors, one tensor per mini-batch (never one per row).
/// Two paths: in memory (materialised once, shuffled by a seeded permutation each epoch) when the
/// feature matrix is small enough, otherwise streaming with a row cursor (shuffled by the view, or
/// through ML.NET's bounded shuffle pool when the view cannot shuffle), so memory stays bounded.
/// Rows are validated as they are read: NaN/infinite features and missing labels (key 0) throw with
/// the row index, or are skipped and counted, as <see cref="InvalidRowPolicy"/> says.
/// </summary>
internal sealed class TensorBatcher : IDisposable
{
    private readonly IDataView _data;
    private readonly DataViewSchema.Column _features;
    private readonly DataViewSchema.Column? _label;
    private readonly Func<DataViewRowId, bool>? _rowFilter;
    private readonly InvalidRowPolicy _policy;
    private readonly int _shufflePool;
    private readonly Device _device;
    private Tensor? _allX;
    private Tensor? _allY;
    private long _skipped;

    private TensorBatcher(IDataView data, DataViewSchema.Column features, DataViewSchema.Column? label, int featureCount,
        int? classes, Func<DataViewRowId, bool>? rowFilter, InvalidRowPolicy policy, int shufflePool, Device device)
    {
        (_data, _features, _label, _rowFilter) = (data, features, label, rowFilter);
        (FeatureCount, NumberOfClasses) = (featureCount, classes);
        (_policy, _shufflePool, _device) = (policy, shufflePool, device);
    }

    /// <summary>Length of the feature vectors.</summary>
    public int FeatureCount { get; }

    /// <summary>Number of classes (the label key's cardinality), when a label is read.</summary>
    public int? NumberOfClasses { get; }

    /// <summary>True when the data was materialised in memory.</summary>
    public bool InMemory => _allX is not null;

    /// <summary>Rows in memory (in-memory path), or null when streaming.</summary>
    public long? RowCount => _allX?.shape[0];

    /// <summary>Rows skipped so far because of <see cref="InvalidRowPolicy.Skip"/>.</summary>
    public long SkippedRows => _skipped;

    /// <summary>
    /// Validates the schema (column names, types, vector size, key count) and prepares the batcher.
    /// </summary>
    /// <param name="data">The data.</param>
    /// <param name="featureColumn">Feature column name.</param>
    /// <param name="labelColumn">Label column name, or null to read features only.</param>
    /// <param name="caching">In-memory, streaming or automatic.</param>
    /// <param name="maxInMemoryBytes">Threshold for <see cref="DataCaching.Auto"/>.</param>
    /// <param name="rowFilter">Keeps the rows whose id passes (validation split), or all rows when null.</param>
    /// <param name="policy">What to do with invalid rows.</param>
    /// <param name="shufflePool">Shuffle pool for streaming views that cannot shuffle.</param>
    /// <param name="device">Device the batches are placed on.</param>
    /// <param name="expectedFeatureCount">When set, the feature vector must have this size.</param>
    /// <param name="cancellation">Cancels the materialisation pass.</param>
    public static TensorBatcher Create(IDataView data, string featureColumn, string? labelColumn, DataCaching caching,
        long maxInMemoryBytes, Func<DataViewRowId, bool>? rowFilter, InvalidRowPolicy policy, int shufflePool, Device device,
        int? expectedFeatureCount = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        int n = SchemaChecks.FeatureVector(data.Schema, featureColumn, "feature", expectedFeatureCount);
        int? classes = labelColumn is null ? null : SchemaChecks.KeyLabel(data.Schema, labelColumn);
        var batcher = new TensorBatcher(data, data.Schema[featureColumn],
            labelColumn is null ? null : data.Schema[labelColumn], n, classes, rowFilter, policy, shufflePool, device);
        bool inMemory = caching switch
        {
            DataCaching.InMemory => true,
            DataCaching.Streaming => false,
            _ => (data.GetRowCount() ?? CountRows(data, cancellation)) * n * 4L <= maxInMemoryBytes,
        };
        if (inMemory)
            batcher.Materialise(cancellation);
        return batcher;
    }

    /// <summary>
    /// Throws an <see cref="InvalidOperationException"/> when <paramref name="data"/> has no rows, naming
    /// <paramref name="who"/>, the <paramref name="role"/> of the data and the view's column names. Reads at most one
    /// row with no column active (or uses <see cref="IDataView.GetRowCount"/> when the view knows it).
    /// </summary>
    /// <param name="data">The view.</param>
    /// <param name="who">The component, for the message (e.g. "Mlp").</param>
    /// <param name="role">What the view is, for the message (e.g. "training data").</param>
    public static void RequireRows(IDataView data, string who, string role)
    {
        ArgumentNullException.ThrowIfNull(data);
        bool empty = data.GetRowCount() is long known ? known == 0 : !HasRow(data);
        if (!empty)
            return;
        var names = data.Schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'");
        throw new InvalidOperationException(
            $"{who}: the {role} has no rows (an empty IDataView with columns {string.Join(", ", names)}); check the file, loader or filter that produced it.");
    }

    private static bool HasRow(IDataView data)
    {
        using var cursor = data.GetRowCursor([]);
        return cursor.MoveNext();
    }

    private static long CountRows(IDataView data, CancellationToken ct)
    {
        long count = 0;
        using var cursor = data.GetRowCursor([]);
        while (cursor.MoveNext())
        {
            if ((count & 0xFFFF) == 0)
                ct.ThrowIfCancellationRequested();
            count++;
        }
        return count;
    }

    private void Materialise(CancellationToken ct)
    {
        int n = FeatureCount;
        if (_rowFilter is null && _data.GetRowCount() is long known && known <= int.MaxValue / Math.Max(1, n))
        {
            // The row count is known: rows go straight into the one array the tensor is made from (no chunks to copy).
            var x = new float[known * n];
            var y = new long[known];
            long rows = 0;
            using (var reader = new RowReader(this, _data.GetRowCursor(Columns())))
            {
                while (rows < known && reader.Next(x.AsSpan((int)(rows * n), n), out y[rows]))
                {
                    if ((rows & 0xFFF) == 0)
                        ct.ThrowIfCancellationRequested();
                    rows++;
                }
            }
            _allX = torch.tensor(rows == known ? x : x[..(int)(rows * n)], [rows, n]).to(_device);
            _allY = torch.tensor(rows == known ? y : y[..(int)rows], [rows]).to(_device);
            return;
        }
        MaterialiseInChunks(ct);
    }

    private void MaterialiseInChunks(CancellationToken ct)
    {
        var xs = new List<float[]>();
        var ys = new List<long[]>();
        const int Chunk = 4096;
        int n = FeatureCount;
        long total = 0;
        var reader = new RowReader(this, _data.GetRowCursor(Columns()));
        using (reader)
        {
            var x = new float[Chunk * n];
            var y = new long[Chunk];
            int filled = 0;
            while (reader.Next(x.AsSpan(filled * n, n), out y[filled]))
            {
                if ((total & 0xFFF) == 0)
                    ct.ThrowIfCancellationRequested();
                filled++;
                total++;
                if (filled == Chunk)
                {
                    xs.Add(x);
                    ys.Add(y);
                    x = new float[Chunk * n];
                    y = new long[Chunk];
                    filled = 0;
                }
            }
            if (filled > 0)
            {
                xs.Add(x[..(filled * n)]);
                ys.Add(y[..filled]);
            }
        }
        if (total > int.MaxValue / Math.Max(1, n))
            throw new InvalidOperationException($"The feature matrix ({total} rows × {n}) is too large to keep in memory; use DataCaching.Streaming.");
        var allX = new float[total * n];
        var allY = new long[total];
        long offX = 0, offY = 0;
        for (int i = 0; i < xs.Count; i++)
        {
            xs[i].CopyTo(allX, offX);
            ys[i].CopyTo(allY, offY);
            offX += xs[i].Length;
            offY += ys[i].Length;
        }
        _allX = torch.tensor(allX, [total, n]).to(_device);
        _allY = torch.tensor(allY, [total]).to(_device);
    }

    private IEnumerable<DataViewSchema.Column> Columns() =>
        _label is DataViewSchema.Column l ? [_features, l] : [_features];

    /// <summary>
    /// The mini-batches of one epoch. Each batch is owned by the caller, who disposes it.
    /// </summary>
    /// <param name="batchSize">Rows per batch (the last one may be smaller).</param>
    /// <param name="shuffle">Shuffle with <paramref name="epochSeed"/> (deterministic for a given seed).</param>
    /// <param name="epochSeed">Seed of this epoch's order.</param>
    /// <param name="ct">Checked between batches.</param>
    public IEnumerable<TensorBatch> GetBatches(int batchSize, bool shuffle, int epochSeed, CancellationToken ct)
    {
        if (_allX is not null)
            return InMemoryBatches(batchSize, shuffle, epochSeed, ct);
        return StreamingBatches(batchSize, shuffle, epochSeed, ct);
    }

    private IEnumerable<TensorBatch> InMemoryBatches(int batchSize, bool shuffle, int epochSeed, CancellationToken ct)
    {
        long rows = _allX!.shape[0];
        Tensor? perm = null;
        if (shuffle)
        {
            using var gen = new torch.Generator((ulong)(uint)epochSeed, torch.CPU);
            using var p = torch.randperm(rows, generator: gen);
            perm = p.to(_device);
        }
        try
        {
            for (long start = 0; start < rows; start += batchSize)
            {
                ct.ThrowIfCancellationRequested();
                long len = Math.Min(batchSize, rows - start);
                TensorBatch batch;
                if (perm is null)
                {
                    batch = new TensorBatch(_allX.narrow(0, start, len), _label is null ? null : _allY!.narrow(0, start, len), (int)len);
                }
                else
                {
                    using var idx = perm.narrow(0, start, len);
                    batch = new TensorBatch(_allX.index_select(0, idx), _label is null ? null : _allY!.index_select(0, idx), (int)len);
                }
                yield return batch;
            }
        }
        finally
        {
            perm?.Dispose();
        }
    }

    private IEnumerable<TensorBatch> StreamingBatches(int batchSize, bool shuffle, int epochSeed, CancellationToken ct)
    {
        IDataView view = _data;
        DataViewRowCursor cursor;
        if (shuffle && !_data.CanShuffle)
        {
            view = new MLContext(epochSeed).Data.ShuffleRows(_data, epochSeed, _shufflePool, shuffleSource: false);
            cursor = view.GetRowCursor(Columns().Select(c => view.Schema[c.Name]));
        }
        else
        {
            cursor = _data.GetRowCursor(Columns(), shuffle ? new Random(epochSeed) : null);
        }
        int n = FeatureCount;
        var x = new float[batchSize * n];
        var y = new long[batchSize];
        using var reader = new RowReader(this, cursor);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            int filled = 0;
            while (filled < batchSize && reader.Next(x.AsSpan(filled * n, n), out y[filled]))
                filled++;
            if (filled == 0)
                yield break;
            var xt = torch.tensor(x, [batchSize, n]);
            var yt = _label is null ? null : torch.tensor(y, [batchSize]);
            if (filled < batchSize)
            {
                var xs = xt.narrow(0, 0, filled);
                xt.Dispose();
                xt = xs;
                if (yt is not null)
                {
                    var ys = yt.narrow(0, 0, filled);
                    yt.Dispose();
                    yt = ys;
                }
            }
            if (_device.type != DeviceType.CPU)
            {
                var xd = xt.to(_device);
                xt.Dispose();
                xt = xd;
                if (yt is not null)
                {
                    var yd = yt.to(_device);
                    yt.Dispose();
                    yt = yd;
                }
            }
            yield return new TensorBatch(xt, yt, filled);
            if (filled < batchSize)
                yield break;
        }
    }

    /// <summary>Reads valid rows from a cursor into spans, applying the filter and the invalid-row policy.</summary>
    private sealed class RowReader : IDisposable
    {
        private readonly TensorBatcher _owner;
        private readonly DataViewRowCursor _cursor;
        private readonly ValueGetter<VBuffer<float>> _x;
        private readonly ValueGetter<uint>? _y;
        private readonly ValueGetter<DataViewRowId> _id;
        private VBuffer<float> _buffer;

        public RowReader(TensorBatcher owner, DataViewRowCursor cursor)
        {
            _owner = owner;
            _cursor = cursor;
            _x = cursor.GetGetter<VBuffer<float>>(cursor.Schema[owner._features.Name]);
            if (owner._label is DataViewSchema.Column l)
                _y = MakeLabelGetter(cursor, cursor.Schema[l.Name]);
            _id = cursor.GetIdGetter();
        }

        private static ValueGetter<uint> MakeLabelGetter(DataViewRow row, DataViewSchema.Column col)
        {
            var raw = col.Type.RawType;
            if (raw == typeof(uint))
                return row.GetGetter<uint>(col);
            if (raw == typeof(byte))
            {
                var g = row.GetGetter<byte>(col);
                byte b = 0;
                return (ref uint v) => { g(ref b); v = b; };
            }
            if (raw == typeof(ushort))
            {
                var g = row.GetGetter<ushort>(col);
                ushort s = 0;
                return (ref uint v) => { g(ref s); v = s; };
            }
            var g64 = row.GetGetter<ulong>(col);
            ulong u = 0;
            return (ref uint v) => { g64(ref u); v = (uint)u; };
        }

        public bool Next(Span<float> x, out long y)
        {
            y = 0;
            while (_cursor.MoveNext())
            {
                DataViewRowId id = default;
                _id(ref id);
                if (_owner._rowFilter is not null && !_owner._rowFilter(id))
                    continue;
                _x(ref _buffer);
                if (_buffer.Length != _owner.FeatureCount)
                    throw new InvalidOperationException(
                        $"Feature column '{_owner._features.Name}' has {_buffer.Length} values at row {id.Low}; expected {_owner.FeatureCount}.");
                _buffer.CopyTo(x);
                int bad = FirstNonFinite(x);
                if (bad >= 0)
                {
                    if (_owner._policy == InvalidRowPolicy.Throw)
                        throw new InvalidDataException(
                            $"Feature column '{_owner._features.Name}' has a non-finite value ({x[bad]}) at row {id.Low}, slot {bad}. " +
                            "Clean the data (e.g. ReplaceMissingValues) or set InvalidRows = InvalidRowPolicy.Skip.");
                    _owner._skipped++;
                    continue;
                }
                if (_y is not null)
                {
                    uint key = 0;
                    _y(ref key);
                    if (key == 0 || key > _owner.NumberOfClasses)
                    {
                        if (_owner._policy == InvalidRowPolicy.Throw)
                            throw new InvalidDataException(
                                $"Label column '{_owner._label!.Value.Name}' has a missing value (key {key}) at row {id.Low}; " +
                                $"expected a key in 1..{_owner.NumberOfClasses}. Set InvalidRows = InvalidRowPolicy.Skip to drop such rows.");
                        _owner._skipped++;
                        continue;
                    }
                    y = key - 1;
                }
                return true;
            }
            return false;
        }

        private static int FirstNonFinite(ReadOnlySpan<float> x)
        {
            for (int i = 0; i < x.Length; i++)
            {
                if (!float.IsFinite(x[i]))
                    return i;
            }
            return -1;
        }

        public void Dispose() => _cursor.Dispose();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _allX?.Dispose();
        _allY?.Dispose();
    }
}
