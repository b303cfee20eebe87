using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Data;

/// <summary>
/// Up-front schema validation shared by every component. Each error names the column, what was
/// expected and what was found, and is an <see cref="ArgumentOutOfRangeException"/> on
/// <c>inputSchema</c> as ML.NET's own checks are.
/// </summary>
internal static class SchemaChecks
{
    /// <summary>Checks a <c>Vector&lt;Single, n&gt;</c> column of known size and returns n.</summary>
    public static int FeatureVector(DataViewSchema schema, string column, string role = "feature", int? expectedSize = null)
    {
        var col = Find(schema, column, role);
        if (col.Type is not VectorDataViewType vt || vt.ItemType != NumberDataViewType.Single || !vt.IsKnownSize)
            throw Mismatch(column, role, ExpectedVector(expectedSize), col.Type.ToString()!);
        if (expectedSize is int n && vt.Size != n)
            throw Mismatch(column, role, ExpectedVector(expectedSize), $"Vector<Single, {vt.Size}>");
        return vt.Size;
    }

    /// <summary>Checks the same in a <see cref="SchemaShape"/> (size is not known at this stage).</summary>
    public static void FeatureVector(SchemaShape shape, string column, string role = "feature")
    {
        if (!TryFind(shape, column, out var col))
            throw NotFound(column, role);
        if (col.Kind != SchemaShape.Column.VectorKind.Vector || col.ItemType != NumberDataViewType.Single)
            throw Mismatch(column, role, "Vector<Single, n> of known size", Describe(col));
    }

    /// <summary>Checks a key-typed label and returns its number of classes (at least 2).</summary>
    public static int KeyLabel(DataViewSchema schema, string column)
    {
        var col = Find(schema, column, "label");
        if (col.Type is not KeyDataViewType kt)
            throw Mismatch(column, "label", "a key type (apply MapValueToKey first)", col.Type.ToString()!);
        if (kt.Count > int.MaxValue)
            throw Mismatch(column, "label", "a key type with at most 2^31-1 values", $"Key with {kt.Count} values");
        if (kt.Count < 2)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"Label column '{column}' has {kt.Count} class; a classifier needs at least 2 classes. Check the training data or the MapValueToKey step.");
        return (int)kt.Count;
    }

    /// <summary>Checks a key-typed label in a <see cref="SchemaShape"/>.</summary>
    public static void KeyLabel(SchemaShape shape, string column)
    {
        if (!TryFind(shape, column, out var col))
            throw NotFound(column, "label");
        if (!col.IsKey || col.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw Mismatch(column, "label", "a key type (apply MapValueToKey first)", Describe(col));
    }

    /// <summary>Finds the last column of <paramref name="shape"/> named <paramref name="name"/>.</summary>
    public static bool TryFind(SchemaShape shape, string name, out SchemaShape.Column column)
    {
        column = default;
        bool found = false;
        foreach (var c in shape)
        {
            if (c.Name == name)
            {
                column = c;
                found = true;
            }
        }
        return found;
    }

    private static DataViewSchema.Column Find(DataViewSchema schema, string column, string role)
    {
        ArgumentException.ThrowIfNullOrEmpty(column);
        return schema.GetColumnOrNull(column) ?? throw NotFound(column, role);
    }

    private static string ExpectedVector(int? size) => size is int n ? $"Vector<Single, {n}>" : "Vector<Single, n> of known size";

    private static string Describe(SchemaShape.Column col) => col.Kind switch
    {
        SchemaShape.Column.VectorKind.Scalar => (col.IsKey ? "Key<" + col.ItemType + ">" : col.ItemType.ToString()!),
        SchemaShape.Column.VectorKind.VariableVector => $"Vector<{col.ItemType}> of variable size",
        _ => $"Vector<{col.ItemType}>",
    };

    public static ArgumentOutOfRangeException NotFound(string column, string role) =>
        new("inputSchema", $"Could not find {role} column '{column}'.");

    public static ArgumentOutOfRangeException Mismatch(string column, string role, string expected, string actual) =>
        new("inputSchema", $"Schema mismatch for {role} column '{column}': expected {expected}, got {actual}.");
}
