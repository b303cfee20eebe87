using System.Globalization;
using System.Text;

namespace Allauzen.ML.Data;

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
