using System.Buffers.Binary;
using System.Text;
using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>Issue #14 row 5: zip entries of a composite model are bounded before and while they inflate.</summary>
[TestClass]
public sealed class ZipLimitsTests
{
    private const string PayloadEntry = "parts/001.alzpayload";

    private static byte[] SavedModel()
    {
        var ml = new MLContext(seed: 1);
        var data = PersistenceFixture.Data(ml);
        using var stream = new MemoryStream();
        AllauzenModel.Save(ml, PersistenceFixture.Model(ml, data), data.Schema, stream);
        return stream.ToArray();
    }

    private static InvalidDataException LoadFails(byte[] zip, AllauzenModelLoadOptions? options, out long allocated, string entry = PayloadEntry)
    {
        var ml = new MLContext(seed: 2);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => AllauzenModel.Load(ml, new MemoryStream(zip), out _, options ?? new AllauzenModelLoadOptions()));
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        StringAssert.Contains(ex.Message, entry);
        if (entry == PayloadEntry)
            StringAssert.Contains(ex.Message, "TestScale");
        return ex;
    }

    [TestMethod]
    public void EntryInflating64MiBFromKilobytes_IsRejectedByRatio_BeforeAllocating()
    {
        byte[] bomb = NativeBridgeTests.RewriteEntry(SavedModel(), PayloadEntry, _ => new byte[64 << 20]);
        Assert.IsLessThan(1 << 20, bomb.Length, "the bomb is small on disk");
        var ex = LoadFails(bomb, null, out long allocated);
        StringAssert.Contains(ex.Message, "MaxCompressionRatio");
        Assert.IsLessThan(16L << 20, allocated, $"allocated {allocated} bytes");
    }

    [TestMethod]
    public void EntryAboveMaxEntryBytes_IsRejected_NamingTheLimit()
    {
        var ex = LoadFails(SavedModel(), new AllauzenModelLoadOptions { MaxEntryBytes = 100 }, out _, "manifest.json");
        StringAssert.Contains(ex.Message, "MaxEntryBytes");
        StringAssert.Contains(ex.Message, "limit of 100 bytes");
    }

    [TestMethod]
    public void Declared3GiB_IsRejectedWithoutAllocating()
    {
        byte[] zip = SetDeclaredSize(SavedModel(), PayloadEntry, 0xC0000000u);
        var ex = LoadFails(zip, null, out long allocated);
        StringAssert.Contains(ex.Message, "3221225472");
        Assert.IsLessThan(16L << 20, allocated);
    }

    [TestMethod]
    public void EntryInflatingMoreThanDeclared_IsAnError_NamingTheEntry()
    {
        // System.IO.Compression stops inflating at the declared size (our reader would also refuse more), so the
        // payload arrives cut to 10 bytes and its own reader names the entry and the component.
        byte[] zip = SetDeclaredSize(SavedModel(), PayloadEntry, 10);
        var ex = LoadFails(zip, null, out _);
        StringAssert.Contains(ex.Message, "found 10");
    }

    [TestMethod]
    public void TotalAboveMaxTotalBytes_IsRejected()
    {
        var ex = Assert.ThrowsExactly<InvalidDataException>(() =>
            AllauzenModel.Load(new MLContext(), new MemoryStream(SavedModel()), out _, new AllauzenModelLoadOptions { MaxTotalBytes = 2000 }));
        StringAssert.Contains(ex.Message, "MaxTotalBytes");
        StringAssert.Contains(ex.Message, "entry '");
    }

    [TestMethod]
    public void DefaultLimits_LoadANormalModel_AndInvalidOptionsAreRejected()
    {
        var loaded = AllauzenModel.Load(new MLContext(), new MemoryStream(SavedModel()), out var schema);
        Assert.IsNotNull(loaded);
        Assert.IsNotNull(schema);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            AllauzenModel.Load(new MLContext(), new MemoryStream(SavedModel()), out _, new AllauzenModelLoadOptions { MaxEntryBytes = 0 }));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            AllauzenModel.Load(new MLContext(), new MemoryStream(SavedModel()), out _, new AllauzenModelLoadOptions { MaxCompressionRatio = double.NaN }));
    }

    /// <summary>Rewrites the uncompressed size an entry declares, in its local header and its central directory record.</summary>
    private static byte[] SetDeclaredSize(byte[] zip, string name, uint size)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        int patched = 0;
        for (int i = 0; i + 46 < zip.Length; i++)
        {
            uint sig = BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(i));
            if (sig == 0x04034b50 && Matches(zip, i + 30, BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(i + 26)), nameBytes))
            {
                BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + 22), size);
                patched++;
            }
            else if (sig == 0x02014b50 && Matches(zip, i + 46, BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(i + 28)), nameBytes))
            {
                BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(i + 24), size);
                patched++;
            }
        }
        Assert.AreEqual(2, patched, "local header and central directory record");
        return zip;
    }

    private static bool Matches(byte[] zip, int at, int length, byte[] name) =>
        length == name.Length && at + length <= zip.Length && zip.AsSpan(at, length).SequenceEqual(name);
}
