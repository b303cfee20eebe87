using System.IO.Compression;
using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

[TestClass]
public sealed class NativeBridgeTests
{
    private static readonly string[] OutputColumns = ["Features", "Scaled", "All"];

    [TestMethod]
    public void SelfTestPassesOnThisMlNet()
    {
        Assert.IsNull(NativeBridge.SelfTest());
        Assert.IsNull(NativeBridge.SelfTest(), "cached result");
    }

    [TestMethod]
    public void ModelSaveThenLoadInNewContextIsBitIdentical()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("model.zip");

        var ml = new MLContext(seed: 1).UseAllauzen();
        var data = PersistenceFixture.Data(ml);
        var model = PersistenceFixture.Model(ml, data);
        var expected = model.Transform(data);
        ml.Model.Save(model, data.Schema, path);

        var ml2 = new MLContext(seed: 2).UseAllauzen();
        var loaded = ml2.Model.Load(path, out var schema);

        Assert.IsNotNull(schema);
        CollectionAssert.AreEqual(data.Schema.Select(c => c.Name).ToArray(), schema.Select(c => c.Name).ToArray());
        var chain = (TransformerChain<ITransformer>)loaded;
        var parts = chain.ToArray();
        Assert.HasCount(3, parts);
        var scale = (TestScaleTransformer)parts[1];
        var original = (TestScaleTransformer)model.ToArray()[1];
        Assert.AreEqual(BitConverter.SingleToInt32Bits(original.A), BitConverter.SingleToInt32Bits(scale.A));

        var dataInNewContext = PersistenceFixture.Data(ml2);
        PersistenceFixture.AssertBitIdentical(expected, loaded.Transform(dataInNewContext), OutputColumns);
    }

    [TestMethod]
    public void SingleTransformerRoundTripsWithoutChain()
    {
        var ml = new MLContext(seed: 1).UseAllauzen();
        var data = PersistenceFixture.Data(ml);
        TestScaleTransformer.EnsureRegistered();
        var scale = TestScaleTransformer.Fit(data);
        using var stream = new MemoryStream();
        ml.Model.Save(scale, data.Schema, stream);
        stream.Position = 0;

        var ml2 = new MLContext(seed: 2).UseAllauzen();
        var loaded = ml2.Model.Load(stream, out _);
        Assert.IsInstanceOfType<TestScaleTransformer>(loaded);
        PersistenceFixture.AssertBitIdentical(scale.Transform(data), loaded.Transform(data), "Scaled");
    }

    [TestMethod]
    public void SavedModelCanBeSavedAgainAfterLoading()
    {
        var ml = new MLContext(seed: 1).UseAllauzen();
        var data = PersistenceFixture.Data(ml);
        var model = PersistenceFixture.Model(ml, data);
        using var first = new MemoryStream();
        ml.Model.Save(model, data.Schema, first);
        first.Position = 0;
        var loaded = ml.Model.Load(first, out var schema);

        using var second = new MemoryStream();
        ml.Model.Save(loaded, schema, second);
        second.Position = 0;
        var reloaded = new MLContext(seed: 3).UseAllauzen().Model.Load(second, out _);
        PersistenceFixture.AssertBitIdentical(model.Transform(data), reloaded.Transform(data), OutputColumns);
    }

    [TestMethod]
    public void LoadWithoutUseAllauzenFails()
    {
        var ml = new MLContext(seed: 1).UseAllauzen();
        var data = PersistenceFixture.Data(ml);
        var model = PersistenceFixture.Model(ml, data);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        stream.Position = 0;

        var fresh = new MLContext(seed: 2);
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => fresh.Model.Load(stream, out _));
        string messages = PersistenceFixture.AllMessages(ex);
        StringAssert.Contains(messages, "Couldn't load model: 'TransformerChain\\Transform_001'".Replace('\\', Path.DirectorySeparatorChar));
    }

    [TestMethod]
    public void UseAllauzenIsIdempotent()
    {
        TestScaleTransformer.EnsureRegistered();
        var ml = new MLContext(seed: 1);
        Assert.AreSame(ml, ml.UseAllauzen());
        Assert.AreSame(ml, ml.UseAllauzen());
        NativeBridge.Register(ml);

        var data = PersistenceFixture.Data(ml);
        var model = PersistenceFixture.Model(ml, data);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        stream.Position = 0;
        Assert.IsNotNull(ml.Model.Load(stream, out _));
    }

    [TestMethod]
    public void LoaderRegisteredAfterUseAllauzenIsPickedUpByNextCall()
    {
        var ml = new MLContext(seed: 1).UseAllauzen();
        const string signature = "ALZTLATE";
        AllauzenLoaders.Register(signature, "LateComponent", typeof(LateTransformer), LateTransformer.Load);
        ml.UseAllauzen();

        using var stream = new MemoryStream();
        ml.Model.Save(new LateTransformer(), null, stream);
        stream.Position = 0;
        Assert.IsInstanceOfType<LateTransformer>(ml.Model.Load(stream, out _));
    }

    [TestMethod]
    public void CorruptedPayloadInsideMlNetZipNamesComponentAndEntry()
    {
        var ml = new MLContext(seed: 1).UseAllauzen();
        var data = PersistenceFixture.Data(ml);
        var model = PersistenceFixture.Model(ml, data);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);

        // Rewrite the zip with one byte of our payload flipped (zip CRCs are recomputed, so only
        // the payload's own checksum can catch it).
        byte[] corrupted = RewriteEntry(stream.ToArray(), "Transform_001", bytes =>
        {
            int payload = bytes.AsSpan().IndexOf("ALZPAYLD"u8);
            Assert.IsGreaterThanOrEqualTo(0, payload, "payload magic not found");
            bytes[payload + 100] ^= 0x01;
            return bytes;
        });

        var ml2 = new MLContext(seed: 2).UseAllauzen();
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml2.Model.Load(new MemoryStream(corrupted), out _));
        var inner = PersistenceFixture.Innermost(ex);
        Assert.IsInstanceOfType<InvalidDataException>(inner, PersistenceFixture.AllMessages(ex));
        StringAssert.Contains(inner.Message, TestScaleTransformer.Name);
        StringAssert.Contains(inner.Message, "'TransformerChain/Transform_001/Model.key'");
        StringAssert.Contains(inner.Message, "checksum");
    }

    [TestMethod]
    public void SaveOfUnregisteredComponentThrowsBeforeWriting()
    {
        var ml = new MLContext(seed: 1).UseAllauzen();
        using var stream = new MemoryStream();
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.Save(new UnregisteredTransformer(), null, stream));
        StringAssert.Contains(ex.Message, "Unregistered");
        StringAssert.Contains(ex.Message, "ALZTUNRG");
    }

    internal static byte[] RewriteEntry(byte[] zipBytes, string entryPathPart, Func<byte[], byte[]> change)
    {
        using var input = new ZipArchive(new MemoryStream(zipBytes), ZipArchiveMode.Read);
        using var output = new MemoryStream();
        bool changed = false;
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in input.Entries)
            {
                using var source = entry.Open();
                using var buffer = new MemoryStream();
                source.CopyTo(buffer);
                byte[] bytes = buffer.ToArray();
                if (entry.FullName.Replace('\\', '/').Contains(entryPathPart + "/Model.key") || entry.FullName == entryPathPart)
                {
                    bytes = change(bytes);
                    changed = true;
                }
                using var target = zip.CreateEntry(entry.FullName).Open();
                target.Write(bytes);
            }
        }
        Assert.IsTrue(changed, $"no entry matching '{entryPathPart}' in [{string.Join(", ", input.Entries.Select(e => e.FullName))}]");
        return output.ToArray();
    }

    /// <summary>An identity transformer registered late, after UseAllauzen already ran on a context.</summary>
    internal sealed class LateTransformer : IAllauzenTransformer
    {
        public string ComponentName => "LateComponent";

        public string LoaderSignature => "ALZTLATE";

        public int PayloadVersion => 1;

        public bool IsRowToRowMapper => false;

        public static ITransformer Load(Microsoft.ML.Runtime.IHostEnvironment env, ModelPayloadReader payload) => new LateTransformer();

        public void SavePayload(ModelPayloadWriter writer) => writer.WriteString("note", "late");

        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;

        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException();

        public IDataView Transform(IDataView input) => input;

        void ICanSaveModel.Save(ModelSaveContext ctx) => NativeBridge.Save(ctx, this);
    }

    /// <summary>A component whose loader is never registered.</summary>
    internal sealed class UnregisteredTransformer : IAllauzenTransformer
    {
        public string ComponentName => "Unregistered";

        public string LoaderSignature => "ALZTUNRG";

        public int PayloadVersion => 1;

        public bool IsRowToRowMapper => false;

        public void SavePayload(ModelPayloadWriter writer) => writer.WriteString("note", "x");

        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;

        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException();

        public IDataView Transform(IDataView input) => input;

        void ICanSaveModel.Save(ModelSaveContext ctx) => NativeBridge.Save(ctx, this);
    }
}
