using System.Buffers;
using System.Text;

namespace Allauzen.ML.Data;

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
