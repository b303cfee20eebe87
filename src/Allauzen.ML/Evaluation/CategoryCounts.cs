using System.Globalization;
using Allauzen.ML.Data;

namespace Allauzen.ML.Evaluation;

/// <summary>Counts the values of one categorical column of a data view, as strings.</summary>
internal static class CategoryCounts
{
    private const string KeyValuesKind = "KeyValues";
    private const string Expected = "a scalar Text, integer, Boolean or key column";

    /// <summary>Value → number of rows.</summary>
    public static Dictionary<string, long> Count(IDataView data, string column, string role)
    {
        var col = data.Schema.GetColumnOrNull(column) ?? throw SchemaChecks.NotFound(column, role);
        var t = col.Type;
        var ci = CultureInfo.InvariantCulture;
        if (t is KeyDataViewType key)
        {
            string[]? names = null;
            if (col.Annotations.Schema.GetColumnOrNull(KeyValuesKind) is { Type: VectorDataViewType { ItemType: TextDataViewType } })
            {
                var buffer = default(VBuffer<ReadOnlyMemory<char>>);
                col.Annotations.GetValue(KeyValuesKind, ref buffer);
                names = buffer.DenseValues().Select(v => v.ToString()).ToArray();
            }
            string Name(ulong v) => names is not null && v - 1 < (ulong)names.Length ? names[v - 1] : v.ToString(ci);
            return key.RawType == typeof(uint) ? Read<uint>(data, col, v => v == 0 ? null : Name(v))
                : key.RawType == typeof(ulong) ? Read<ulong>(data, col, v => v == 0 ? null : Name(v))
                : key.RawType == typeof(ushort) ? Read<ushort>(data, col, v => v == 0 ? null : Name(v))
                : Read<byte>(data, col, v => v == 0 ? null : Name(v));
        }
        if (t is TextDataViewType)
            return Read<ReadOnlyMemory<char>>(data, col, v => v.ToString());
        if (t is BooleanDataViewType)
            return Read<bool>(data, col, v => v ? "true" : "false");
        return t.RawType switch
        {
            var r when r == typeof(sbyte) => Read<sbyte>(data, col, v => v.ToString(ci)),
            var r when r == typeof(byte) => Read<byte>(data, col, v => v.ToString(ci)),
            var r when r == typeof(short) => Read<short>(data, col, v => v.ToString(ci)),
            var r when r == typeof(ushort) => Read<ushort>(data, col, v => v.ToString(ci)),
            var r when r == typeof(int) => Read<int>(data, col, v => v.ToString(ci)),
            var r when r == typeof(uint) => Read<uint>(data, col, v => v.ToString(ci)),
            var r when r == typeof(long) => Read<long>(data, col, v => v.ToString(ci)),
            var r when r == typeof(ulong) => Read<ulong>(data, col, v => v.ToString(ci)),
            _ => throw SchemaChecks.Mismatch(column, role, Expected, t.ToString()!),
        };
    }

    private static Dictionary<string, long> Read<T>(IDataView data, DataViewSchema.Column col, Func<T, string?> name)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        using var cursor = data.GetRowCursor([col]);
        var getter = cursor.GetGetter<T>(col);
        T value = default!;
        while (cursor.MoveNext())
        {
            getter(ref value);
            if (name(value) is string s)
                counts[s] = counts.GetValueOrDefault(s) + 1;
        }
        if (counts.Count == 0)
            throw new ArgumentException($"Column '{col.Name}' has no countable value (no rows, or only missing keys).");
        return counts;
    }
}
