using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Core;

/// <summary>
/// Reads a fixed-size float feature vector column from a bound row into a batch buffer, row after row, and names the
/// column, the row and both sizes when a row's vector has the wrong length. Shared by the batch scorers.
/// </summary>
internal sealed class FeatureVectorReader(DataViewSchema.Column column, int size)
{
    private ValueGetter<VBuffer<float>>? _getter;
    private DataViewRow? _row;
    private VBuffer<float> _buffer;

    /// <summary>Binds to the row the following <see cref="CopyTo"/> calls read.</summary>
    public void Bind(DataViewRow input)
    {
        _row = input;
        _getter = input.GetGetter<VBuffer<float>>(column);
    }

    /// <summary>Copies the current row's vector into <paramref name="batch"/> at row <paramref name="slot"/>.</summary>
    /// <exception cref="InvalidOperationException">The vector does not have the model's size.</exception>
    public void CopyTo(float[] batch, int slot)
    {
        _getter!(ref _buffer);
        if (_buffer.Length != size)
            throw new InvalidOperationException(
                $"Feature column '{column.Name}' has {_buffer.Length} values at row {_row!.Position}; the model expects {size}.");
        _buffer.CopyTo(batch.AsSpan(slot * size, size));
    }
}
