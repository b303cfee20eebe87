using System.Buffers;
using System.Globalization;
using System.Text;

namespace Allauzen.ML.Data;

/// <summary>
/// Split-independent sharding and merging of <see cref="IDataView"/>s by a row key: an integer or text column that
/// names each row (an image id, an utterance path). Which shard a row goes to, and the noise a component draws for
/// it, depend on the key only, never on the row's position, so any split or order of the data gives the same
/// per-key results.
/// </summary>
public static class DataShards
{
    /// <summary>
    /// The rows of <paramref name="data"/> whose key falls in shard <paramref name="index"/> of <paramref name="count"/>:
    /// those with <c>KeyHash(key) % count == index</c> (<see cref="KeyHash(long)"/>, <see cref="KeyHash(string)"/>).
    /// The shards of 0..count−1 partition the data (every row in exactly one), each keeps the input's order and schema,
    /// and the assignment is the same in every process, on every machine and for every order of the rows. Lazy:
    /// nothing is read until a cursor is opened.
    /// </summary>
    /// <param name="data">The data.</param>
    /// <param name="index">The shard, 0 ≤ index &lt; count.</param>
    /// <param name="count">The number of shards, ≥ 1.</param>
    /// <param name="keyColumnName">An integer (Int8..UInt64, or key-typed) or text column.</param>
    /// <exception cref="ArgumentOutOfRangeException">count &lt; 1, index outside [0, count), or the key column is missing or of another type (named in the message).</exception>
    public static IDataView Shard(this IDataView data, int index, int count, string keyColumnName)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        if (index < 0 || index >= count)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"Shard index must lie in [0, {count}) (got {index}).");
        var key = RowKeys.Find(data.Schema, keyColumnName, "shard key");
        return new ShardView(data, key.Index, (ulong)index, (ulong)count);
    }

    /// <summary>The shard of a row with an integer key: <c>KeyHash(key) % count</c> is its index.</summary>
    /// <param name="key">The key (signed and unsigned integer columns hash their 64-bit two's-complement value).</param>
    public static ulong KeyHash(long key) => RowKeys.IntegerHash((ulong)key);

    /// <summary>The stable 64-bit hash of a text key: FNV-1a over its UTF-8 bytes, then a SplitMix64 finaliser.</summary>
    /// <param name="key">The key.</param>
    public static ulong KeyHash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return RowKeys.TextHash(key.AsSpan());
    }

    /// <summary>
    /// Concatenates shard outputs in key order (ascending: numeric for integer keys, ordinal for text), so the result
    /// does not depend on how the data was split or in which order the shards finished. The shards must share one
    /// schema (column names and types) and hold each key at most once overall: a key seen twice is an error naming it
    /// and both shards (a shard merged twice is never counted twice). Materialises the rows in memory; select the
    /// columns you need first when they are large. Save the result with <c>ml.Data.SaveAsBinary</c> if wanted.
    /// </summary>
    /// <param name="shards">The shard outputs (e.g. loaded with <c>ml.Data.LoadFromBinary</c>).</param>
    /// <param name="keyColumnName">The key column, present in every shard.</param>
    /// <exception cref="ArgumentException">No shard, a schema differs from the first shard's, or a key repeats.</exception>
    public static IDataView ConcatenateByKey(IEnumerable<IDataView> shards, string keyColumnName)
    {
        ArgumentNullException.ThrowIfNull(shards);
        var list = shards.ToList();
        if (list.Count == 0)
            throw new ArgumentException("ConcatenateByKey needs at least one shard.", nameof(shards));
        var schema = list[0].Schema;
        var keyColumn = RowKeys.Find(schema, keyColumnName, "merge key");
        var rows = new List<(RowKey Key, int Shard, object[] Values)>();
        for (int s = 0; s < list.Count; s++)
        {
            var view = list[s];
            CheckSameSchema(schema, view.Schema, s);
            using var cursor = view.GetRowCursor(view.Schema);
            var key = RowKeys.Reader(cursor, cursor.Schema[keyColumn.Index]);
            var readers = view.Schema.Select(c => ColumnStore.Reader(cursor, c)).ToArray();
            while (cursor.MoveNext())
                rows.Add((key(), s, readers.Select(r => r()).ToArray()));
        }
        rows.Sort((a, b) => a.Key.CompareTo(b.Key));
        for (int i = 1; i < rows.Count; i++)
        {
            if (rows[i].Key.CompareTo(rows[i - 1].Key) == 0)
                throw new ArgumentException(
                    $"Key '{rows[i].Key}' of column '{keyColumnName}' appears in shard {rows[i - 1].Shard} and shard {rows[i].Shard}: each key must be in exactly one shard once.",
                    nameof(shards));
        }
        return new ColumnStore(schema, rows.Select(r => r.Values).ToArray());
    }

    private static void CheckSameSchema(DataViewSchema expected, DataViewSchema actual, int shard)
    {
        bool same = expected.Count == actual.Count
            && expected.Zip(actual).All(p => p.First.Name == p.Second.Name && p.First.Type.Equals(p.Second.Type));
        if (!same)
            throw new ArgumentException(
                $"Shard {shard} has the schema ({Describe(actual)}); shard 0 has ({Describe(expected)}). Merge outputs of the same model only.", "shards");
    }

    private static string Describe(DataViewSchema s) => string.Join(", ", s.Select(c => $"{c.Name}: {c.Type}"));
}

/// <summary>A row key read from a key column: an integer (as 64 bits, signed or not) or a text.</summary>
internal readonly record struct RowKey(ulong Bits, string? Text, bool Signed) : IComparable<RowKey>
{
    /// <summary>The stable hash (<see cref="DataShards.KeyHash(long)"/>, <see cref="DataShards.KeyHash(string)"/>).</summary>
    public ulong Hash => Text is null ? RowKeys.IntegerHash(Bits) : RowKeys.TextHash(Text.AsSpan());

    public int CompareTo(RowKey other) =>
        Text is not null || other.Text is not null ? string.CompareOrdinal(Text, other.Text)
        : Signed ? ((long)Bits).CompareTo((long)other.Bits) : Bits.CompareTo(other.Bits);

    public override string ToString() => Text ?? (Signed ? ((long)Bits).ToString(CultureInfo.InvariantCulture) : Bits.ToString(CultureInfo.InvariantCulture));
}

/// <summary>Finding, reading and hashing row keys (shared by sharding and by components that draw per-row randomness).</summary>
internal static class RowKeys
{
    private const ulong FnvOffset = 0xCBF29CE484222325UL, FnvPrime = 0x100000001B3UL;

    /// <summary>SplitMix64's finaliser (Steele, Lea and Flood 2014): a bijection of 64-bit words.</summary>
    public static ulong SplitMix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public static ulong IntegerHash(ulong bits) => SplitMix(bits ^ 0x6B6579496E74UL);

    public static ulong TextHash(ReadOnlySpan<char> text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        byte[]? rented = max > 512 ? ArrayPool<byte>.Shared.Rent(max) : null;
        Span<byte> bytes = rented ?? stackalloc byte[512];
        int n = Encoding.UTF8.GetBytes(text, bytes);
        ulong h = FnvOffset;
        foreach (byte b in bytes[..n])
            h = (h ^ b) * FnvPrime;
        if (rented is not null)
            ArrayPool<byte>.Shared.Return(rented);
        return SplitMix(h);
    }

    /// <summary>The key column <paramref name="name"/>: an integer, key-typed or text scalar; otherwise an error naming it and the option.</summary>
    public static DataViewSchema.Column Find(DataViewSchema schema, string name, string role)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var col = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException("inputSchema", $"Could not find {role} column '{name}'.");
        if (!IsKeyType(col.Type))
            throw new ArgumentOutOfRangeException("inputSchema",
                $"Schema mismatch for {role} column '{name}': expected an integer (Int8..UInt64 or a key type) or text scalar, got {col.Type}.");
        return col;
    }

    /// <summary>The same check on a <see cref="SchemaShape"/>.</summary>
    public static void Check(SchemaShape shape, string name, string role)
    {
        if (!SchemaChecks.TryFind(shape, name, out var col))
            throw new ArgumentOutOfRangeException("inputSchema", $"Could not find {role} column '{name}'.");
        if (col.Kind != SchemaShape.Column.VectorKind.Scalar || !IsKeyType(col.ItemType))
            throw new ArgumentOutOfRangeException("inputSchema",
                $"Schema mismatch for {role} column '{name}': expected an integer (Int8..UInt64 or a key type) or text scalar, got {col.ItemType}.");
    }

    private static bool IsKeyType(DataViewType t) =>
        t is TextDataViewType or KeyDataViewType
        || t == NumberDataViewType.SByte || t == NumberDataViewType.Int16 || t == NumberDataViewType.Int32 || t == NumberDataViewType.Int64
        || t == NumberDataViewType.Byte || t == NumberDataViewType.UInt16 || t == NumberDataViewType.UInt32 || t == NumberDataViewType.UInt64;

    /// <summary>A reader of the key of the row's current position.</summary>
    public static Func<RowKey> Reader(DataViewRow row, DataViewSchema.Column column)
    {
        var t = column.Type;
        if (t is TextDataViewType)
        {
            var g = row.GetGetter<ReadOnlyMemory<char>>(column);
            ReadOnlyMemory<char> v = default;
            return () => { g(ref v); return new RowKey(0, v.ToString(), false); };
        }
        return t.RawType switch
        {
            var r when r == typeof(sbyte) => Integer<sbyte>(row, column, v => (ulong)(long)v, true),
            var r when r == typeof(short) => Integer<short>(row, column, v => (ulong)(long)v, true),
            var r when r == typeof(int) => Integer<int>(row, column, v => (ulong)(long)v, true),
            var r when r == typeof(long) => Integer<long>(row, column, v => (ulong)v, true),
            var r when r == typeof(byte) => Integer<byte>(row, column, v => v, false),
            var r when r == typeof(ushort) => Integer<ushort>(row, column, v => v, false),
            var r when r == typeof(uint) => Integer<uint>(row, column, v => v, false),
            _ => Integer<ulong>(row, column, v => v, false),
        };
    }

    /// <summary>A reader of the stable key hash of the row's current position (no allocation for integer keys).</summary>
    public static Func<ulong> HashReader(DataViewRow row, DataViewSchema.Column column)
    {
        if (column.Type is TextDataViewType)
        {
            var g = row.GetGetter<ReadOnlyMemory<char>>(column);
            ReadOnlyMemory<char> v = default;
            return () => { g(ref v); return TextHash(v.Span); };
        }
        var read = Reader(row, column);
        return () => IntegerHash(read().Bits);
    }

    private static Func<RowKey> Integer<T>(DataViewRow row, DataViewSchema.Column column, Func<T, ulong> bits, bool signed)
    {
        var g = row.GetGetter<T>(column);
        T v = default!;
        return () => { g(ref v); return new RowKey(bits(v), null, signed); };
    }
}

/// <summary>The rows of one shard: a lazy filter on the key hash.</summary>
internal sealed class ShardView(IDataView input, int keyColumn, ulong index, ulong count) : IDataView
{
    public bool CanShuffle => false;

    public DataViewSchema Schema => input.Schema;

    public long? GetRowCount() => count == 1 ? input.GetRowCount() : null;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Append(input.Schema[keyColumn]).DistinctBy(c => c.Index).ToArray();
        return new Cursor(input.GetRowCursor(needed), keyColumn, index, count);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly DataViewRowCursor _input;
        private readonly Func<ulong> _hash;
        private readonly ulong _index, _count;
        private long _position = -1;

        public Cursor(DataViewRowCursor input, int keyColumn, ulong index, ulong count)
        {
            _input = input;
            _hash = RowKeys.HashReader(input, input.Schema[keyColumn]);
            _index = index;
            _count = count;
        }

        public override DataViewSchema Schema => _input.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            while (_input.MoveNext())
            {
                if (_hash() % _count == _index)
                {
                    _position++;
                    return true;
                }
            }
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _input.IsColumnActive(column);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => _input.GetGetter<TValue>(column);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _input.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>Rows held in memory (one boxed value per cell; vectors copied), served in the stored order.</summary>
internal sealed class ColumnStore(DataViewSchema schema, object[][] rows) : IDataView
{
    public bool CanShuffle => false;

    public DataViewSchema Schema => schema;

    public long? GetRowCount() => rows.Length;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
        new Cursor(schema, rows, columnsNeeded.Select(c => c.Index).ToHashSet());

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    /// <summary>A reader that copies the current value of <paramref name="column"/> into a new boxed object.</summary>
    public static Func<object> Reader(DataViewRow row, DataViewSchema.Column column)
    {
        var method = column.Type is VectorDataViewType v
            ? ((Func<DataViewRow, DataViewSchema.Column, Func<object>>)VectorReader<int>).Method.GetGenericMethodDefinition().MakeGenericMethod(v.ItemType.RawType)
            : ((Func<DataViewRow, DataViewSchema.Column, Func<object>>)ScalarReader<int>).Method.GetGenericMethodDefinition().MakeGenericMethod(column.Type.RawType);
        return (Func<object>)method.Invoke(null, [row, column])!;
    }

    private static Func<object> ScalarReader<T>(DataViewRow row, DataViewSchema.Column column)
    {
        var g = row.GetGetter<T>(column);
        return () => { T v = default!; g(ref v); return v!; };
    }

    private static Func<object> VectorReader<T>(DataViewRow row, DataViewSchema.Column column)
    {
        var g = row.GetGetter<VBuffer<T>>(column);
        VBuffer<T> v = default;
        return () => { g(ref v); VBuffer<T> copy = default; v.CopyTo(ref copy); return copy; };
    }

    private sealed class Cursor(DataViewSchema schema, object[][] rows, HashSet<int> active) : DataViewRowCursor
    {
        private int _position = -1;

        public override DataViewSchema Schema => schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext() => ++_position < rows.Length;

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!active.Contains(column.Index))
                throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
            int c = column.Index;
            if (rows.Length > 0 && column.Type is VectorDataViewType)
                return (ValueGetter<TValue>)VectorGetter(c, typeof(TValue));
            return (ref TValue v) => v = (TValue)rows[_position][c];
        }

        private Delegate VectorGetter(int c, Type vbuffer) =>
            (Delegate)((Func<int, ValueGetter<VBuffer<int>>>)Copy<int>).Method.GetGenericMethodDefinition()
                .MakeGenericMethod(vbuffer.GetGenericArguments()[0]).Invoke(this, [c])!;

        private ValueGetter<VBuffer<T>> Copy<T>(int c) => (ref VBuffer<T> dst) => ((VBuffer<T>)rows[_position][c]).CopyTo(ref dst);
    }
}
