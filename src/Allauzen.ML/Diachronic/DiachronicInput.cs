using Allauzen.ML.Data;

namespace Allauzen.ML.Diachronic;

/// <summary>Schema checks and getters for the token and time columns.</summary>
internal static class DiachronicInput
{
    private static readonly char[] Blanks = [' ', '\t', '\n', '\r', '\f', '\v'];

    public static void CheckTokens(DataViewSchema schema, string column)
    {
        var col = schema.GetColumnOrNull(column) ?? throw SchemaChecks.NotFound(column, "tokens");
        if (!IsTokens(col.Type))
            throw SchemaChecks.Mismatch(column, "tokens", "a vector of Text (tokens) or a Text column", col.Type.ToString()!);
    }

    public static void CheckTime(DataViewSchema schema, string column, string role = "time")
    {
        var col = schema.GetColumnOrNull(column) ?? throw SchemaChecks.NotFound(column, role);
        if (!IsTime(col.Type))
            throw SchemaChecks.Mismatch(column, role, "an integer type (Int32, Int64, ...) or DateTime", col.Type.ToString()!);
    }

    /// <summary>A getter of the row's order value (DateTime as ticks), or of 0 when there is no order column.</summary>
    public static Func<long> OrderGetter(DataViewRow row, DataViewSchema.Column? col)
    {
        if (col is null)
            return static () => 0;
        if (col.Value.Type is DateTimeDataViewType)
            return Wrap<DateTime>(row, col.Value, d => d.Ticks);
        return TimeGetter(row, col.Value, TimeGranularity.Year);
    }

    public static void CheckTokens(SchemaShape shape, string column)
    {
        if (!SchemaChecks.TryFind(shape, column, out var c))
            throw SchemaChecks.NotFound(column, "tokens");
        if (c.ItemType is not TextDataViewType)
            throw SchemaChecks.Mismatch(column, "tokens", "a vector of Text (tokens) or a Text column", $"{c.Kind} of {c.ItemType}");
    }

    public static void CheckTime(SchemaShape shape, string column, string role = "time")
    {
        if (!SchemaChecks.TryFind(shape, column, out var c))
            throw SchemaChecks.NotFound(column, role);
        if (c.Kind != SchemaShape.Column.VectorKind.Scalar || c.IsKey || !IsTime(c.ItemType))
            throw SchemaChecks.Mismatch(column, role, "an integer type (Int32, Int64, ...) or DateTime", $"{c.Kind} of {c.ItemType}");
    }

    private static bool IsTokens(DataViewType t) =>
        t is TextDataViewType || t is VectorDataViewType { ItemType: TextDataViewType };

    private static bool IsTime(DataViewType t) =>
        t is DateTimeDataViewType || (t is NumberDataViewType n && n != NumberDataViewType.Single && n != NumberDataViewType.Double);

    /// <summary>A getter filling a reusable list with the row's tokens.</summary>
    public static Action<List<string>> TokensGetter(DataViewRow row, DataViewSchema.Column col)
    {
        var spans = TokenSpansGetter(row, col);
        var buffer = new List<ReadOnlyMemory<char>>();
        return list =>
        {
            spans(buffer);
            list.Clear();
            foreach (var m in buffer)
                list.Add(m.ToString());
        };
    }

    /// <summary>
    /// A getter filling a reusable list with the row's tokens as character slices of the row (valid until the next row): a
    /// vector of Text, or a Text column split on white space (' ', \t, \n, \r, \f, \v).
    /// </summary>
    public static Action<List<ReadOnlyMemory<char>>> TokenSpansGetter(DataViewRow row, DataViewSchema.Column col)
    {
        if (col.Type is VectorDataViewType)
        {
            var g = row.GetGetter<VBuffer<ReadOnlyMemory<char>>>(col);
            VBuffer<ReadOnlyMemory<char>> buf = default;
            return list =>
            {
                list.Clear();
                g(ref buf);
                foreach (var m in buf.DenseValues())
                {
                    if (!m.IsEmpty)
                        list.Add(m);
                }
            };
        }
        var gt = row.GetGetter<ReadOnlyMemory<char>>(col);
        ReadOnlyMemory<char> text = default;
        return list =>
        {
            list.Clear();
            gt(ref text);
            var span = text.Span;
            int start = -1;
            for (int i = 0; i <= span.Length; i++)
            {
                bool blank = i == span.Length || Blanks.AsSpan().Contains(span[i]);
                if (!blank && start < 0)
                    start = i;
                else if (blank && start >= 0)
                {
                    list.Add(text[start..i]);
                    start = -1;
                }
            }
        };
    }

    /// <summary>A getter of the row's time value as a long (DateTime binned by <paramref name="granularity"/>).</summary>
    public static Func<long> TimeGetter(DataViewRow row, DataViewSchema.Column col, TimeGranularity granularity)
    {
        var t = col.Type;
        if (t is DateTimeDataViewType)
        {
            var g = row.GetGetter<DateTime>(col);
            DateTime d = default;
            return () =>
            {
                g(ref d);
                return granularity switch
                {
                    TimeGranularity.Month => d.Year * 12L + d.Month - 1,
                    TimeGranularity.Day => d.Ticks / TimeSpan.TicksPerDay,
                    _ => d.Year,
                };
            };
        }
        if (t == NumberDataViewType.Int32)
            return Wrap<int>(row, col, v => v);
        if (t == NumberDataViewType.Int64)
            return Wrap<long>(row, col, v => v);
        if (t == NumberDataViewType.Int16)
            return Wrap<short>(row, col, v => v);
        if (t == NumberDataViewType.SByte)
            return Wrap<sbyte>(row, col, v => v);
        if (t == NumberDataViewType.Byte)
            return Wrap<byte>(row, col, v => v);
        if (t == NumberDataViewType.UInt16)
            return Wrap<ushort>(row, col, v => v);
        if (t == NumberDataViewType.UInt32)
            return Wrap<uint>(row, col, v => v);
        if (t == NumberDataViewType.UInt64)
            return Wrap<ulong>(row, col, v => v <= long.MaxValue ? (long)v : throw new OverflowException(
                $"Time column '{col.Name}': value {v} does not fit in Int64."));
        throw SchemaChecks.Mismatch(col.Name, "time", "an integer type (Int32, Int64, ...) or DateTime", t.ToString()!);
    }

    private static Func<long> Wrap<T>(DataViewRow row, DataViewSchema.Column col, Func<T, long> convert)
    {
        var g = row.GetGetter<T>(col);
        T v = default!;
        return () =>
        {
            g(ref v);
            return convert(v);
        };
    }
}
