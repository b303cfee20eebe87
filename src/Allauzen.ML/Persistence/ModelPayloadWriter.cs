using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.ML;

namespace Allauzen.ML.Persistence;

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
