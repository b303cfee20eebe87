using Microsoft.ML.Data;

namespace Allauzen.ML.Core;

/// <summary>
/// The one place that builds <see cref="SchemaShape.Column"/> values. Its only constructor is internal
/// in ML.NET (dotnet/machinelearning#3243, by design), so it is reached through <see cref="MlNetInternals"/>;
/// if a future ML.NET changes it, the error names the version.
/// </summary>
internal static class SchemaShapes
{
    /// <summary>Builds a column shape (name, vector kind, item type, key flag, annotation shapes).</summary>
    public static SchemaShape.Column Column(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType,
        bool isKey, SchemaShape? annotations = null)
        => MlNetInternals.NewSchemaShapeColumn(name, kind, itemType, isKey, annotations ?? new SchemaShape([]));

    /// <summary>Describes a <see cref="DataViewSchema.Column"/> as a <see cref="SchemaShape.Column"/>.</summary>
    public static SchemaShape.Column FromColumn(DataViewSchema.Column column)
    {
        var annotations = column.Annotations.Schema.Select(a => Describe(a.Name, a.Type, null)).ToList();
        return Describe(column.Name, column.Type, new SchemaShape(annotations));
    }

    /// <summary>Vector kind, item type (a key's raw number type) and key flag of <paramref name="type"/>.</summary>
    private static SchemaShape.Column Describe(string name, DataViewType type, SchemaShape? annotations)
    {
        var kind = SchemaShape.Column.VectorKind.Scalar;
        if (type is VectorDataViewType vt)
        {
            kind = vt.IsKnownSize ? SchemaShape.Column.VectorKind.Vector : SchemaShape.Column.VectorKind.VariableVector;
            type = vt.ItemType;
        }
        bool isKey = type is KeyDataViewType;
        if (type is KeyDataViewType kt)
            type = KeyItemType(kt);
        return Column(name, kind, type, isKey, annotations);
    }

    private static DataViewType KeyItemType(KeyDataViewType key) => key.RawType switch
    {
        var t when t == typeof(byte) => NumberDataViewType.Byte,
        var t when t == typeof(ushort) => NumberDataViewType.UInt16,
        var t when t == typeof(ulong) => NumberDataViewType.UInt64,
        _ => NumberDataViewType.UInt32,
    };

    /// <summary>The shape of a whole schema (ML.NET's <c>SchemaShape.Create</c> is internal).</summary>
    public static SchemaShape FromSchema(DataViewSchema schema)
    {
        var cols = new List<SchemaShape.Column>();
        foreach (var c in schema)
        {
            if (!c.IsHidden)
                cols.Add(FromColumn(c));
        }
        return new SchemaShape(cols);
    }

    /// <summary>Replaces or appends columns by name, as a transformer's output shape does.</summary>
    public static SchemaShape With(SchemaShape input, IEnumerable<SchemaShape.Column> added)
    {
        var map = new Dictionary<string, SchemaShape.Column>();
        var order = new List<string>();
        foreach (var c in input)
        {
            if (!map.ContainsKey(c.Name))
                order.Add(c.Name);
            map[c.Name] = c;
        }
        foreach (var c in added)
        {
            if (!map.ContainsKey(c.Name))
                order.Add(c.Name);
            map[c.Name] = c;
        }
        return new SchemaShape(order.Select(n => map[n]));
    }
}
