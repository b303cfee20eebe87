using System.Text.Json.Serialization;

namespace Allauzen.ML.Persistence;

/// <summary>
/// The part of a <see cref="DataViewSchema.Column"/> a loader needs: name, item type, vector size and
/// the text-valued <c>SlotNames</c> / <c>KeyValues</c> annotations. Other annotations, and
/// annotations of other types, are not kept.
/// </summary>
/// <param name="Name">Column name.</param>
/// <param name="ItemKind">Item type.</param>
/// <param name="KeyCount">Number of key values when <paramref name="ItemKind"/> is <see cref="PersistedItemKind.Key"/>, else 0.</param>
/// <param name="IsVector">True for a vector column.</param>
/// <param name="VectorSize">Vector size; 0 means variable length (and is 0 for scalars).</param>
/// <param name="SlotNames">The <c>SlotNames</c> annotation, when present and of text type.</param>
/// <param name="KeyValues">The <c>KeyValues</c> annotation, when present and of text type.</param>
internal sealed record PersistedColumn(
    string Name,
    PersistedItemKind ItemKind,
    ulong KeyCount,
    bool IsVector,
    int VectorSize,
    string[]? SlotNames,
    string[]? KeyValues)
{
    /// <summary>Annotation kind of slot names (ML.NET's <c>AnnotationUtils.Kinds.SlotNames</c> is internal).</summary>
    public const string SlotNamesKind = "SlotNames";

    /// <summary>Annotation kind of key values.</summary>
    public const string KeyValuesKind = "KeyValues";

    /// <summary>Describes <paramref name="column"/>.</summary>
    /// <exception cref="NotSupportedException">The column's item type is not supported.</exception>
    public static PersistedColumn From(DataViewSchema.Column column)
    {
        var type = column.Type;
        bool isVector = type is VectorDataViewType;
        int size = 0;
        if (type is VectorDataViewType vector)
        {
            if (vector.Dimensions.Length > 1)
                throw new NotSupportedException($"Column '{column.Name}': multi-dimensional vectors ({vector}) cannot be persisted.");
            size = vector.Size;
            type = vector.ItemType;
        }
        ulong keyCount = 0;
        PersistedItemKind kind;
        if (type == NumberDataViewType.Single)
            kind = PersistedItemKind.Single;
        else if (type == NumberDataViewType.Double)
            kind = PersistedItemKind.Double;
        else if (type == NumberDataViewType.Int64)
            kind = PersistedItemKind.Int64;
        else if (type is TextDataViewType)
            kind = PersistedItemKind.String;
        else if (type is BooleanDataViewType)
            kind = PersistedItemKind.Boolean;
        else if (type is KeyDataViewType key && key.RawType == typeof(uint))
        {
            kind = PersistedItemKind.Key;
            keyCount = key.Count;
        }
        else
        {
            throw new NotSupportedException(
                $"Column '{column.Name}' has type {column.Type}; supported item types are Single, Double, Int64, Key<UInt32>, String and Boolean.");
        }

        return new PersistedColumn(column.Name, kind, keyCount, isVector, size,
            ReadTextAnnotation(column, SlotNamesKind), ReadTextAnnotation(column, KeyValuesKind));
    }

    /// <summary>The item type (the type of one element for a vector column).</summary>
    [JsonIgnore]
    public PrimitiveDataViewType ItemType => ItemKind switch
    {
        PersistedItemKind.Single => NumberDataViewType.Single,
        PersistedItemKind.Double => NumberDataViewType.Double,
        PersistedItemKind.Int64 => NumberDataViewType.Int64,
        PersistedItemKind.Key => new KeyDataViewType(typeof(uint), KeyCount),
        PersistedItemKind.String => TextDataViewType.Instance,
        PersistedItemKind.Boolean => BooleanDataViewType.Instance,
        _ => throw new InvalidDataException($"Column '{Name}': unknown item kind {ItemKind}."),
    };

    /// <summary>The column type: <see cref="ItemType"/>, or a vector of it.</summary>
    [JsonIgnore]
    public DataViewType Type => IsVector ? new VectorDataViewType(ItemType, VectorSize) : ItemType;

    /// <summary>The persisted annotations, rebuilt with <see cref="DataViewSchema.Annotations.Builder"/>.</summary>
    public DataViewSchema.Annotations BuildAnnotations()
    {
        var builder = new DataViewSchema.Annotations.Builder();
        if (SlotNames is { } slots)
            AddText(builder, SlotNamesKind, slots);
        if (KeyValues is { } keys)
            AddText(builder, KeyValuesKind, keys);
        return builder.ToAnnotations();
    }

    /// <summary>Name, type and annotations as a detached column, ready for <see cref="DataViewSchema.Builder.AddColumn(string, DataViewType, DataViewSchema.Annotations)"/>.</summary>
    public DataViewSchema.DetachedColumn ToDetachedColumn() => new(Name, Type, BuildAnnotations());

    /// <summary>Throws <see cref="InvalidDataException"/> when the description is inconsistent.</summary>
    internal void Validate()
    {
        if (string.IsNullOrEmpty(Name))
            throw new InvalidDataException("the column name is empty");
        if (!Enum.IsDefined(ItemKind))
            throw new InvalidDataException($"column '{Name}' has an unknown item kind {ItemKind}");
        if (ItemKind == PersistedItemKind.Key && (KeyCount == 0 || KeyCount > uint.MaxValue))
            throw new InvalidDataException($"column '{Name}' has an invalid key count {KeyCount}");
        if (VectorSize < 0 || (!IsVector && VectorSize != 0))
            throw new InvalidDataException($"column '{Name}' has an invalid vector size {VectorSize}");
        if (SlotNames is not null && (!IsVector || SlotNames.Length != VectorSize))
            throw new InvalidDataException($"column '{Name}' has {SlotNames.Length} slot names for vector size {VectorSize}");
        if (KeyValues is not null && (ItemKind != PersistedItemKind.Key || (ulong)KeyValues.LongLength != KeyCount))
            throw new InvalidDataException($"column '{Name}' has {KeyValues.Length} key values for key count {KeyCount}");
    }

    private static string[]? ReadTextAnnotation(DataViewSchema.Column column, string kind)
    {
        var annotation = column.Annotations.Schema.GetColumnOrNull(kind);
        if (annotation is not { Type: VectorDataViewType { ItemType: TextDataViewType } })
            return null;
        VBuffer<ReadOnlyMemory<char>> buffer = default;
        column.Annotations.GetValue(kind, ref buffer);
        var result = new string[buffer.Length];
        int i = 0;
        foreach (var value in buffer.DenseValues())
            result[i++] = value.ToString();
        return result;
    }

    private static void AddText(DataViewSchema.Annotations.Builder builder, string kind, string[] values)
    {
        var copy = new ReadOnlyMemory<char>[values.Length];
        for (int i = 0; i < values.Length; i++)
            copy[i] = values[i].AsMemory();
        builder.Add(kind, new VectorDataViewType(TextDataViewType.Instance, values.Length),
            (ref VBuffer<ReadOnlyMemory<char>> dst) =>
            {
                var editor = VBufferEditor.Create(ref dst, copy.Length);
                copy.AsSpan().CopyTo(editor.Values);
                dst = editor.Commit();
            });
    }
}
