using System.Buffers;
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
