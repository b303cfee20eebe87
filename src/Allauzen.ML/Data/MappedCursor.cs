namespace Allauzen.ML.Data;

/// <summary>
/// A cursor that presents <paramref name="input"/>'s values under another schema: column i of
/// <paramref name="schema"/> reads input column <c>sourceIndex[i]</c> (identity when null). Used by
/// views that pass columns through unchanged (scoring without added columns, ONNX segment inputs).
/// </summary>
internal sealed class MappedCursor(DataViewRowCursor input, DataViewSchema schema, bool[] active, int[]? sourceIndex = null)
    : DataViewRowCursor
{
    public override DataViewSchema Schema => schema;

    public override long Position => input.Position;

    public override long Batch => input.Batch;

    public override bool MoveNext() => input.MoveNext();

    public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

    public override bool IsColumnActive(DataViewSchema.Column column) => active[column.Index];

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (!active[column.Index])
            throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
        return input.GetGetter<TValue>(input.Schema[sourceIndex?[column.Index] ?? column.Index]);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            input.Dispose();
        base.Dispose(disposing);
    }
}
