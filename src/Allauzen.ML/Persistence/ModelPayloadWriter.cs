using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML;

namespace Allauzen.ML.Persistence;

/// <summary>The kind of a named payload entry; stored as one byte, so values never change.</summary>
internal enum PayloadEntryKind : byte
{
    /// <summary>UTF-8 JSON written with <see cref="PayloadFormat.JsonOptions"/>.</summary>
    Json = 1,

    /// <summary>One UTF-8 string.</summary>
    String = 2,

    /// <summary>A list of strings: count, then each as byte length + UTF-8.</summary>
    Strings = 3,

    /// <summary>Raw little-endian 64-bit integers.</summary>
    Int64s = 4,

    /// <summary>Raw little-endian IEEE 754 single-precision values, with a shape.</summary>
    Float32Tensor = 5,

    /// <summary>Raw little-endian IEEE 754 double-precision values, with a shape.</summary>
    Float64Tensor = 6,

    /// <summary>Opaque bytes.</summary>
    Bytes = 7,
}

/// <summary>
/// Constants of the Allauzen payload format, shared by <see cref="ModelPayloadWriter"/> and
/// <see cref="ModelPayloadReader"/>.
/// </summary>
/// <remarks>
/// Layout, all integers little-endian:
/// <code>
/// offset  size  field
/// 0       8     magic "ALZPAYLD"
/// 8       4     format version (uint32, currently 1)
/// 12      8     total length in bytes, checksum included (int64)
/// 20      8     component signature, 8 ASCII characters
/// 28      4     payload version (int32, owned by the component)
/// 32      ...   component name (int32 byte count + UTF-8)
///         4     entry count (int32)
///         ...   entries, in write order:
///                 name (int32 byte count + UTF-8), kind (1 byte, PayloadEntryKind),
///                 for tensors: rank (int32) then rank × int64 dimensions,
///                 data byte count (int64), data
/// end-32  32    SHA-256 of every preceding byte
/// </code>
/// </remarks>
internal static class PayloadFormat
{
    /// <summary>The 8 bytes every payload starts with.</summary>
    public static ReadOnlySpan<byte> Magic => "ALZPAYLD"u8;

    /// <summary>The format version this build writes and the newest it reads.</summary>
    public const uint FormatVersion = 1;

    /// <summary>Bytes before the component name: magic, format version, total length, signature, payload version.</summary>
    public const int FixedHeaderSize = 8 + 4 + 8 + 8 + 4;

    /// <summary>Size of the trailing SHA-256 checksum.</summary>
    public const int ChecksumSize = 32;

    /// <summary>Length of a component signature.</summary>
    public const int SignatureLength = 8;

    /// <summary>
    /// JSON settings of <see cref="PayloadEntryKind.Json"/> entries: fields included, enums as strings,
    /// NaN and infinities allowed as named literals.
    /// </summary>
    public static JsonSerializerOptions JsonOptions { get; } = CreateJsonOptions();

    /// <summary>UTF-8 without a byte-order mark, throwing on invalid data.</summary>
    public static UTF8Encoding Utf8 { get; } = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="signature"/> is 8 printable ASCII characters.</summary>
    public static void CheckSignature(string signature, string paramName)
    {
        ArgumentNullException.ThrowIfNull(signature, paramName);
        if (!IsValidSignature(signature))
        {
            throw new ArgumentException(
                $"A component signature must be exactly {SignatureLength} printable ASCII characters; got '{signature}'.",
                paramName);
        }
    }

    /// <summary>True when <paramref name="signature"/> is 8 printable ASCII characters.</summary>
    public static bool IsValidSignature(string? signature)
    {
        if (signature is null || signature.Length != SignatureLength)
            return false;
        foreach (char c in signature)
        {
            if (c < 0x20 || c > 0x7E)
                return false;
        }
        return true;
    }

    private static JsonSerializerOptions CreateJsonOptions()
    {
        var options = new JsonSerializerOptions
        {
            IncludeFields = true,
            WriteIndented = false,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}

/// <summary>
/// Writes an Allauzen payload: a signature and version, then named, typed entries (JSON, strings,
/// integers, float tensors with a shape, bytes), closed by a SHA-256 checksum. The format depends on
/// neither ML.NET nor TorchSharp; the same bytes go into an ML.NET model zip (through the native
/// bridge) or into an <see cref="AllauzenModel"/> composite zip. See <see cref="PayloadFormat"/> for
/// the byte layout and <see cref="ModelPayloadReader"/> for reading.
/// </summary>
internal sealed class ModelPayloadWriter
{
    private readonly MemoryStream _body = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly List<string> _order = new();

    /// <summary>Starts a payload for one component.</summary>
    /// <param name="signature">Exactly 8 printable ASCII characters, e.g. "ALZ-MLP_".</param>
    /// <param name="payloadVersion">The component's payload version (≥ 0).</param>
    /// <param name="componentName">Human-readable component name used in error messages, e.g. "Mlp".</param>
    public ModelPayloadWriter(string signature, int payloadVersion, string componentName)
    {
        PayloadFormat.CheckSignature(signature, nameof(signature));
        ArgumentOutOfRangeException.ThrowIfNegative(payloadVersion);
        ArgumentException.ThrowIfNullOrWhiteSpace(componentName);
        Signature = signature;
        Version = payloadVersion;
        ComponentName = componentName;
    }

    /// <summary>The component signature written in the header.</summary>
    public string Signature { get; }

    /// <summary>The payload version written in the header.</summary>
    public int Version { get; }

    /// <summary>The component name written in the header.</summary>
    public string ComponentName { get; }

    /// <summary>Entry names written so far, in order.</summary>
    public IReadOnlyList<string> Names => _order;

    /// <summary>
    /// Writes <paramref name="value"/> as JSON (System.Text.Json with public fields included, enums as
    /// strings, NaN/±Infinity as named literals).
    /// </summary>
    public void WriteJson<T>(string name, T value)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(value, PayloadFormat.JsonOptions);
        AddEntry(name, PayloadEntryKind.Json, default, json);
    }

    /// <summary>Writes one string (UTF-8).</summary>
    public void WriteString(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        AddEntry(name, PayloadEntryKind.String, default, PayloadFormat.Utf8.GetBytes(value));
    }

    /// <summary>Writes a list of strings; no element may be null.</summary>
    public void WriteStrings(string name, IReadOnlyList<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        using var data = new MemoryStream();
        Span<byte> scratch = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(scratch, values.Count);
        data.Write(scratch);
        for (int i = 0; i < values.Count; i++)
        {
            string s = values[i] ?? throw new ArgumentException($"Element {i} of '{name}' is null.", nameof(values));
            byte[] bytes = PayloadFormat.Utf8.GetBytes(s);
            BinaryPrimitives.WriteInt32LittleEndian(scratch, bytes.Length);
            data.Write(scratch);
            data.Write(bytes);
        }
        AddEntry(name, PayloadEntryKind.Strings, default, data.ToArray());
    }

    /// <summary>Writes 64-bit integers (raw little-endian).</summary>
    public void WriteInt64s(string name, ReadOnlySpan<long> values)
        => AddEntry(name, PayloadEntryKind.Int64s, default, ToLittleEndianBytes(values));

    /// <summary>
    /// Writes a single-precision tensor in row-major order. The product of <paramref name="shape"/>
    /// must equal <c>data.Length</c> (an empty shape is a scalar of one element). Values are stored
    /// bit for bit, NaN payloads and negative zero included.
    /// </summary>
    public void WriteTensor(string name, ReadOnlySpan<float> data, ReadOnlySpan<long> shape)
    {
        CheckShape(name, data.Length, shape);
        AddEntry(name, PayloadEntryKind.Float32Tensor, shape, ToLittleEndianBytes(data));
    }

    /// <summary>Writes a double-precision tensor; see <see cref="WriteTensor(string, ReadOnlySpan{float}, ReadOnlySpan{long})"/>.</summary>
    public void WriteTensor(string name, ReadOnlySpan<double> data, ReadOnlySpan<long> shape)
    {
        CheckShape(name, data.Length, shape);
        AddEntry(name, PayloadEntryKind.Float64Tensor, shape, ToLittleEndianBytes(data));
    }

    /// <summary>Writes opaque bytes.</summary>
    public void WriteBytes(string name, ReadOnlySpan<byte> data)
        => AddEntry(name, PayloadEntryKind.Bytes, default, data.ToArray());

    /// <summary>
    /// Records what a loader needs to rebuild a column: name, item type (Single, Double, Int64,
    /// UInt32 key with its count, String, Boolean), vector size, and the text-valued SlotNames and
    /// KeyValues annotations. Stored as a JSON entry; read back with
    /// <see cref="ModelPayloadReader.ReadColumnInfo(string)"/>.
    /// </summary>
    /// <exception cref="NotSupportedException">The column's type is not one of the supported types.</exception>
    public void WriteColumnInfo(string name, DataViewSchema.Column column)
        => WriteColumnInfo(name, PersistedColumn.From(column));

    /// <summary>
    /// Writes a column description already captured (for example one read back by a loaded
    /// transformer that is being saved again).
    /// </summary>
    public void WriteColumnInfo(string name, PersistedColumn column)
    {
        ArgumentNullException.ThrowIfNull(column);
        WriteJson(name, column);
    }

    /// <summary>
    /// The complete payload of <paramref name="transformer"/>: a writer with its signature, version
    /// and component name, filled by <see cref="IAllauzenTransformer.SavePayload"/>.
    /// </summary>
    public static byte[] Serialize(IAllauzenTransformer transformer)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        var writer = new ModelPayloadWriter(transformer.LoaderSignature, transformer.PayloadVersion, transformer.ComponentName);
        transformer.SavePayload(writer);
        return writer.ToArray();
    }

    /// <summary>Returns the complete payload (header, entries, checksum).</summary>
    public byte[] ToArray()
    {
        byte[] componentName = PayloadFormat.Utf8.GetBytes(ComponentName);
        long total = PayloadFormat.FixedHeaderSize + 4 + componentName.Length + 4 + _body.Length + PayloadFormat.ChecksumSize;
        if (total > Array.MaxLength)
            throw new InvalidOperationException($"Component '{ComponentName}': the payload would be {total} bytes, more than a .NET array can hold.");

        byte[] result = new byte[total];
        var span = result.AsSpan();
        PayloadFormat.Magic.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], PayloadFormat.FormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(span[12..], total);
        Encoding.ASCII.GetBytes(Signature, span.Slice(20, PayloadFormat.SignatureLength));
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], Version);
        int pos = PayloadFormat.FixedHeaderSize;
        BinaryPrimitives.WriteInt32LittleEndian(span[pos..], componentName.Length);
        pos += 4;
        componentName.CopyTo(span[pos..]);
        pos += componentName.Length;
        BinaryPrimitives.WriteInt32LittleEndian(span[pos..], _order.Count);
        pos += 4;
        _body.GetBuffer().AsSpan(0, (int)_body.Length).CopyTo(span[pos..]);
        pos += (int)_body.Length;
        SHA256.HashData(span[..pos], span[pos..]);
        return result;
    }

    /// <summary>Writes the complete payload to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        stream.Write(ToArray());
    }

    private void AddEntry(string name, PayloadEntryKind kind, ReadOnlySpan<long> shape, byte[] data)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!_names.Add(name))
            throw new ArgumentException($"Component '{ComponentName}': the payload already has an entry named '{name}'.", nameof(name));
        _order.Add(name);

        byte[] nameBytes = PayloadFormat.Utf8.GetBytes(name);
        Span<byte> scratch = stackalloc byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(scratch, nameBytes.Length);
        _body.Write(scratch[..4]);
        _body.Write(nameBytes);
        _body.WriteByte((byte)kind);
        if (kind is PayloadEntryKind.Float32Tensor or PayloadEntryKind.Float64Tensor)
        {
            BinaryPrimitives.WriteInt32LittleEndian(scratch, shape.Length);
            _body.Write(scratch[..4]);
            foreach (long d in shape)
            {
                BinaryPrimitives.WriteInt64LittleEndian(scratch, d);
                _body.Write(scratch);
            }
        }
        BinaryPrimitives.WriteInt64LittleEndian(scratch, data.LongLength);
        _body.Write(scratch);
        _body.Write(data);
    }

    private void CheckShape(string name, int length, ReadOnlySpan<long> shape)
    {
        long product = 1;
        foreach (long d in shape)
        {
            if (d < 0)
                throw new ArgumentException($"Component '{ComponentName}', tensor '{name}': negative dimension {d} in shape [{string.Join(", ", shape.ToArray())}].", nameof(shape));
            product = checked(product * d);
        }
        if (product != length)
        {
            throw new ArgumentException(
                $"Component '{ComponentName}', tensor '{name}': shape [{string.Join(", ", shape.ToArray())}] holds {product} elements but the data has {length}.",
                nameof(shape));
        }
    }

    private static byte[] ToLittleEndianBytes(ReadOnlySpan<long> values)
    {
        byte[] bytes = new byte[checked(values.Length * sizeof(long))];
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
        }
        else
        {
            for (int i = 0; i < values.Length; i++)
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * sizeof(long)), values[i]);
        }
        return bytes;
    }

    private static byte[] ToLittleEndianBytes(ReadOnlySpan<float> values)
    {
        byte[] bytes = new byte[checked(values.Length * sizeof(float))];
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
        }
        else
        {
            for (int i = 0; i < values.Length; i++)
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * sizeof(float)), BitConverter.SingleToInt32Bits(values[i]));
        }
        return bytes;
    }

    private static byte[] ToLittleEndianBytes(ReadOnlySpan<double> values)
    {
        byte[] bytes = new byte[checked(values.Length * sizeof(double))];
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(values).CopyTo(bytes);
        }
        else
        {
            for (int i = 0; i < values.Length; i++)
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * sizeof(double)), BitConverter.DoubleToInt64Bits(values[i]));
        }
        return bytes;
    }
}
