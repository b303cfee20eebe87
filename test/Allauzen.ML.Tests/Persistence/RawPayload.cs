using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Allauzen.ML.Persistence;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>
/// A payload taken apart entry by entry so that a test can tamper with it and sign it again (a valid checksum), the way
/// a crafted file would: the loaders, not the checksum, must then refuse it.
/// </summary>
internal sealed class RawPayload
{
    public sealed class Entry(string name, byte kind, long[] shape, byte[] data)
    {
        public string Name { get; set; } = name;

        public byte Kind { get; set; } = kind;

        public long[] Shape { get; set; } = shape;

        public byte[] Data { get; set; } = data;

        /// <summary>A length written in place of the real one (to craft an inflated declared length), or null.</summary>
        public long? DeclaredLength { get; set; }

        public Entry Clone() => new(Name, Kind, (long[])Shape.Clone(), (byte[])Data.Clone()) { DeclaredLength = DeclaredLength };
    }

    public string Signature { get; set; } = "";

    public int Version { get; set; }

    public string ComponentName { get; set; } = "";

    public List<Entry> Entries { get; } = [];

    public Entry this[string name] => Entries.Single(e => e.Name == name);

    public static RawPayload Parse(byte[] bytes)
    {
        var reader = new ModelPayloadReader(bytes, "parse"); // checks the whole payload first
        var span = bytes.AsSpan();
        var result = new RawPayload { Signature = reader.Signature, Version = reader.Version, ComponentName = reader.ComponentName };
        int pos = PayloadFormat.FixedHeaderSize;
        pos += 4 + BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
        int count = BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
        pos += 4;
        for (int i = 0; i < count; i++)
        {
            int nameLength = BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
            string name = Encoding.UTF8.GetString(span.Slice(pos + 4, nameLength));
            pos += 4 + nameLength;
            byte kind = span[pos++];
            long[] shape = [];
            if (kind is (byte)PayloadEntryKind.Float32Tensor or (byte)PayloadEntryKind.Float64Tensor)
            {
                shape = new long[BinaryPrimitives.ReadInt32LittleEndian(span[pos..])];
                pos += 4;
                for (int d = 0; d < shape.Length; d++, pos += 8)
                    shape[d] = BinaryPrimitives.ReadInt64LittleEndian(span[pos..]);
            }
            int length = (int)BinaryPrimitives.ReadInt64LittleEndian(span[pos..]);
            pos += 8;
            result.Entries.Add(new Entry(name, kind, shape, span.Slice(pos, length).ToArray()));
            pos += length;
        }
        return result;
    }

    public RawPayload Clone()
    {
        var copy = new RawPayload { Signature = Signature, Version = Version, ComponentName = ComponentName };
        copy.Entries.AddRange(Entries.Select(e => e.Clone()));
        return copy;
    }

    /// <summary>The payload bytes, signed again with a correct SHA-256.</summary>
    public byte[] ToBytes()
    {
        using var body = new MemoryStream();
        void Int32(int v) => body.Write(BitConverter.GetBytes(v));
        void Int64(long v) => body.Write(BitConverter.GetBytes(v));
        foreach (var e in Entries)
        {
            byte[] name = Encoding.UTF8.GetBytes(e.Name);
            Int32(name.Length);
            body.Write(name);
            body.WriteByte(e.Kind);
            if (e.Kind is (byte)PayloadEntryKind.Float32Tensor or (byte)PayloadEntryKind.Float64Tensor)
            {
                Int32(e.Shape.Length);
                foreach (long d in e.Shape)
                    Int64(d);
            }
            Int64(e.DeclaredLength ?? e.Data.LongLength);
            body.Write(e.Data);
        }
        byte[] component = Encoding.UTF8.GetBytes(ComponentName);
        int total = PayloadFormat.FixedHeaderSize + 4 + component.Length + 4 + (int)body.Length + PayloadFormat.ChecksumSize;
        var result = new byte[total];
        var span = result.AsSpan();
        "ALZPAYLD"u8.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], PayloadFormat.FormatVersion);
        BinaryPrimitives.WriteInt64LittleEndian(span[12..], total);
        Encoding.ASCII.GetBytes(Signature.PadRight(8).AsSpan(0, 8), span.Slice(20, 8));
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], Version);
        int pos = PayloadFormat.FixedHeaderSize;
        BinaryPrimitives.WriteInt32LittleEndian(span[pos..], component.Length);
        component.CopyTo(span[(pos + 4)..]);
        pos += 4 + component.Length;
        BinaryPrimitives.WriteInt32LittleEndian(span[pos..], Entries.Count);
        pos += 4;
        body.ToArray().CopyTo(span[pos..]);
        pos += (int)body.Length;
        SHA256.HashData(span[..pos], span[pos..]);
        return result;
    }

    /// <summary>Reads a JSON entry as a node tree.</summary>
    public JsonNode Json(string name) => JsonNode.Parse(this[name].Data)!;

    /// <summary>Replaces a JSON entry.</summary>
    public void SetJson(string name, JsonNode node) => this[name].Data = Encoding.UTF8.GetBytes(node.ToJsonString());

    /// <summary>Edits one JSON entry in place.</summary>
    public RawPayload EditJson(string name, Action<JsonObject> edit)
    {
        var node = Json(name).AsObject();
        edit(node);
        SetJson(name, node);
        return this;
    }

    /// <summary>Replaces a list-of-strings entry.</summary>
    public void SetStrings(string name, IReadOnlyList<string> values)
    {
        using var data = new MemoryStream();
        data.Write(BitConverter.GetBytes(values.Count));
        foreach (var v in values)
        {
            var b = Encoding.UTF8.GetBytes(v);
            data.Write(BitConverter.GetBytes(b.Length));
            data.Write(b);
        }
        this[name].Data = data.ToArray();
    }

    /// <summary>Replaces an Int64s entry.</summary>
    public void SetInt64s(string name, params long[] values) =>
        this[name].Data = values.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>Replaces a float tensor entry (data and shape).</summary>
    public void SetTensor(string name, float[] data, params long[] shape)
    {
        this[name].Shape = shape;
        this[name].Data = data.SelectMany(BitConverter.GetBytes).ToArray();
    }

    public static JsonSerializerOptions Indented { get; } = new() { WriteIndented = true };
}
