using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>The columns a transformer adds, read bit for bit into one string (to compare a reloaded model with the original).</summary>
internal static class ScoreSnapshot
{
    public static string Of(ITransformer model, IDataView input)
    {
        var output = model.Transform(input);
        var added = output.Schema.Where(c => !c.IsHidden && input.Schema.GetColumnOrNull(c.Name) is null).ToArray();
        var text = new StringBuilder();
        using var cursor = output.GetRowCursor(added);
        var readers = added.Select(c => Reader(cursor, c)).ToArray();
        while (cursor.MoveNext())
        {
            foreach (var read in readers)
                text.Append(read()).Append('|');
            text.Append('\n');
        }
        return text.ToString();
    }

    private static Func<string> Reader(DataViewRowCursor cursor, DataViewSchema.Column c)
    {
        var type = c.Type is VectorDataViewType v ? v.ItemType : c.Type;
        bool vector = c.Type is VectorDataViewType;
        return (type.RawType, vector) switch
        {
            (var t, true) when t == typeof(float) => Vector<float>(cursor, c, x => BitConverter.SingleToInt32Bits(x).ToString("X")),
            (var t, true) when t == typeof(double) => Vector<double>(cursor, c, x => BitConverter.DoubleToInt64Bits(x).ToString("X")),
            (var t, false) when t == typeof(float) => Scalar<float>(cursor, c, x => BitConverter.SingleToInt32Bits(x).ToString("X")),
            (var t, false) when t == typeof(double) => Scalar<double>(cursor, c, x => BitConverter.DoubleToInt64Bits(x).ToString("X")),
            (var t, false) when t == typeof(uint) => Scalar<uint>(cursor, c, x => x.ToString()),
            (var t, false) when t == typeof(ulong) => Scalar<ulong>(cursor, c, x => x.ToString()),
            (var t, false) when t == typeof(bool) => Scalar<bool>(cursor, c, x => x.ToString()),
            _ => throw new NotSupportedException($"Column '{c.Name}' of type {c.Type}."),
        };
    }

    private static Func<string> Scalar<T>(DataViewRowCursor cursor, DataViewSchema.Column c, Func<T, string> format)
    {
        var get = cursor.GetGetter<T>(c);
        T value = default!;
        return () =>
        {
            get(ref value);
            return format(value);
        };
    }

    private static Func<string> Vector<T>(DataViewRowCursor cursor, DataViewSchema.Column c, Func<T, string> format)
    {
        var get = cursor.GetGetter<VBuffer<T>>(c);
        VBuffer<T> value = default;
        return () =>
        {
            get(ref value);
            return string.Join(",", value.DenseValues().Select(format));
        };
    }
}
