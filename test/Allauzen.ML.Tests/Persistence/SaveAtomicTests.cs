using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>Issue #14 rows 7 and 8: <c>ml.Model.SaveAtomic</c> and <see cref="AtomicFile"/> with links, modes and failures.</summary>
[TestClass]
public sealed class SaveAtomicTests
{
    private static readonly string[] OutputColumns = ["Features", "Scaled", "All"];

    [TestMethod]
    public void SaveAtomic_RoundTripsLikeSave()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("model.zip");
        var ml = new MLContext(seed: 1).UseAllauzen();
        var data = PersistenceFixture.Data(ml);
        var model = PersistenceFixture.Model(ml, data);
        ml.Model.SaveAtomic(model, data.Schema, path);
        var loaded = new MLContext(seed: 2).UseAllauzen().Model.Load(path, out var schema);
        Assert.IsNotNull(schema);
        PersistenceFixture.AssertBitIdentical(model.Transform(data), loaded.Transform(data), OutputColumns);
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder.Path));
    }

    [TestMethod]
    public void SaveAtomic_ComponentSaveThrows_PreviousFileByteIdenticalAndLoadable()
    {
        using var folder = new PersistenceFixture.TempFolder();
        string path = folder.File("model.zip");
        var ml = new MLContext(seed: 1).UseAllauzen();
        var data = PersistenceFixture.Data(ml);
        var good = PersistenceFixture.Model(ml, data);
        ml.Model.SaveAtomic(good, data.Schema, path);
        byte[] before = File.ReadAllBytes(path);

        // The native parts before the failing component are written to the zip before its save throws.
        var bad = new TransformerChain<ITransformer>([.. good, new NativeBridgeTests.UnregisteredTransformer()]);
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.SaveAtomic(bad, data.Schema, path));
        StringAssert.Contains(ex.Message, "Unregistered");

        CollectionAssert.AreEqual(before, File.ReadAllBytes(path));
        CollectionAssert.AreEqual(new[] { path }, Directory.GetFiles(folder.Path), "no temporary file is left");
        var loaded = new MLContext(seed: 2).UseAllauzen().Model.Load(path, out _);
        PersistenceFixture.AssertBitIdentical(good.Transform(data), loaded.Transform(data), OutputColumns);
    }

    [TestMethod]
    public void SaveAtomic_ThroughSymlink_KeepsLinkAndTargetMode()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Inconclusive("symbolic links and Unix modes");
            return;
        }

        using var folder = new PersistenceFixture.TempFolder();
        Directory.CreateDirectory(folder.File("store"));
        string target = folder.File(Path.Combine("store", "real.zip"));
        File.WriteAllBytes(target, [1, 2, 3]);
        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
        File.SetUnixFileMode(target, mode);
        string link = folder.File("model.zip");
        File.CreateSymbolicLink(link, target);

        var ml = new MLContext(seed: 1).UseAllauzen();
        var data = PersistenceFixture.Data(ml);
        var model = PersistenceFixture.Model(ml, data);
        ml.Model.SaveAtomic(model, data.Schema, link);

        Assert.IsNotNull(new FileInfo(link).LinkTarget, "the link is still a link");
        Assert.AreEqual(target, new FileInfo(link).ResolveLinkTarget(true)!.FullName);
        Assert.AreEqual(mode, File.GetUnixFileMode(target), "the target keeps its mode (0640)");
        Assert.IsGreaterThan(3L, new FileInfo(target).Length);
        CollectionAssert.AreEqual(new[] { target }, Directory.GetFiles(folder.File("store")), "the temporary file was next to the target");
        var loaded = new MLContext(seed: 2).UseAllauzen().Model.Load(link, out _);
        PersistenceFixture.AssertBitIdentical(model.Transform(data), loaded.Transform(data), OutputColumns);
    }

    [TestMethod]
    public void AtomicFile_DanglingSymlink_CreatesTheTarget()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Inconclusive("symbolic links");
            return;
        }

        using var folder = new PersistenceFixture.TempFolder();
        string target = folder.File("later.bin");
        string link = folder.File("link.bin");
        File.CreateSymbolicLink(link, target);
        AtomicFile.Write(link, s => s.Write([7, 8]));
        Assert.IsNotNull(new FileInfo(link).LinkTarget);
        CollectionAssert.AreEqual(new byte[] { 7, 8 }, File.ReadAllBytes(target));
    }

    [TestMethod]
    public void AtomicFile_FailedWriteThroughSymlink_LeavesTargetIntact()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Inconclusive("symbolic links");
            return;
        }

        using var folder = new PersistenceFixture.TempFolder();
        string target = folder.File("real.bin");
        File.WriteAllBytes(target, [4, 5, 6]);
        string link = folder.File("link.bin");
        File.CreateSymbolicLink(link, target);
        Assert.ThrowsExactly<IOException>(() => AtomicFile.Write(link, s =>
        {
            s.Write(new byte[100]);
            throw new IOException("No space left on device");
        }));
        CollectionAssert.AreEqual(new byte[] { 4, 5, 6 }, File.ReadAllBytes(target));
        Assert.IsNotNull(new FileInfo(link).LinkTarget);
        Assert.HasCount(2, Directory.GetFileSystemEntries(folder.Path));
    }

    [TestMethod]
    public void FsyncDirectory_OnExistingFolder_Succeeds_AndMissingFolderIsAnIOException()
    {
        using var folder = new PersistenceFixture.TempFolder();
        UnixFile.FsyncDirectory(folder.Path);
        if (OperatingSystem.IsLinux())
        {
            var e = Assert.ThrowsExactly<IOException>(() => UnixFile.FsyncDirectory(folder.File("missing")));
            StringAssert.Contains(e.Message, "missing");
        }
    }
}
