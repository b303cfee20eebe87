using Allauzen.ML.Persistence;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

[TestClass]
public sealed class AtomicFileTests
{
    [TestMethod]
    public void WritesNewFile()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("new.bin");
        AtomicFile.Write(path, s => s.Write([1, 2, 3]));
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder.Path));
    }

    [TestMethod]
    public void ReplacesExistingFile()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("model.zip");
        File.WriteAllBytes(path, new byte[1000]);
        AtomicFile.Write(path, s => s.Write([9]));
        CollectionAssert.AreEqual(new byte[] { 9 }, File.ReadAllBytes(path));
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder.Path));
    }

    [TestMethod]
    public void FailedWriteLeavesOldFileIntactAndNoTemporary()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("model.zip");
        byte[] old = [10, 20, 30, 40];
        File.WriteAllBytes(path, old);

        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[193]);
            throw new InvalidOperationException("writer failed");
        }));

        Assert.AreEqual("writer failed", ex.Message);
        CollectionAssert.AreEqual(old, File.ReadAllBytes(path));
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder.Path));
    }

    [TestMethod]
    public void FailedFirstWriteCreatesNothing()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("never.zip");
        Assert.ThrowsExactly<IOException>(() => AtomicFile.Write(path, _ => throw new IOException("disk full")));
        Assert.IsEmpty(Directory.GetFiles(folder.Path));
    }
}
