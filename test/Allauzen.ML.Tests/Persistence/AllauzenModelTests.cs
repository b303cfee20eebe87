using System.IO.Compression;
using System.Text.Json.Nodes;
using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

[TestClass]
public sealed class AllauzenModelTests
{
    private static readonly string[] OutputColumns = ["Features", "Scaled", "All"];

    [TestMethod]
    public void CompositeRoundTripIsBitIdentical()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("model.alz.zip");

        var ml = new MLContext(seed: 1);
        var data = PersistenceFixture.Data(ml);
        var model = PersistenceFixture.Model(ml, data);
        AllauzenModel.Save(ml, model, data.Schema, path);
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder.Path), "no temporary file left");

        // No UseAllauzen: the composite route uses public API only.
        var ml2 = new MLContext(seed: 2);
        var loaded = AllauzenModel.Load(ml2, path, out var schema);

        Assert.IsNotNull(schema);
        CollectionAssert.AreEqual(data.Schema.Select(c => c.Name).ToArray(), schema.Select(c => c.Name).ToArray());
        Assert.AreEqual(data.Schema["Features"].Type, schema["Features"].Type);
        var parts = ((TransformerChain<ITransformer>)loaded).ToArray();
        Assert.HasCount(3, parts);
        Assert.IsInstanceOfType<TestScaleTransformer>(parts[1]);
        PersistenceFixture.AssertBitIdentical(model.Transform(data), loaded.Transform(PersistenceFixture.Data(ml2)), OutputColumns);
    }

    [TestMethod]
    public void ManifestListsPartsInOrder()
    {
        var ml = new MLContext(seed: 1);
        var data = PersistenceFixture.Data(ml);
        // Nested chains are flattened; consecutive native transformers share one part.
        var model = PersistenceFixture.Model(ml, data);
        var key = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label").Fit(model.Transform(data));
        var nested = new TransformerChain<ITransformer>(model, new TransformerChain<ITransformer>(key));

        using var stream = new MemoryStream();
        AllauzenModel.Save(ml, nested, data.Schema, stream);
        stream.Position = 0;
        using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        using var manifestStream = zip.GetEntry("manifest.json")!.Open();
        var manifest = JsonNode.Parse(manifestStream)!;
        var parts = manifest["parts"]!.AsArray();
        Assert.HasCount(3, parts);
        Assert.AreEqual("MlNet", (string?)parts[0]!["kind"]);
        Assert.AreEqual(1, (int)parts[0]!["transformers"]!);
        Assert.AreEqual("Allauzen", (string?)parts[1]!["kind"]);
        Assert.AreEqual(TestScaleTransformer.Signature, (string?)parts[1]!["signature"]);
        Assert.AreEqual(TestScaleTransformer.Name, (string?)parts[1]!["component"]);
        Assert.AreEqual("MlNet", (string?)parts[2]!["kind"]);
        Assert.AreEqual(2, (int)parts[2]!["transformers"]!);
        Assert.IsNotNull(zip.GetEntry((string)manifest["inputSchema"]!));

        stream.Position = 0;
        var loaded = AllauzenModel.Load(ml, stream, out _);
        Assert.HasCount(4, ((TransformerChain<ITransformer>)loaded).ToArray());
        PersistenceFixture.AssertBitIdentical(nested.Transform(data), loaded.Transform(data), OutputColumns);
    }

    [TestMethod]
    public void NullSchemaAndEmptyModelRoundTrip()
    {
        var ml = new MLContext(seed: 1);
        using var stream = new MemoryStream();
        AllauzenModel.Save(ml, new TransformerChain<ITransformer>(), null, stream);
        stream.Position = 0;
        var loaded = AllauzenModel.Load(ml, stream, out var schema);
        Assert.IsNull(schema);
        Assert.IsEmpty(((TransformerChain<ITransformer>)loaded).ToArray());
    }

    [TestMethod]
    public void MlNetZipIsRejectedWithAHint()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("native.zip");
        var ml = new MLContext(seed: 1);
        var data = PersistenceFixture.Data(ml);
        ml.Model.Save(ml.Transforms.NormalizeMinMax("Features").Fit(data), data.Schema, path);

        var ex = Assert.ThrowsExactly<InvalidDataException>(() => AllauzenModel.Load(ml, path, out _));
        StringAssert.Contains(ex.Message, path);
        StringAssert.Contains(ex.Message, "ML.NET model");
        StringAssert.Contains(ex.Message, "ml.Model.Load");
    }

    [TestMethod]
    public void PngIsRejectedNamingTheFile()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("picture.png");
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, (byte)'I', (byte)'H', (byte)'D', (byte)'R']);
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => AllauzenModel.Load(new MLContext(seed: 1), path, out _));
        StringAssert.Contains(ex.Message, path);
        StringAssert.Contains(ex.Message, "not an Allauzen.ML composite model");
    }

    [TestMethod]
    public void ForeignPayloadEntryNamesFileEntryAndComponent()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("model.zip");
        var ml = new MLContext(seed: 1);
        var data = PersistenceFixture.Data(ml);
        AllauzenModel.Save(ml, PersistenceFixture.Model(ml, data), data.Schema, path);

        byte[] png = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
        File.WriteAllBytes(path, NativeBridgeTests.RewriteEntry(File.ReadAllBytes(path), "parts/001.alzpayload", _ => png));

        var ex = Assert.ThrowsExactly<InvalidDataException>(() => AllauzenModel.Load(ml, path, out _));
        StringAssert.Contains(ex.Message, path);
        StringAssert.Contains(ex.Message, "parts/001.alzpayload");
        StringAssert.Contains(ex.Message, TestScaleTransformer.Name);
        StringAssert.Contains(ex.Message, "PNG image");
    }

    [TestMethod]
    public void TruncatedFileIsRejectedNamingTheFile()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("model.zip");
        var ml = new MLContext(seed: 1);
        var data = PersistenceFixture.Data(ml);
        AllauzenModel.Save(ml, PersistenceFixture.Model(ml, data), data.Schema, path);
        byte[] full = File.ReadAllBytes(path);

        foreach (int cut in new[] { 0, 10, full.Length / 3, full.Length / 2, full.Length - 30, full.Length - 1 })
        {
            File.WriteAllBytes(path, full[..cut]);
            var ex = Assert.Throws<Exception>(() => AllauzenModel.Load(ml, path, out _), $"cut at {cut}");
            Assert.IsInstanceOfType<InvalidDataException>(ex, $"cut at {cut}: {PersistenceFixture.AllMessages(ex)}");
            StringAssert.Contains(ex.Message, path, $"cut at {cut}");
        }
    }

    [TestMethod]
    public void FailedSaveLeavesPreviousFileIntact()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("model.zip");
        byte[] old = [1, 2, 3, 4, 5];
        File.WriteAllBytes(path, old);

        var ml = new MLContext(seed: 1);
        var model = new TransformerChain<ITransformer>(new NativeBridgeTests.UnregisteredTransformer());
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => AllauzenModel.Save(ml, model, null, path));
        StringAssert.Contains(ex.Message, "Unregistered");
        CollectionAssert.AreEqual(old, File.ReadAllBytes(path));
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder.Path));
    }

    [TestMethod]
    public void NewerManifestVersionIsRejected()
    {
        var ml = new MLContext(seed: 1);
        using var stream = new MemoryStream();
        AllauzenModel.Save(ml, new TransformerChain<ITransformer>(), null, stream);
        byte[] changed = NativeBridgeTests.RewriteEntry(stream.ToArray(), "manifest.json", bytes =>
        {
            var node = JsonNode.Parse(bytes)!;
            node["formatVersion"] = 99;
            return System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
        });
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => AllauzenModel.Load(ml, new MemoryStream(changed), out _));
        StringAssert.Contains(ex.Message, "format version 99");
    }
}
