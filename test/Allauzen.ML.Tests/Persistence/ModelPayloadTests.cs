using System.Buffers.Binary;
using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

[TestClass]
public sealed class ModelPayloadTests
{
    private const string Signature = "ALZ-TST_";
    private const string Component = "PayloadTest";
    private const string Source = "payload-test.alzpayload";

    public enum Activation
    {
        Relu,
        GroupSort,
    }

    public sealed class Options
    {
        public int Depth = 3;
        public Activation Activation = Activation.GroupSort;
        public double Margin { get; set; } = double.NaN;
        public string? Note;
        public float[] Widths = [1.5f, -0f];
    }

    private static readonly float[] SpecialFloats =
    [
        0f, -0f, float.Epsilon, -float.Epsilon, 1.17549421e-38f /* largest subnormal */, 1.17549435e-38f /* smallest normal */,
        float.MaxValue, float.MinValue, float.PositiveInfinity, float.NegativeInfinity, float.NaN,
        BitConverter.Int32BitsToSingle(0x7FC0_1234) /* quiet NaN with payload */, BitConverter.Int32BitsToSingle(unchecked((int)0xFFA0_0001)) /* negative NaN with payload */,
        1f / 3f, MathF.PI,
    ];

    private static readonly double[] SpecialDoubles =
    [
        0d, -0d, double.Epsilon, double.MaxValue, double.MinValue, double.PositiveInfinity, double.NegativeInfinity,
        double.NaN, BitConverter.Int64BitsToDouble(0x7FF8_0000_DEAD_BEEF), BitConverter.Int64BitsToDouble(0x000F_FFFF_FFFF_FFFF), Math.E,
    ];

    private static byte[] FullPayload()
    {
        var writer = new ModelPayloadWriter(Signature, 3, Component);
        writer.WriteJson("options", new Options { Note = "héllo ✓" });
        writer.WriteString("label", "Ünïcødé 🎉");
        writer.WriteString("empty", "");
        writer.WriteStrings("classes", ["cat", "", "chien", "猫"]);
        writer.WriteStrings("none", []);
        writer.WriteInt64s("ints", [0, -1, long.MaxValue, long.MinValue, 42]);
        writer.WriteTensor("floats", SpecialFloats, [3, 5]);
        writer.WriteTensor("doubles", SpecialDoubles, [SpecialDoubles.Length]);
        writer.WriteTensor("scalar", [2.5f], []);
        writer.WriteTensor("emptyTensor", ReadOnlySpan<float>.Empty, [0, 7]);
        writer.WriteBytes("raw", [0, 1, 2, 255, 128]);
        return writer.ToArray();
    }

    [TestMethod]
    public void RoundTripsEveryKindBitForBit()
    {
        var reader = new ModelPayloadReader(FullPayload(), Source);

        Assert.AreEqual(Signature, reader.Signature);
        Assert.AreEqual(3, reader.Version);
        Assert.AreEqual(Component, reader.ComponentName);
        CollectionAssert.AreEqual(
            new[] { "options", "label", "empty", "classes", "none", "ints", "floats", "doubles", "scalar", "emptyTensor", "raw" },
            reader.Names.ToArray());
        Assert.IsTrue(reader.Contains("floats"));
        Assert.IsFalse(reader.Contains("Floats"));

        var options = reader.ReadJson<Options>("options");
        Assert.AreEqual(3, options.Depth);
        Assert.AreEqual(Activation.GroupSort, options.Activation);
        Assert.IsTrue(double.IsNaN(options.Margin));
        Assert.AreEqual("héllo ✓", options.Note);
        Assert.AreEqual(BitConverter.SingleToInt32Bits(-0f), BitConverter.SingleToInt32Bits(options.Widths[1]));

        Assert.AreEqual("Ünïcødé 🎉", reader.ReadString("label"));
        Assert.AreEqual("", reader.ReadString("empty"));
        CollectionAssert.AreEqual(new[] { "cat", "", "chien", "猫" }, reader.ReadStrings("classes"));
        Assert.IsEmpty(reader.ReadStrings("none"));
        CollectionAssert.AreEqual(new long[] { 0, -1, long.MaxValue, long.MinValue, 42 }, reader.ReadInt64s("ints"));

        var (floats, floatShape) = reader.ReadTensor("floats");
        CollectionAssert.AreEqual(new long[] { 3, 5 }, floatShape);
        CollectionAssert.AreEqual(SpecialFloats.Select(BitConverter.SingleToInt32Bits).ToArray(), floats.Select(BitConverter.SingleToInt32Bits).ToArray());

        var (doubles, doubleShape) = reader.ReadTensorDouble("doubles");
        CollectionAssert.AreEqual(new long[] { SpecialDoubles.Length }, doubleShape);
        CollectionAssert.AreEqual(SpecialDoubles.Select(BitConverter.DoubleToInt64Bits).ToArray(), doubles.Select(BitConverter.DoubleToInt64Bits).ToArray());

        var (scalar, scalarShape) = reader.ReadTensor("scalar");
        Assert.IsEmpty(scalarShape);
        CollectionAssert.AreEqual(new[] { 2.5f }, scalar);

        var (empty, emptyShape) = reader.ReadTensor("emptyTensor");
        Assert.IsEmpty(empty);
        CollectionAssert.AreEqual(new long[] { 0, 7 }, emptyShape);

        CollectionAssert.AreEqual(new byte[] { 0, 1, 2, 255, 128 }, reader.ReadBytes("raw"));
    }

    [TestMethod]
    public void JsonWritesEnumsAsStringsAndIncludesFields()
    {
        var writer = new ModelPayloadWriter(Signature, 1, Component);
        writer.WriteJson("options", new Options());
        var reader = new ModelPayloadReader(writer.ToArray(), Source);
        // Read the raw JSON back through a dictionary to check the encoding itself.
        var raw = reader.ReadJson<Dictionary<string, System.Text.Json.JsonElement>>("options");
        Assert.AreEqual("GroupSort", raw["Activation"].GetString());
        Assert.AreEqual(3, raw["Depth"].GetInt32());
        Assert.AreEqual("NaN", raw["Margin"].GetString());
    }

    [TestMethod]
    public void WriteToMatchesToArray()
    {
        var writer = new ModelPayloadWriter(Signature, 1, Component);
        writer.WriteInt64s("x", [1, 2, 3]);
        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        CollectionAssert.AreEqual(writer.ToArray(), stream.ToArray());
    }

    [TestMethod]
    public void WriterRejectsBadInput()
    {
        Assert.ThrowsExactly<ArgumentException>(() => new ModelPayloadWriter("SHORT", 1, Component));
        Assert.ThrowsExactly<ArgumentException>(() => new ModelPayloadWriter("ÄLZ-TST_", 1, Component));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ModelPayloadWriter(Signature, -1, Component));

        var writer = new ModelPayloadWriter(Signature, 1, Component);
        var shape = Assert.ThrowsExactly<ArgumentException>(() => writer.WriteTensor("t", [1f, 2f, 3f], [2, 2]));
        StringAssert.Contains(shape.Message, "[2, 2] holds 4 elements but the data has 3");
        Assert.ThrowsExactly<ArgumentException>(() => writer.WriteTensor("t", [1d, 2d], [-1, -2]));

        writer.WriteString("name", "x");
        var duplicate = Assert.ThrowsExactly<ArgumentException>(() => writer.WriteBytes("name", [1]));
        StringAssert.Contains(duplicate.Message, "'name'");
        Assert.ThrowsExactly<ArgumentException>(() => writer.WriteStrings("list", ["a", null!]));
    }

    [TestMethod]
    public void MissingEntryNamesComponentEntryAndSource()
    {
        var reader = new ModelPayloadReader(FullPayload(), Source);
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => reader.ReadTensor("weights"));
        StringAssert.Contains(ex.Message, Component);
        StringAssert.Contains(ex.Message, "'weights'");
        StringAssert.Contains(ex.Message, Source);
    }

    [TestMethod]
    public void WrongKindNamesComponentEntryAndKinds()
    {
        var reader = new ModelPayloadReader(FullPayload(), Source);
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => reader.ReadTensor("doubles"));
        StringAssert.Contains(ex.Message, Component);
        StringAssert.Contains(ex.Message, "'doubles'");
        StringAssert.Contains(ex.Message, Source);
        StringAssert.Contains(ex.Message, "Float64Tensor");
        StringAssert.Contains(ex.Message, "Float32Tensor");

        Assert.ThrowsExactly<InvalidDataException>(() => reader.ReadString("ints"));
        Assert.ThrowsExactly<InvalidDataException>(() => reader.ReadJson<Options>("label"));
        Assert.ThrowsExactly<InvalidDataException>(() => reader.ReadBytes("classes"));
        Assert.ThrowsExactly<InvalidDataException>(() => reader.ReadColumnInfo("raw"));
    }

    [TestMethod]
    public void JsonOfAnotherShapeIsInvalidData()
    {
        var writer = new ModelPayloadWriter(Signature, 1, Component);
        writer.WriteJson("options", new[] { 1, 2 });
        var reader = new ModelPayloadReader(writer.ToArray(), Source);
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => reader.ReadJson<Options>("options"));
        StringAssert.Contains(ex.Message, "'options'");
        StringAssert.Contains(ex.Message, Source);
    }

    [TestMethod]
    public void TruncationAtEveryCutPointIsDetected()
    {
        byte[] full = FullPayload();
        var cuts = new SortedSet<int> { 0, 1, 7, 8, 11, 12, 19, 20, 27, 28, 31, 32, 40, 60, full.Length / 4, full.Length / 2, full.Length - 33, full.Length - 32, full.Length - 2, full.Length - 1 };
        var random = new Random(7);
        while (cuts.Count < 24)
            cuts.Add(random.Next(1, full.Length));
        foreach (int cut in cuts)
        {
            var ex = Assert.ThrowsExactly<InvalidDataException>(() => new ModelPayloadReader(full.AsMemory(0, cut), Source), $"cut at {cut}");
            StringAssert.Contains(ex.Message, Source, $"cut at {cut}");
            if (cut >= 8)
                StringAssert.Contains(ex.Message, "truncated", $"cut at {cut}: {ex.Message}");
        }
    }

    [TestMethod]
    public void FlippedByteAnywhereIsDetected()
    {
        byte[] full = FullPayload();
        // Every byte of the header and table region, then a stride through data and checksum.
        var positions = Enumerable.Range(0, 64).Concat(Enumerable.Range(64, full.Length - 64).Where(i => i % 7 == 0)).Append(full.Length - 1);
        foreach (int position in positions)
        {
            byte[] copy = (byte[])full.Clone();
            copy[position] ^= 0x10;
            var ex = Assert.ThrowsExactly<InvalidDataException>(() => new ModelPayloadReader(copy, Source), $"flip at {position}");
            StringAssert.Contains(ex.Message, Source);
        }
    }

    [TestMethod]
    public void FlippedDataByteReportsChecksum()
    {
        byte[] full = FullPayload();
        full[full.Length / 2] ^= 0x01;
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => new ModelPayloadReader(full, Source, Component));
        StringAssert.Contains(ex.Message, "corrupted");
        StringAssert.Contains(ex.Message, "checksum");
        StringAssert.Contains(ex.Message, Component);
    }

    [TestMethod]
    public void TrailingBytesAreDetected()
    {
        byte[] full = [.. FullPayload(), 0, 0];
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => new ModelPayloadReader(full, Source));
        StringAssert.Contains(ex.Message, "2 unexpected bytes");
    }

    [TestMethod]
    public void ForeignPngIsRejectedNamingSourceAndComponent()
    {
        byte[] png = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, (byte)'I', (byte)'H', (byte)'D', (byte)'R', 0, 0, 0, 1];
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => new ModelPayloadReader(png, "picture.png", "Mlp"));
        StringAssert.Contains(ex.Message, "'picture.png'");
        StringAssert.Contains(ex.Message, "'Mlp'");
        StringAssert.Contains(ex.Message, "PNG image");
        StringAssert.Contains(ex.Message, "ALZPAYLD");
    }

    [TestMethod]
    public void ForeignMlNetZipIsRejectedNamingSourceAndComponent()
    {
        var ml = new MLContext(seed: 1);
        using var stream = new MemoryStream();
        ml.Model.Save(new TransformerChain<ITransformer>(), null, stream);
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => new ModelPayloadReader(stream.ToArray(), "model.zip", "Mlp"));
        StringAssert.Contains(ex.Message, "'model.zip'");
        StringAssert.Contains(ex.Message, "'Mlp'");
        StringAssert.Contains(ex.Message, "zip archive");
    }

    [TestMethod]
    public void EmptyInputIsRejected()
    {
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => new ModelPayloadReader(Array.Empty<byte>(), Source));
        StringAssert.Contains(ex.Message, "empty");
        StringAssert.Contains(ex.Message, Source);
    }

    [TestMethod]
    public void NewerFormatVersionIsRejectedClearly()
    {
        byte[] full = FullPayload();
        BinaryPrimitives.WriteUInt32LittleEndian(full.AsSpan(8), PayloadFormat.FormatVersion + 1);
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => new ModelPayloadReader(full, Source));
        StringAssert.Contains(ex.Message, "format 2");
        StringAssert.Contains(ex.Message, "Update Allauzen.ML");
    }

    [TestMethod]
    public void ExpectedSignatureMismatchIsRejected()
    {
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => new ModelPayloadReader(FullPayload(), Source, "Mlp", "ALZ-MLP_"));
        StringAssert.Contains(ex.Message, Component);
        StringAssert.Contains(ex.Message, Signature);
        StringAssert.Contains(ex.Message, "ALZ-MLP_");
    }

    [TestMethod]
    public void RequireVersionRejectsNewerPayloads()
    {
        var reader = new ModelPayloadReader(FullPayload(), Source);
        reader.RequireVersion(3);
        reader.RequireVersion(4);
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => reader.RequireVersion(2));
        StringAssert.Contains(ex.Message, Component);
        StringAssert.Contains(ex.Message, "version 3");
        StringAssert.Contains(ex.Message, Source);
    }

    [TestMethod]
    public void ColumnInfoRoundTripsTypesAndAnnotations()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[]
        {
            new ColumnRow { Features = [1, 2, 3], Label = "x", Flag = true, Weight = 2.5, Count = 7, Width = 1, Height = 2 },
            new ColumnRow { Features = [4, 5, 6], Label = "y", Flag = false, Weight = -1, Count = 8, Width = 3, Height = 4 },
        });
        var keyed = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label").Fit(data).Transform(data);
        var sized = ml.Transforms.Concatenate("Named", "Width", "Height").Fit(keyed).Transform(keyed);

        var writer = new ModelPayloadWriter(Signature, 1, Component);
        string[] names = ["Features", "Label", "Flag", "Weight", "Count", "LabelKey", "Named"];
        foreach (var name in names)
            writer.WriteColumnInfo(name, sized.Schema[name]);
        var reader = new ModelPayloadReader(writer.ToArray(), Source);

        var builder = new DataViewSchema.Builder();
        foreach (var name in names)
        {
            var column = reader.ReadColumnInfo(name);
            var detached = column.ToDetachedColumn();
            builder.AddColumn(detached.Name, detached.Type, detached.Annotations);
            Assert.AreEqual(sized.Schema[name].Type, detached.Type, name);
        }
        var schema = builder.ToSchema();

        var key = (KeyDataViewType)schema["LabelKey"].Type;
        Assert.AreEqual(2UL, key.Count);
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        schema["LabelKey"].GetKeyValues(ref keyValues);
        CollectionAssert.AreEqual(new[] { "x", "y" }, keyValues.DenseValues().Select(v => v.ToString()).ToArray());

        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        sized.Schema["Named"].GetSlotNames(ref slotNames);
        var expectedSlots = slotNames.DenseValues().Select(v => v.ToString()).ToArray();
        schema["Named"].GetSlotNames(ref slotNames);
        CollectionAssert.AreEqual(expectedSlots, slotNames.DenseValues().Select(v => v.ToString()).ToArray());
        CollectionAssert.AreEqual(new[] { "Width", "Height" }, expectedSlots);
        Assert.IsNull(reader.ReadColumnInfo("Features").SlotNames);
    }

    [TestMethod]
    public void ColumnInfoRejectsUnsupportedTypes()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(new[] { new ByteRow { B = 1 } });
        var writer = new ModelPayloadWriter(Signature, 1, Component);
        var ex = Assert.ThrowsExactly<NotSupportedException>(() => writer.WriteColumnInfo("b", data.Schema["B"]));
        StringAssert.Contains(ex.Message, "'B'");
    }

    public sealed class ColumnRow
    {
        [VectorType(3)]
        public float[] Features { get; set; } = [];

        public string Label { get; set; } = "";

        public bool Flag { get; set; }

        public double Weight { get; set; }

        public long Count { get; set; }

        public float Width { get; set; }

        public float Height { get; set; }
    }

    public sealed class ByteRow
    {
        public byte B { get; set; }
    }
}
