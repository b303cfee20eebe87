using System.Buffers.Binary;
using System.Text;
using Allauzen.ML.Torch;
using TorchSharp;

namespace Allauzen.ML.Tests.Torch;

[TestClass]
public sealed class TorchRuntimeTests
{
    private const string Glibcxx332 = "GLIBCXX_3.4.32";

    [TestMethod]
    public void EnsureInitialized_ThenSvdvalsOfKnownMatrix_ReturnsConstructedSingularValues()
    {
        TorchRuntime.EnsureInitialized();

        // A = U * diag(5, 3, 1) * V^T with U, V orthogonal rotations: its singular values are 5, 3, 1.
        var u = Multiply(RotationZ(Math.PI / 6), RotationX(Math.PI / 4));
        var v = Multiply(RotationY(Math.PI / 3), RotationZ(-Math.PI / 5));
        var s = new double[,] { { 5, 0, 0 }, { 0, 3, 0 }, { 0, 0, 1 } };
        var a = Multiply(Multiply(u, s), Transpose(v));
        var flat = new double[9];
        for (var i = 0; i < 3; i++)
        {
            for (var j = 0; j < 3; j++)
                flat[(i * 3) + j] = a[i, j];
        }

        using var input = torch.tensor(flat, [3, 3], dtype: torch.float64);
        using var singular = torch.linalg.svdvals(input);
        var values = singular.data<double>().ToArray();

        Assert.HasCount(3, values);
        Assert.AreEqual(5.0, values[0], 1e-10);
        Assert.AreEqual(3.0, values[1], 1e-10);
        Assert.AreEqual(1.0, values[2], 1e-10);
    }

    [TestMethod]
    public void EnsureInitialized_IsIdempotentAndThreadSafe()
    {
        var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        var sums = new double[8];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            try
            {
                TorchRuntime.EnsureInitialized();
                TorchRuntime.EnsureInitialized();
                using var t = torch.full(4, i + 1.0, dtype: torch.float64);
                using var sum = t.sum();
                sums[i] = sum.item<double>();
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        });

        Assert.IsEmpty(errors, string.Join(Environment.NewLine, errors));
        for (var i = 0; i < 8; i++)
            Assert.AreEqual(4.0 * (i + 1), sums[i]);
        Assert.IsTrue(TorchRuntime.IsInitialized);

        var patched = TorchRuntime.PatchedLibraryPath;
        TorchRuntime.EnsureInitialized();
        Assert.AreEqual(patched, TorchRuntime.PatchedLibraryPath);
    }

    [TestMethod]
    [OSCondition(OperatingSystems.Linux)] // the libstdc++ workaround is Linux-only
    public void EnsureInitialized_PatchesExactlyWhenSystemLibstdcxxLacksGlibcxx332()
    {
        RequireLinux();
        TorchRuntime.EnsureInitialized();

        // libLibTorchSharp.so is loaded now, so libstdc++ is mapped into the process.
        var libstdcxx = File.ReadLines("/proc/self/maps")
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(parts => parts.Length >= 6 && Path.GetFileName(parts[5]).StartsWith("libstdc++.so", StringComparison.Ordinal))
            .Select(parts => parts[5])
            .FirstOrDefault();
        Assert.IsNotNull(libstdcxx, "libstdc++ is not mapped into the test process");
        var systemHasVersion = ContainsAscii(File.ReadAllBytes(libstdcxx), Glibcxx332 + "\0");

        var patched = TorchRuntime.PatchedLibraryPath;
        if (systemHasVersion)
        {
            Assert.IsNull(patched, $"{libstdcxx} provides {Glibcxx332}; no patch should have been needed");
            return;
        }

        Assert.IsNotNull(patched, $"{libstdcxx} lacks {Glibcxx332}; the backend must have been loaded from a patched copy");
        Assert.IsTrue(File.Exists(patched), patched);
        var original = TorchRuntime.FindNativeLibrary();
        Assert.IsNotNull(original);
        Assert.AreNotEqual(Path.GetDirectoryName(original), Path.GetDirectoryName(patched), "the copy must not be written next to the original");
        var originalBytes = File.ReadAllBytes(original);
        Assert.AreEqual(PatchedLibraryCache.GetFileName(originalBytes), Path.GetFileName(patched));

        var requirement = ElfVersionPatcher.ReadVersionRequirements(File.ReadAllBytes(patched)).Single(r => r.Name == Glibcxx332);
        Assert.IsTrue(requirement.IsWeak);
        Assert.AreEqual("libstdc++.so.6", requirement.File);
    }

    [TestMethod]
    public void SetSeed_MakesRandomNumbersReproducible()
    {
        TorchRuntime.SetSeed(1234);
        using var first = torch.rand(5, dtype: torch.float64);
        TorchRuntime.SetSeed(1234);
        using var second = torch.rand(5, dtype: torch.float64);
        TorchRuntime.SetSeed(4321);
        using var third = torch.rand(5, dtype: torch.float64);

        CollectionAssert.AreEqual(first.data<double>().ToArray(), second.data<double>().ToArray());
        CollectionAssert.AreNotEqual(first.data<double>().ToArray(), third.data<double>().ToArray());
    }

    [TestMethod]
    public void SetThreads_SetsIntraOpThreadsAndRejectsNegative()
    {
        TorchRuntime.EnsureInitialized();
        var previous = torch.get_num_threads();
        try
        {
            TorchRuntime.SetThreads(2);
            Assert.AreEqual(2, torch.get_num_threads());
            TorchRuntime.SetThreads(0);
            Assert.AreEqual(2, torch.get_num_threads(), "0 keeps the current setting");
        }
        finally
        {
            torch.set_num_threads(previous);
        }

        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => TorchRuntime.SetThreads(-1));
    }

    [TestMethod]
    [OSCondition(OperatingSystems.Linux)] // the libstdc++ workaround is Linux-only
    public void Patcher_RealLibrary_RequiresGlibcxx332OnlyForIosBaseLibraryInit()
    {
        var bytes = File.ReadAllBytes(RequireOriginalLibrary());

        var versions = ElfVersionPatcher.ListRequiredVersions(bytes);
        CollectionAssert.Contains(versions.ToList(), Glibcxx332);
        CollectionAssert.Contains(versions.ToList(), "GLIBCXX_3.4.30");

        var symbols = ElfVersionPatcher.ListSymbolsRequiringVersion(bytes, Glibcxx332);
        CollectionAssert.AreEqual(new[] { "_ZSt21ios_base_library_initv" }, symbols.ToArray());
        Assert.IsEmpty(ElfVersionPatcher.ListSymbolsRequiringVersion(bytes, "GLIBCXX_9.9.99"));
    }

    [TestMethod]
    [OSCondition(OperatingSystems.Linux)] // the libstdc++ workaround is Linux-only
    public void Patcher_TryMakeWeak_ChangesOnlyTheTwoFlagBytesOfThatEntry()
    {
        var original = File.ReadAllBytes(RequireOriginalLibrary());
        var pristine = (byte[])original.Clone();
        var before = ElfVersionPatcher.ReadVersionRequirements(original);
        var target = before.Single(r => r.Name == Glibcxx332);
        Assert.IsFalse(target.IsWeak);

        Assert.IsTrue(ElfVersionPatcher.TryMakeWeak(original, Glibcxx332, out var patched, out var error), error);
        Assert.IsNull(error);
        CollectionAssert.AreEqual(pristine, original, "the input must not be modified");
        Assert.HasCount(original.Length, patched);

        var differing = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToArray();
        Assert.IsNotEmpty(differing);
        Assert.IsTrue(differing.All(i => i == target.FlagsOffset || i == target.FlagsOffset + 1), $"unexpected changed offsets: {string.Join(", ", differing)}");
        Assert.AreEqual(
            (ushort)(target.Flags | 0x2),
            BinaryPrimitives.ReadUInt16LittleEndian(patched.AsSpan((int)target.FlagsOffset, 2)));

        var after = ElfVersionPatcher.ReadVersionRequirements(patched);
        Assert.HasCount(before.Count, after);
        for (var i = 0; i < before.Count; i++)
        {
            Assert.AreEqual(before[i].Name, after[i].Name);
            Assert.AreEqual(before[i].File, after[i].File);
            Assert.AreEqual(before[i].Index, after[i].Index);
            var expectedFlags = before[i].Name == Glibcxx332 ? (ushort)(before[i].Flags | 0x2) : before[i].Flags;
            Assert.AreEqual(expectedFlags, after[i].Flags, before[i].Name);
        }
    }

    [TestMethod]
    [OSCondition(OperatingSystems.Linux)] // the libstdc++ workaround is Linux-only
    public void Patcher_ListNeeded_SameFromBytesAndFileAndNamesLibtorch()
    {
        var path = RequireOriginalLibrary();
        var fromBytes = ElfVersionPatcher.ListNeeded(File.ReadAllBytes(path));
        var fromFile = ElfVersionPatcher.ListNeeded(path);

        CollectionAssert.AreEqual(fromBytes.ToArray(), fromFile.ToArray());
        foreach (var name in new[] { "libtorch.so", "libc10.so", "libtorch_cpu.so", "libstdc++.so.6" })
            CollectionAssert.Contains(fromFile.ToList(), name);
    }

    [TestMethod]
    [OSCondition(OperatingSystems.Linux)] // the libstdc++ workaround is Linux-only
    public void Patcher_RejectsNonElfAndTruncatedInput()
    {
        Assert.IsFalse(ElfVersionPatcher.TryMakeWeak(Encoding.ASCII.GetBytes("#!/bin/sh\necho hi\n"), Glibcxx332, out var patched, out var error));
        Assert.IsEmpty(patched);
        Assert.IsNotNull(error);
        Assert.IsTrue(error.Contains("not an ELF file", StringComparison.Ordinal), error);

        Assert.IsFalse(ElfVersionPatcher.TryMakeWeak([], Glibcxx332, out _, out error));
        Assert.IsTrue(error!.Contains("not an ELF file", StringComparison.Ordinal), error);

        var real = File.ReadAllBytes(RequireOriginalLibrary());
        foreach (var length in new[] { 40, 64, 4096, real.Length - 100 })
        {
            Assert.IsFalse(ElfVersionPatcher.TryMakeWeak(real[..length], Glibcxx332, out _, out error), $"length {length}");
            Assert.IsTrue(error!.Contains("truncated", StringComparison.Ordinal), $"length {length}: {error}");
        }

        var elf32 = (byte[])real.Clone();
        elf32[4] = 1;
        Assert.IsFalse(ElfVersionPatcher.TryMakeWeak(elf32, Glibcxx332, out _, out error));
        Assert.IsTrue(error!.Contains("ELFCLASS64", StringComparison.Ordinal), error);

        var bigEndian = (byte[])real.Clone();
        bigEndian[5] = 2;
        Assert.IsFalse(ElfVersionPatcher.TryMakeWeak(bigEndian, Glibcxx332, out _, out error));
        Assert.IsTrue(error!.Contains("little-endian", StringComparison.Ordinal), error);

        Assert.IsFalse(ElfVersionPatcher.TryMakeWeak(real, "GLIBCXX_9.9.99", out _, out error));
        Assert.IsTrue(error!.Contains("GLIBCXX_9.9.99", StringComparison.Ordinal), error);

        var thrown = Assert.ThrowsExactly<InvalidDataException>(() => ElfVersionPatcher.ListRequiredVersions([0x7f, 0x45, 0x4c]));
        Assert.IsTrue(thrown.Message.Contains("not an ELF file", StringComparison.Ordinal), thrown.Message);
    }

    [TestMethod]
    public void ParseMissingVersions_ReadsLoaderMessage()
    {
        const string message =
            "Unable to load shared library '/app/runtimes/linux-x64/native/libLibTorchSharp.so' or one of its dependencies. " +
            "In order to help diagnose loading problems, consider using a tool like strace. If you're using glibc, consider setting the LD_DEBUG environment variable: \n" +
            "/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by /app/runtimes/linux-x64/native/libLibTorchSharp.so)";

        var missing = NativeBackendPatcher.ParseMissingVersions(message);

        Assert.HasCount(1, missing);
        Assert.AreEqual(Glibcxx332, missing[0].Version);
        Assert.AreEqual("/app/runtimes/linux-x64/native/libLibTorchSharp.so", missing[0].RequiredBy);
        Assert.IsEmpty(NativeBackendPatcher.ParseMissingVersions("libtorch.so: cannot open shared object file: No such file or directory"));
    }

    [TestMethod]
    public void Cache_FileNameIsContentHashed()
    {
        var original = Encoding.ASCII.GetBytes("some library bytes");
        var name = PatchedLibraryCache.GetFileName(original);

        Assert.IsTrue(System.Text.RegularExpressions.Regex.IsMatch(name, @"^libLibTorchSharp\.[0-9a-f]{16}\.weak\.so$"), name);
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(original));
        Assert.AreEqual($"libLibTorchSharp.{sha[..16]}.weak.so", name);
        Assert.AreNotEqual(name, PatchedLibraryCache.GetFileName(Encoding.ASCII.GetBytes("other library bytes")));
    }

    [TestMethod]
    public void Cache_CopyIsReusedOnSecondCall()
    {
        using var dir = new TempDirectory();
        var content = Encoding.ASCII.GetBytes("patched library content");
        var folder = Path.Combine(dir.Path, "native");

        var first = PatchedLibraryCache.WriteOrReuse(folder, "lib.weak.so", content);
        var stamp = new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(first, stamp);
        var second = PatchedLibraryCache.WriteOrReuse(folder, "lib.weak.so", content);

        Assert.AreEqual(first, second);
        Assert.AreEqual(Path.Combine(folder, "lib.weak.so"), first);
        Assert.AreEqual(stamp, File.GetLastWriteTimeUtc(second), "a valid cached copy must not be rewritten");
        CollectionAssert.AreEqual(content, File.ReadAllBytes(second));
        CollectionAssert.AreEqual(new[] { "lib.weak.so" }, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray());
    }

    [TestMethod]
    public void Cache_CorruptedExistingFileIsReplaced()
    {
        using var dir = new TempDirectory();
        var content = Encoding.ASCII.GetBytes("the right content");
        var final = Path.Combine(dir.Path, "lib.weak.so");
        File.WriteAllBytes(final, Encoding.ASCII.GetBytes("the right cont")); // e.g. a truncated earlier write

        var path = PatchedLibraryCache.WriteOrReuse(dir.Path, "lib.weak.so", content);

        Assert.AreEqual(final, path);
        CollectionAssert.AreEqual(content, File.ReadAllBytes(path));
        CollectionAssert.AreEqual(new[] { "lib.weak.so" }, Directory.GetFiles(dir.Path).Select(Path.GetFileName).ToArray(), "no temporary file may be left behind");
    }

    [TestMethod]
    public void Cache_ConcurrentWritersAgreeOnOneCompleteFile()
    {
        using var dir = new TempDirectory();
        var content = new byte[1 << 20];
        new Random(7).NextBytes(content);

        var paths = new string[16];
        Parallel.For(0, paths.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            paths[i] = PatchedLibraryCache.WriteOrReuse(dir.Path, "lib.weak.so", content));

        Assert.AreEqual(1, paths.Distinct().Count());
        CollectionAssert.AreEqual(content, File.ReadAllBytes(paths[0]));
        Assert.HasCount(1, Directory.GetFiles(dir.Path));
    }

    [TestMethod]
    public void GetSearchDirectories_IncludesApplicationFolders()
    {
        var directories = TorchRuntime.GetSearchDirectories();
        var baseDirectory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(AppContext.BaseDirectory));

        CollectionAssert.Contains(directories.ToList(), baseDirectory);
        Assert.AreEqual(directories.Count, directories.Distinct().Count());
    }

    private static void RequireLinux()
    {
        Assert.IsTrue(OperatingSystem.IsLinux(), "The libstdc++ workaround applies to Linux only (these tests carry [OSCondition(Linux)]).");
    }

    private static string RequireOriginalLibrary()
    {
        RequireLinux();
        var path = TorchRuntime.FindNativeLibrary();
        Assert.IsNotNull(path, "libLibTorchSharp.so was not found in the test output; the test project references TorchSharp-cpu");
        return path;
    }

    private static bool ContainsAscii(byte[] haystack, string needle) =>
        haystack.AsSpan().IndexOf(Encoding.ASCII.GetBytes(needle)) >= 0;

    private static double[,] RotationX(double t) => new[,] { { 1, 0, 0 }, { 0, Math.Cos(t), -Math.Sin(t) }, { 0, Math.Sin(t), Math.Cos(t) } };

    private static double[,] RotationY(double t) => new[,] { { Math.Cos(t), 0, Math.Sin(t) }, { 0, 1, 0 }, { -Math.Sin(t), 0, Math.Cos(t) } };

    private static double[,] RotationZ(double t) => new[,] { { Math.Cos(t), -Math.Sin(t), 0 }, { Math.Sin(t), Math.Cos(t), 0 }, { 0, 0, 1 } };

    private static double[,] Transpose(double[,] m)
    {
        var r = new double[3, 3];
        for (var i = 0; i < 3; i++)
        {
            for (var j = 0; j < 3; j++)
                r[i, j] = m[j, i];
        }

        return r;
    }

    private static double[,] Multiply(double[,] a, double[,] b)
    {
        var r = new double[3, 3];
        for (var i = 0; i < 3; i++)
        {
            for (var j = 0; j < 3; j++)
            {
                for (var k = 0; k < 3; k++)
                    r[i, j] += a[i, k] * b[k, j];
            }
        }

        return r;
    }

    private sealed class TempDirectory : IDisposable
    {
        public TempDirectory() => Path = Directory.CreateTempSubdirectory("allauzen-tests-").FullName;

        public string Path { get; }

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
                // best effort
            }
        }
    }
}
