using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Core;

/// <summary>
/// The values behind a key-typed label (its <c>KeyValues</c> annotation), kept with their original
/// item type so that <c>MapKeyToValue</c> after a trainer gives back the user's labels. Text and the
/// numeric and boolean types that <c>MapValueToKey</c> produces are supported; they persist as strings.
/// </summary>
internal sealed class LabelNames(DataViewType itemType, string[] values)
{
    /// <summary>Item type of the original label values.</summary>
    public DataViewType ItemType { get; } = itemType;

    /// <summary>The values as invariant strings, in key order (key k ↔ Values[k-1]).</summary>
    public string[] Values { get; } = values;

    public int Count => Values.Length;

    /// <summary>Names "0".."k-1" for a key label without KeyValues.</summary>
    public static LabelNames Default(int count) =>
        new(NumberDataViewType.UInt32, Enumerable.Range(0, count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray()) { IsDefault = true };

    /// <summary>True when the label had no KeyValues annotation.</summary>
    public bool IsDefault { get; private init; }

    public static LabelNames FromColumn(DataViewSchema.Column label, int count)
    {
        var kv = label.Annotations.Schema.GetColumnOrNull(AllauzenColumnNames.KeyValuesKind);
        if (kv is null || kv.Value.Type is not VectorDataViewType vt || vt.Size != count)
            return Default(count);
        var raw = vt.ItemType.RawType;
        string[] values;
        if (raw == typeof(ReadOnlyMemory<char>))
            values = Read<ReadOnlyMemory<char>>(label, x => x.ToString());
        else if (raw == typeof(float))
            values = Read<float>(label, x => x.ToString("R", CultureInfo.InvariantCulture));
        else if (raw == typeof(double))
            values = Read<double>(label, x => x.ToString("R", CultureInfo.InvariantCulture));
        else if (raw == typeof(int))
            values = Read<int>(label, x => x.ToString(CultureInfo.InvariantCulture));
        else if (raw == typeof(uint))
            values = Read<uint>(label, x => x.ToString(CultureInfo.InvariantCulture));
        else if (raw == typeof(long))
            values = Read<long>(label, x => x.ToString(CultureInfo.InvariantCulture));
        else if (raw == typeof(ulong))
            values = Read<ulong>(label, x => x.ToString(CultureInfo.InvariantCulture));
        else if (raw == typeof(bool))
            values = Read<bool>(label, x => x ? "true" : "false");
        else
            return Default(count);
        return new LabelNames(vt.ItemType, values);
    }

    private static string[] Read<T>(DataViewSchema.Column label, Func<T, string> format)
    {
        VBuffer<T> buf = default;
        label.GetKeyValues(ref buf);
        var dense = buf.DenseValues().ToArray();
        return dense.Select(format).ToArray();
    }

    /// <summary>Name of the item type for persistence.</summary>
    public string TypeName => IsDefault ? "none" : ItemType.RawType.Name;

    /// <summary>Rebuilds from persisted strings.</summary>
    public static LabelNames FromPersisted(string typeName, string[] values) => typeName switch
    {
        "none" => Default(values.Length),
        nameof(ReadOnlyMemory<char>) or "ReadOnlyMemory`1" => new(TextDataViewType.Instance, values),
        nameof(Single) => new(NumberDataViewType.Single, values),
        nameof(Double) => new(NumberDataViewType.Double, values),
        nameof(Int32) => new(NumberDataViewType.Int32, values),
        nameof(UInt32) => new(NumberDataViewType.UInt32, values),
        nameof(Int64) => new(NumberDataViewType.Int64, values),
        nameof(UInt64) => new(NumberDataViewType.UInt64, values),
        nameof(Boolean) => new(BooleanDataViewType.Instance, values),
        _ => throw new InvalidDataException($"Unsupported label value type '{typeName}' in the model file."),
    };

    /// <summary>
    /// Reads the class names a classifier saved ("classType" and "classes") and checks them against the
    /// <paramref name="classCount"/> outputs of its stored network: a file whose names do not match the network, or
    /// whose values do not parse as their declared type, fails with an <see cref="InvalidDataException"/> naming the entry.
    /// </summary>
    internal static LabelNames Read(Persistence.ModelPayloadReader payload, int classCount)
    {
        string typeName = payload.ReadString("classType");
        var values = payload.ReadStrings("classes");
        payload.Require(values.Length == classCount, "classes", "the number of class names",
            $"is {values.Length} but the network has {classCount} outputs");
        LabelNames result;
        try
        {
            result = FromPersisted(typeName, values);
        }
        catch (InvalidDataException ex)
        {
            throw payload.Invalid("classType", "the label type", ex.Message, ex);
        }
        var raw = result.ItemType.RawType;
        for (int i = 0; i < values.Length && !result.IsDefault; i++)
        {
            string v = values[i];
            var c = CultureInfo.InvariantCulture;
            bool ok = raw == typeof(float) ? float.TryParse(v, NumberStyles.Float, c, out _)
                : raw == typeof(double) ? double.TryParse(v, NumberStyles.Float, c, out _)
                : raw == typeof(int) ? int.TryParse(v, NumberStyles.Integer, c, out _)
                : raw == typeof(uint) ? uint.TryParse(v, NumberStyles.Integer, c, out _)
                : raw == typeof(long) ? long.TryParse(v, NumberStyles.Integer, c, out _)
                : raw == typeof(ulong) ? ulong.TryParse(v, NumberStyles.Integer, c, out _)
                : raw != typeof(bool) || v is "true" or "false";
            payload.Require(ok, "classes", $"class name {i}", $"'{v}' is not a {typeName} value");
        }
        return result;
    }

    /// <summary>Adds a <c>KeyValues</c> annotation with the original item type (nothing for default names).</summary>
    public void AddKeyValues(DataViewSchema.Annotations.Builder builder)
    {
        if (IsDefault)
            return;
        var raw = ItemType.RawType;
        if (raw == typeof(ReadOnlyMemory<char>))
            Add(builder, Values.Select(v => v.AsMemory()).ToArray());
        else if (raw == typeof(float))
            Add(builder, Values.Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray());
        else if (raw == typeof(double))
            Add(builder, Values.Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray());
        else if (raw == typeof(int))
            Add(builder, Values.Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray());
        else if (raw == typeof(uint))
            Add(builder, Values.Select(v => uint.Parse(v, CultureInfo.InvariantCulture)).ToArray());
        else if (raw == typeof(long))
            Add(builder, Values.Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray());
        else if (raw == typeof(ulong))
            Add(builder, Values.Select(v => ulong.Parse(v, CultureInfo.InvariantCulture)).ToArray());
        else if (raw == typeof(bool))
            Add(builder, Values.Select(v => v == "true").ToArray());
    }

    private void Add<T>(DataViewSchema.Annotations.Builder builder, T[] values)
    {
        builder.Add(AllauzenColumnNames.KeyValuesKind, new VectorDataViewType((PrimitiveDataViewType)ItemType, values.Length),
            (ValueGetter<VBuffer<T>>)((ref VBuffer<T> dst) => dst = new VBuffer<T>(values.Length, (T[])values.Clone())));
    }

    /// <summary>Adds a <c>SlotNames</c> annotation (text) with the class names.</summary>
    public void AddSlotNames(DataViewSchema.Annotations.Builder builder)
    {
        var names = Values.Select(v => v.AsMemory()).ToArray();
        builder.Add(AllauzenColumnNames.SlotNamesKind, new VectorDataViewType(TextDataViewType.Instance, names.Length),
            (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> dst) =>
                dst = new VBuffer<ReadOnlyMemory<char>>(names.Length, (ReadOnlyMemory<char>[])names.Clone())));
    }
}
