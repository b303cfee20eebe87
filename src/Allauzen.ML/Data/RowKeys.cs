using System.Buffers;
using System.Globalization;
using System.Text;

namespace Allauzen.ML.Data;

/// <summary>A row key read from a key column: an integer (as 64 bits, signed or not) or a text.</summary>
internal readonly record struct RowKey(ulong Bits, string? Text, bool Signed) : IComparable<RowKey>
{
    /// <summary>The stable hash (<see cref="DataShards.KeyHash(long)"/>, <see cref="DataShards.KeyHash(string)"/>).</summary>
    public ulong Hash => Text is null ? RowKeys.IntegerHash(Bits) : RowKeys.TextHash(Text.AsSpan());

    public int CompareTo(RowKey other) =>
        Text is not null || other.Text is not null ? string.CompareOrdinal(Text, other.Text)
        : Signed ? ((long)Bits).CompareTo((long)other.Bits) : Bits.CompareTo(other.Bits);

    public override string ToString() => Text ?? (Signed ? ((long)Bits).ToString(CultureInfo.InvariantCulture) : Bits.ToString(CultureInfo.InvariantCulture));
}

/// <summary>Finding, reading and hashing row keys (shared by sharding and by components that draw per-row randomness).</summary>
internal static class RowKeys
{
    private const ulong FnvOffset = 0xCBF29CE484222325UL, FnvPrime = 0x100000001B3UL;

    /// <summary>SplitMix64's finaliser (Steele, Lea and Flood 2014): a bijection of 64-bit words.</summary>
    public static ulong SplitMix(ulong z) => SplitMix64.Mix(z);

    public static ulong IntegerHash(ulong bits) => SplitMix(bits ^ 0x6B6579496E74UL);

    public static ulong TextHash(ReadOnlySpan<char> text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        byte[]? rented = max > 512 ? ArrayPool<byte>.Shared.Rent(max) : null;
        Span<byte> bytes = rented ?? stackalloc byte[512];
        int n = Encoding.UTF8.GetBytes(text, bytes);
        ulong h = FnvOffset;
        foreach (byte b in bytes[..n])
            h = (h ^ b) * FnvPrime;
        if (rented is not null)
            ArrayPool<byte>.Shared.Return(rented);
        return SplitMix(h);
    }

    /// <summary>The key column <paramref name="name"/>: an integer, key-typed or text scalar; otherwise an error naming it and the option.</summary>
    public static DataViewSchema.Column Find(DataViewSchema schema, string name, string role)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var col = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException("inputSchema", $"Could not find {role} column '{name}'.");
        if (!IsKeyType(col.Type))
            throw new ArgumentOutOfRangeException("inputSchema",
                $"Schema mismatch for {role} column '{name}': expected an integer (Int8..UInt64 or a key type) or text scalar, got {col.Type}.");
        return col;
    }

    /// <summary>The same check on a <see cref="SchemaShape"/>.</summary>
    public static void Check(SchemaShape shape, string name, string role)
    {
        if (!SchemaChecks.TryFind(shape, name, out var col))
            throw new ArgumentOutOfRangeException("inputSchema", $"Could not find {role} column '{name}'.");
        if (col.Kind != SchemaShape.Column.VectorKind.Scalar || !IsKeyType(col.ItemType))
            throw new ArgumentOutOfRangeException("inputSchema",
                $"Schema mismatch for {role} column '{name}': expected an integer (Int8..UInt64 or a key type) or text scalar, got {col.ItemType}.");
    }

    private static bool IsKeyType(DataViewType t) =>
        t is TextDataViewType or KeyDataViewType
        || t == NumberDataViewType.SByte || t == NumberDataViewType.Int16 || t == NumberDataViewType.Int32 || t == NumberDataViewType.Int64
        || t == NumberDataViewType.Byte || t == NumberDataViewType.UInt16 || t == NumberDataViewType.UInt32 || t == NumberDataViewType.UInt64;

    /// <summary>A reader of the key of the row's current position.</summary>
    public static Func<RowKey> Reader(DataViewRow row, DataViewSchema.Column column)
    {
        var t = column.Type;
        if (t is TextDataViewType)
        {
            var g = row.GetGetter<ReadOnlyMemory<char>>(column);
            ReadOnlyMemory<char> v = default;
            return () => { g(ref v); return new RowKey(0, v.ToString(), false); };
        }
        return t.RawType switch
        {
            var r when r == typeof(sbyte) => Integer<sbyte>(row, column, v => (ulong)(long)v, true),
            var r when r == typeof(short) => Integer<short>(row, column, v => (ulong)(long)v, true),
            var r when r == typeof(int) => Integer<int>(row, column, v => (ulong)(long)v, true),
            var r when r == typeof(long) => Integer<long>(row, column, v => (ulong)v, true),
            var r when r == typeof(byte) => Integer<byte>(row, column, v => v, false),
            var r when r == typeof(ushort) => Integer<ushort>(row, column, v => v, false),
            var r when r == typeof(uint) => Integer<uint>(row, column, v => v, false),
            _ => Integer<ulong>(row, column, v => v, false),
        };
    }

    /// <summary>A reader of the stable key hash of the row's current position (no allocation for integer keys).</summary>
    public static Func<ulong> HashReader(DataViewRow row, DataViewSchema.Column column)
    {
        if (column.Type is TextDataViewType)
        {
            var g = row.GetGetter<ReadOnlyMemory<char>>(column);
            ReadOnlyMemory<char> v = default;
            return () => { g(ref v); return TextHash(v.Span); };
        }
        var read = Reader(row, column);
        return () => IntegerHash(read().Bits);
    }

    private static Func<RowKey> Integer<T>(DataViewRow row, DataViewSchema.Column column, Func<T, ulong> bits, bool signed)
    {
        var g = row.GetGetter<T>(column);
        T v = default!;
        return () => { g(ref v); return new RowKey(bits(v), null, signed); };
    }
}
