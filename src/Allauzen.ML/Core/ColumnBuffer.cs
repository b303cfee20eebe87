using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Core;

/// <summary>
/// Holds copies of one pass-through column for the rows of a scoring batch, so that a batched cursor
/// can read ahead without losing the values of the rows it has not yet returned. Values are deep
/// copies: ML.NET getters may hand out buffers they reuse.
/// </summary>
internal abstract class ColumnBuffer
{
    public abstract void Capture(int slot);

    public abstract Delegate Getter(Func<int> slot);

    public static ColumnBuffer Create(DataViewRow row, DataViewSchema.Column column, int capacity)
    {
        Type type;
        if (column.Type is VectorDataViewType vt)
            type = typeof(VectorBuffer<>).MakeGenericType(vt.ItemType.RawType);
        else if (column.Type.RawType == typeof(ReadOnlyMemory<char>))
            type = typeof(TextBuffer);
        else
            type = typeof(ScalarBuffer<>).MakeGenericType(column.Type.RawType);
        return (ColumnBuffer)Activator.CreateInstance(type, row, column, capacity)!;
    }

    private sealed class ScalarBuffer<T>(DataViewRow row, DataViewSchema.Column column, int capacity) : ColumnBuffer
    {
        private readonly ValueGetter<T> _getter = row.GetGetter<T>(column);
        private readonly T[] _values = new T[capacity];

        public override void Capture(int slot) => _getter(ref _values[slot]);

        public override Delegate Getter(Func<int> slot) => (ValueGetter<T>)((ref T v) => v = _values[slot()]);
    }

    private sealed class TextBuffer(DataViewRow row, DataViewSchema.Column column, int capacity) : ColumnBuffer
    {
        private readonly ValueGetter<ReadOnlyMemory<char>> _getter = row.GetGetter<ReadOnlyMemory<char>>(column);
        private readonly ReadOnlyMemory<char>[] _values = new ReadOnlyMemory<char>[capacity];
        private ReadOnlyMemory<char> _tmp;

        public override void Capture(int slot)
        {
            _getter(ref _tmp);
            _values[slot] = _tmp.IsEmpty ? ReadOnlyMemory<char>.Empty : _tmp.ToArray();
        }

        public override Delegate Getter(Func<int> slot) =>
            (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> v) => v = _values[slot()]);
    }

    private sealed class VectorBuffer<T>(DataViewRow row, DataViewSchema.Column column, int capacity) : ColumnBuffer
    {
        private readonly ValueGetter<VBuffer<T>> _getter = row.GetGetter<VBuffer<T>>(column);
        private readonly VBuffer<T>[] _values = new VBuffer<T>[capacity];
        private VBuffer<T> _tmp;

        public override void Capture(int slot)
        {
            _getter(ref _tmp);
            _tmp.CopyTo(ref _values[slot]);
        }

        public override Delegate Getter(Func<int> slot) =>
            (ValueGetter<VBuffer<T>>)((ref VBuffer<T> v) => _values[slot()].CopyTo(ref v));
    }
}
