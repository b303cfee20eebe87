using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;

namespace Allauzen.ML.Tests.Torch;

/// <summary>Issue #14 row 9: the temporary-folder cache of the patched library must be ours and private.</summary>
[TestClass]
public sealed class CacheDirectoryOwnerTests
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    [TestMethod]
    public void DirectoryOfAnotherUser_IsRefused_NamingOwner()
    {
        var status = new UnixFileStatus(UnixFileKind.Directory, OwnerId: 1234, Private, 0);
        var e = Assert.ThrowsExactly<IOException>(() => PatchedLibraryCache.CheckPrivateDirectory("/tmp/allauzen-ml-x", status, euid: 1000));
        StringAssert.Contains(e.Message, "/tmp/allauzen-ml-x");
        StringAssert.Contains(e.Message, "uid 1234");
        StringAssert.Contains(e.Message, "uid 1000");
    }

    [TestMethod]
    public void DirectoryWritableByOthersOrGroup_IsRefused()
    {
        var others = new UnixFileStatus(UnixFileKind.Directory, 1000, Private | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute, 0);
        StringAssert.Contains(Assert.ThrowsExactly<IOException>(() => PatchedLibraryCache.CheckPrivateDirectory("d", others, 1000)).Message, "writable by others");
        var group = new UnixFileStatus(UnixFileKind.Directory, 1000, Private | UnixFileMode.GroupWrite, 0);
        StringAssert.Contains(Assert.ThrowsExactly<IOException>(() => PatchedLibraryCache.CheckPrivateDirectory("d", group, 1000)).Message, "its group");
        PatchedLibraryCache.CheckPrivateDirectory("d", new UnixFileStatus(UnixFileKind.Directory, 1000, Private, 0), 1000);
    }

    [TestMethod]
    public void EnsurePrivateDirectory_OnRealFolders()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Inconclusive("Linux ownership checks");
            return;
        }
        string root = Path.Combine(Path.GetTempPath(), "alz-cache-owner-" + Guid.NewGuid().ToString("N"));
        try
        {
            string fresh = Path.Combine(root, "fresh");
            Directory.CreateDirectory(root);
            PatchedLibraryCache.EnsurePrivateDirectory(fresh);
            Assert.AreEqual(Private, File.GetUnixFileMode(fresh));

            string open = Path.Combine(root, "open");
            Directory.CreateDirectory(open);
            File.SetUnixFileMode(open, Private | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute | UnixFileMode.OtherRead);
            var e = Assert.ThrowsExactly<IOException>(() => PatchedLibraryCache.EnsurePrivateDirectory(open));
            StringAssert.Contains(e.Message, "writable by others");
            Assert.AreNotEqual(Private, File.GetUnixFileMode(open), "a refused folder is not chmod-ed");

            if (UnixFile.EffectiveUserId() == 0)
            {
                // As root the planted folder of another user would be chmod-able; it must still be refused.
                string planted = Path.Combine(root, "planted");
                Directory.CreateDirectory(planted);
                File.SetUnixFileMode(planted, Private);
                var chown = System.Diagnostics.Process.Start("chown", ["65534", planted]);
                chown.WaitForExit();
                if (chown.ExitCode == 0)
                    StringAssert.Contains(Assert.ThrowsExactly<IOException>(() => PatchedLibraryCache.EnsurePrivateDirectory(planted)).Message, "uid 65534");
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [TestMethod]
    public void UnixFileStat_SeesKindOwnerAndSize()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Inconclusive("statx");
            return;
        }
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, new byte[123]);
            var st = UnixFile.Stat(file)!.Value;
            Assert.AreEqual(UnixFileKind.Regular, st.Kind);
            Assert.AreEqual(123L, st.Size);
            Assert.AreEqual(UnixFile.EffectiveUserId(), st.OwnerId);
            Assert.AreEqual(UnixFileKind.CharacterDevice, UnixFile.Stat("/dev/zero")!.Value.Kind);
            Assert.AreEqual(UnixFileKind.Directory, UnixFile.Stat(Path.GetTempPath())!.Value.Kind);
            Assert.IsNull(UnixFile.Stat(file + ".missing"));
        }
        finally
        {
            File.Delete(file);
        }
    }
}
