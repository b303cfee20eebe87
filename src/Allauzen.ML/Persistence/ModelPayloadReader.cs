using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Data;

namespace Allauzen.ML.Persistence;

/// <summary>
/// Reads a payload written by <see cref="ModelPayloadWriter"/>. The constructor checks the whole
/// payload (magic, format version, declared length, SHA-256 checksum, entry table), so a foreign,
/// truncated or corrupted payload fails at once with an <see cref="InvalidDataException"/> naming
/// the source and what was expected. Reading a missing entry, or an entry of another kind, also
/// throws <see cref="InvalidDataException"/>, naming the component, the entry and the source.
/// </summary>
internal sealed class ModelPayloadReader
{
    private readonly ReadOnlyMemory<byte> _data;
    private readonly Dictionary<string, EntryInfo> _entries = new(StringComparer.Ordinal);
    private readonly List<string> _names = new();

    private readonly record struct EntryInfo(PayloadEntryKind Kind, long[] Shape, int Offset, int Length);

    /// <summary>Parses and verifies a payload.</summary>
    /// <param name="data">The payload bytes (not copied; do not modify them while reading).</param>
    /// <param name="source">Where the bytes came from (file name, zip entry), used in error messages.</param>
    /// <param name="expectedComponent">Component the caller expects, used in error messages; optional.</param>
    /// <param name="expectedSignature">When given, a payload with another signature is rejected.</param>
    /// <exception cref="InvalidDataException">The bytes are not a valid payload (foreign, truncated,
    /// corrupted, written by a newer format, or of another component).</exception>
    public ModelPayloadReader(ReadOnlyMemory<byte> data, string source, string? expectedComponent = null, string? expectedSignature = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        _data = data;
        Source = source;
        string what = expectedComponent is null
            ? "an Allauzen.ML payload"
            : $"the Allauzen.ML payload of component '{expectedComponent}'";
        var span = data.Span;

        if (span.IsEmpty)
            throw new InvalidDataException($"'{source}' is empty: expected {what}.");

        // Magic: decides between "foreign" and "truncated/corrupted".
        int magicCheck = Math.Min(span.Length, PayloadFormat.Magic.Length);
        if (!span[..magicCheck].SequenceEqual(PayloadFormat.Magic[..magicCheck]))
        {
            throw new InvalidDataException(
                $"'{source}' is not {what}: expected the magic \"ALZPAYLD\" at offset 0, found {Describe(span)}.");
        }
        int minimum = PayloadFormat.FixedHeaderSize + 4 + 4 + PayloadFormat.ChecksumSize;
        if (span.Length < minimum)
        {
            throw new InvalidDataException(
                $"'{source}' is truncated: {what} has at least {minimum} bytes, found {span.Length}.");
        }

        uint format = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
        if (format == 0 || format > PayloadFormat.FormatVersion)
        {
            throw new InvalidDataException(
                $"'{source}' holds {what} in payload format {format}; this build of Allauzen.ML reads formats 1 to {PayloadFormat.FormatVersion}. Update Allauzen.ML.");
        }

        long declared = BinaryPrimitives.ReadInt64LittleEndian(span[12..]);
        if (declared > span.Length)
        {
            throw new InvalidDataException(
                $"'{source}' is truncated: {what} declares {declared} bytes, found {span.Length}.");
        }
        if (declared < minimum)
            throw Corrupt(what, $"declared length {declared} is below the minimum of {minimum} bytes");
        if (declared < span.Length)
        {
            throw new InvalidDataException(
                $"'{source}' is corrupted: {what} declares {declared} bytes but {span.Length - declared} unexpected bytes follow.");
        }

        int bodyEnd = span.Length - PayloadFormat.ChecksumSize;
        Span<byte> hash = stackalloc byte[PayloadFormat.ChecksumSize];
        SHA256.HashData(span[..bodyEnd], hash);
        if (!hash.SequenceEqual(span[bodyEnd..]))
            throw new InvalidDataException($"'{source}' is corrupted: the SHA-256 checksum of {what} does not match its content.");

        // The checksum matched, so what follows can only fail for a payload crafted or written by a bug.
        var signatureBytes = span.Slice(20, PayloadFormat.SignatureLength);
        foreach (byte b in signatureBytes)
        {
            if (b < 0x20 || b > 0x7E)
                throw Corrupt(what, "the component signature is not printable ASCII");
        }
        Signature = Encoding.ASCII.GetString(signatureBytes);
        Version = BinaryPrimitives.ReadInt32LittleEndian(span[28..]);
        if (Version < 0)
            throw Corrupt(what, $"negative payload version {Version}");

        int pos = PayloadFormat.FixedHeaderSize;
        ComponentName = ReadUtf8(span, ref pos, bodyEnd, what, "component name");
        int count = ReadInt32(span, ref pos, bodyEnd, what, "entry count");
        if (count < 0)
            throw Corrupt(what, $"negative entry count {count}");
        for (int i = 0; i < count; i++)
        {
            string name = ReadUtf8(span, ref pos, bodyEnd, what, $"name of entry {i}");
            if (pos + 1 > bodyEnd)
                throw Corrupt(what, $"entry '{name}' ends before its kind");
            var kind = (PayloadEntryKind)span[pos++];
            if (!Enum.IsDefined(kind))
                throw Corrupt(what, $"entry '{name}' has unknown kind {(byte)kind}");
            long[] shape = [];
            if (kind is PayloadEntryKind.Float32Tensor or PayloadEntryKind.Float64Tensor)
            {
                int rank = ReadInt32(span, ref pos, bodyEnd, what, $"rank of '{name}'");
                if (rank < 0 || rank > (bodyEnd - pos) / 8)
                    throw Corrupt(what, $"entry '{name}' has an invalid rank {rank}");
                shape = new long[rank];
                for (int d = 0; d < rank; d++)
                {
                    shape[d] = BinaryPrimitives.ReadInt64LittleEndian(span[pos..]);
                    pos += 8;
                    if (shape[d] < 0)
                        throw Corrupt(what, $"entry '{name}' has a negative dimension");
                }
            }
            if (pos + 8 > bodyEnd)
                throw Corrupt(what, $"entry '{name}' ends before its length");
            long length = BinaryPrimitives.ReadInt64LittleEndian(span[pos..]);
            pos += 8;
            if (length < 0 || length > bodyEnd - pos)
                throw Corrupt(what, $"entry '{name}' declares {length} bytes where {bodyEnd - pos} remain");
            if (!_entries.TryAdd(name, new EntryInfo(kind, shape, pos, (int)length)))
                throw Corrupt(what, $"entry '{name}' appears twice");
            _names.Add(name);
            pos += (int)length;
        }
        if (pos != bodyEnd)
            throw Corrupt(what, $"{bodyEnd - pos} unexpected bytes after the last entry");

        if (expectedSignature is not null && !string.Equals(expectedSignature, Signature, StringComparison.Ordinal))
        {
            throw new InvalidDataException(
                $"'{source}' holds component '{ComponentName}' (signature '{Signature}'), expected "
                + (expectedComponent is null ? "" : $"component '{expectedComponent}' ")
                + $"(signature '{expectedSignature}').");
        }
    }

    /// <summary>Where the bytes came from, as given to the constructor.</summary>
    public string Source { get; }

    /// <summary>The component signature (8 ASCII characters).</summary>
    public string Signature { get; }

    /// <summary>The component's payload version.</summary>
    public int Version { get; }

    /// <summary>The component name recorded by the writer.</summary>
    public string ComponentName { get; }

    /// <summary>Entry names, in write order.</summary>
    public IReadOnlyList<string> Names => _names;

    /// <summary>True when an entry named <paramref name="name"/> exists.</summary>
    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>
    /// Throws <see cref="InvalidDataException"/> when the payload is newer than
    /// <paramref name="newestSupported"/>, the newest version this build of the component reads.
    /// </summary>
    public void RequireVersion(int newestSupported)
    {
        if (Version > newestSupported)
        {
            throw new InvalidDataException(
                $"Component '{ComponentName}' in '{Source}' has payload version {Version}; this build reads versions up to {newestSupported}. Update Allauzen.ML to load this model.");
        }
    }

    /// <summary>Reads a JSON entry (same options as <see cref="ModelPayloadWriter.WriteJson{T}"/>).</summary>
    public T ReadJson<T>(string name)
    {
        var entry = Get(name, PayloadEntryKind.Json);
        try
        {
            return JsonSerializer.Deserialize<T>(Slice(entry), PayloadFormat.JsonOptions)
                ?? throw BadEntry(name, $"holds null where {typeof(T).Name} was expected");
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or ArgumentException or FormatException)
        {
            throw new InvalidDataException(
                $"Component '{ComponentName}': entry '{name}' in '{Source}' is not valid JSON for {typeof(T).Name}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Reads a 64-bit integer entry holding exactly one value in [<paramref name="min"/>, <paramref name="max"/>],
    /// e.g. a stored count or width, checked before anything is sized by it.
    /// </summary>
    public int ReadInt32(string name, int min, int max)
    {
        var values = ReadInt64s(name);
        if (values.Length != 1)
            throw BadEntry(name, $"holds {values.Length} values, expected 1");
        if (values[0] < min || values[0] > max)
            throw BadEntry(name, $"holds {values[0]}, expected a value in [{min}, {max}]");
        return (int)values[0];
    }

    /// <summary>Reads a string entry that must not be empty or white space (a column name, for instance).</summary>
    public string ReadName(string name)
    {
        string value = ReadString(name);
        if (string.IsNullOrWhiteSpace(value))
            throw BadEntry(name, "is empty, expected a name");
        return value;
    }

    /// <summary>
    /// Throws an <see cref="InvalidDataException"/> naming the component, the entry, the field and the source
    /// unless <paramref name="ok"/>: the check a loader makes on a stored setting or shape before it allocates or
    /// builds anything from it.
    /// </summary>
    public void Require(bool ok, string entry, string field, string rule)
    {
        if (!ok)
            throw Invalid(entry, field, rule);
    }

    /// <summary>The exception <see cref="Require"/> throws: "Component 'X': entry 'e' in 'source': field rule."</summary>
    public InvalidDataException Invalid(string entry, string field, string rule, Exception? inner = null)
        => new($"Component '{ComponentName}': entry '{entry}' in '{Source}': {field} {rule}.", inner);

    /// <summary>
    /// Runs the options' own <c>Validate()</c> rules on settings read from <paramref name="entry"/> (one validation path for
    /// training and loading): an <see cref="ArgumentException"/> becomes an <see cref="InvalidDataException"/> naming the
    /// component, the entry, the source and the offending option.
    /// </summary>
    public void ValidateSettings(string entry, Action validate)
    {
        ArgumentNullException.ThrowIfNull(validate);
        try
        {
            validate();
        }
        catch (ArgumentException ex)
        {
            string message = ex.Message.Split('\n')[0];
            throw Invalid(entry, ex.ParamName ?? "a setting", $"is invalid: {message}", ex);
        }
    }

    /// <summary>
    /// Reads a float tensor that must have exactly <paramref name="expected"/> as its shape (checked against the entry
    /// table before any element is copied).
    /// </summary>
    public float[] ReadTensor(string name, ReadOnlySpan<long> expected)
    {
        var entry = Get(name, PayloadEntryKind.Float32Tensor);
        if (!entry.Shape.AsSpan().SequenceEqual(expected))
            throw BadEntry(name, $"has shape [{string.Join(", ", entry.Shape)}], expected [{string.Join(", ", expected.ToArray())}]");
        return ReadTensor(name).Data;
    }

    /// <summary>The stored shape of a float tensor entry, without reading its data.</summary>
    public long[] TensorShape(string name) => (long[])Get(name, PayloadEntryKind.Float32Tensor).Shape.Clone();

    /// <summary>Reads a string entry.</summary>
    public string ReadString(string name)
    {
        var entry = Get(name, PayloadEntryKind.String);
        return DecodeUtf8(Slice(entry), name);
    }

    /// <summary>Reads a list-of-strings entry.</summary>
    public string[] ReadStrings(string name)
    {
        var entry = Get(name, PayloadEntryKind.Strings);
        var span = Slice(entry);
        if (span.Length < 4)
            throw BadEntry(name, "is shorter than its element count");
        int count = BinaryPrimitives.ReadInt32LittleEndian(span);
        if (count < 0 || count > (span.Length - 4) / 4)
            throw BadEntry(name, $"declares an invalid count {count}");
        var result = new string[count];
        int pos = 4;
        for (int i = 0; i < count; i++)
        {
            if (pos + 4 > span.Length)
                throw BadEntry(name, $"ends inside element {i}");
            int length = BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
            pos += 4;
            if (length < 0 || length > span.Length - pos)
                throw BadEntry(name, $"element {i} declares {length} bytes where {span.Length - pos} remain");
            result[i] = DecodeUtf8(span.Slice(pos, length), name);
            pos += length;
        }
        if (pos != span.Length)
            throw BadEntry(name, "has bytes after its last element");
        return result;
    }

    /// <summary>Reads a 64-bit integer entry.</summary>
    public long[] ReadInt64s(string name)
    {
        var entry = Get(name, PayloadEntryKind.Int64s);
        var span = Slice(entry);
        if (span.Length % sizeof(long) != 0)
            throw BadEntry(name, $"has {span.Length} bytes, not a multiple of 8");
        var result = new long[span.Length / sizeof(long)];
        if (BitConverter.IsLittleEndian)
        {
            span.CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
        }
        else
        {
            for (int i = 0; i < result.Length; i++)
                result[i] = BinaryPrimitives.ReadInt64LittleEndian(span[(i * sizeof(long))..]);
        }
        return result;
    }

    /// <summary>Reads a single-precision tensor entry: row-major data and its shape, bit for bit as written.</summary>
    public (float[] Data, long[] Shape) ReadTensor(string name)
    {
        var entry = Get(name, PayloadEntryKind.Float32Tensor);
        var span = CheckTensor(name, entry, sizeof(float));
        var result = new float[span.Length / sizeof(float)];
        if (BitConverter.IsLittleEndian)
        {
            span.CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
        }
        else
        {
            for (int i = 0; i < result.Length; i++)
                result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadInt32LittleEndian(span[(i * sizeof(float))..]));
        }
        return (result, (long[])entry.Shape.Clone());
    }

    /// <summary>Reads a double-precision tensor entry: row-major data and its shape, bit for bit as written.</summary>
    public (double[] Data, long[] Shape) ReadTensorDouble(string name)
    {
        var entry = Get(name, PayloadEntryKind.Float64Tensor);
        var span = CheckTensor(name, entry, sizeof(double));
        var result = new double[span.Length / sizeof(double)];
        if (BitConverter.IsLittleEndian)
        {
            span.CopyTo(MemoryMarshal.AsBytes(result.AsSpan()));
        }
        else
        {
            for (int i = 0; i < result.Length; i++)
                result[i] = BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64LittleEndian(span[(i * sizeof(double))..]));
        }
        return (result, (long[])entry.Shape.Clone());
    }

    /// <summary>Reads a bytes entry.</summary>
    public byte[] ReadBytes(string name) => Slice(Get(name, PayloadEntryKind.Bytes)).ToArray();

    /// <summary>Reads a column description written by <see cref="ModelPayloadWriter.WriteColumnInfo(string, DataViewSchema.Column)"/>.</summary>
    public PersistedColumn ReadColumnInfo(string name)
    {
        var column = ReadJson<PersistedColumn?>(name)
            ?? throw BadEntry(name, "holds no column description");
        try
        {
            column.Validate();
        }
        catch (InvalidDataException ex)
        {
            throw BadEntry(name, ex.Message);
        }
        return column;
    }

    private EntryInfo Get(string name, PayloadEntryKind kind)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_entries.TryGetValue(name, out var entry))
        {
            string present = _names.Count == 0 ? "none" : string.Join(", ", _names);
            throw new InvalidDataException(
                $"Component '{ComponentName}': entry '{name}' is missing from '{Source}' (entries present: {present}).");
        }
        if (entry.Kind != kind)
        {
            throw new InvalidDataException(
                $"Component '{ComponentName}': entry '{name}' in '{Source}' is of kind {entry.Kind}, expected {kind}.");
        }
        return entry;
    }

    private ReadOnlySpan<byte> Slice(EntryInfo entry) => _data.Span.Slice(entry.Offset, entry.Length);

    private ReadOnlySpan<byte> CheckTensor(string name, EntryInfo entry, int elementSize)
    {
        var span = Slice(entry);
        if (span.Length % elementSize != 0)
            throw BadEntry(name, $"has {span.Length} bytes, not a multiple of {elementSize}");
        long product = 1;
        foreach (long d in entry.Shape)
        {
            product = d == 0 ? 0 : (product > long.MaxValue / d ? -1 : product * d);
            if (product < 0)
                break;
        }
        if (product != span.Length / elementSize)
            throw BadEntry(name, $"has shape [{string.Join(", ", entry.Shape)}] but {span.Length / elementSize} elements");
        return span;
    }

    private string DecodeUtf8(ReadOnlySpan<byte> bytes, string name)
    {
        try
        {
            return PayloadFormat.Utf8.GetString(bytes);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidDataException($"Component '{ComponentName}': entry '{name}' in '{Source}' is not valid UTF-8.", ex);
        }
    }

    private InvalidDataException BadEntry(string name, string problem)
        => new($"Component '{ComponentName}': entry '{name}' in '{Source}' {problem}.");

    private InvalidDataException Corrupt(string what, string problem)
        => new($"'{Source}' is corrupted: {what} is malformed ({problem}).");

    private int ReadInt32(ReadOnlySpan<byte> span, ref int pos, int end, string what, string field)
    {
        if (pos + 4 > end)
            throw Corrupt(what, $"the {field} lies past the end");
        int value = BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
        pos += 4;
        return value;
    }

    private string ReadUtf8(ReadOnlySpan<byte> span, ref int pos, int end, string what, string field)
    {
        int length = ReadInt32(span, ref pos, end, what, field);
        if (length < 0 || length > end - pos)
            throw Corrupt(what, $"the {field} declares {length} bytes where {end - pos} remain");
        string value;
        try
        {
            value = PayloadFormat.Utf8.GetString(span.Slice(pos, length));
        }
        catch (DecoderFallbackException)
        {
            throw Corrupt(what, $"the {field} is not valid UTF-8");
        }
        pos += length;
        return value;
    }

    private static ReadOnlySpan<byte> PngMagic => [0x89, (byte)'P', (byte)'N', (byte)'G'];

    private static ReadOnlySpan<byte> ZipMagic => [(byte)'P', (byte)'K', 0x03, 0x04];

    private static string Describe(ReadOnlySpan<byte> span)
    {
        if (span.Length == 0)
            return "an empty file";
        if (span.StartsWith(PngMagic))
            return "a PNG image";
        if (span.StartsWith(ZipMagic))
            return "a zip archive (an ML.NET model or a composite model?)";
        if (span.StartsWith("{"u8) || span.StartsWith("["u8))
            return "what looks like JSON";
        var head = span[..Math.Min(span.Length, 8)];
        var printable = new StringBuilder();
        foreach (byte b in head)
            printable.Append(b is >= 0x20 and < 0x7F ? (char)b : '.');
        return $"bytes {Convert.ToHexString(head)} (\"{printable}\")";
    }
}
