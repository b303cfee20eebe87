using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Allauzen.ML.Persistence;

/// <summary>What a path names, after following symbolic links.</summary>
internal enum UnixFileKind
{
    /// <summary>A regular file.</summary>
    Regular,

    /// <summary>A directory.</summary>
    Directory,

    /// <summary>A character device (<c>/dev/zero</c>, a terminal).</summary>
    CharacterDevice,

    /// <summary>A block device (a disk).</summary>
    BlockDevice,

    /// <summary>A named pipe (opening it for reading blocks until a writer appears).</summary>
    Fifo,

    /// <summary>A Unix domain socket.</summary>
    Socket,

    /// <summary>Anything else.</summary>
    Other,
}

/// <summary>The few file facts .NET does not expose on Unix: the kind of file, its owner, mode and size.</summary>
internal readonly record struct UnixFileStatus(UnixFileKind Kind, uint OwnerId, UnixFileMode Mode, long Size);

/// <summary>
/// Small Linux helpers over libc (<c>statx</c>, <c>geteuid</c>, <c>open</c>/<c>fsync</c>/<c>close</c>) for the checks
/// .NET cannot make: whether a path is a regular file (a device or FIFO is not), who owns a folder, and flushing a
/// folder after a rename. Every member is a no-op or returns null off Linux, where the callers fall back to .NET's view.
/// </summary>
internal static partial class UnixFile
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1, StatxMode = 0x2, StatxUid = 0x8, StatxSize = 0x200;
    private const int ORdOnly = 0, OCloExec = 0x80000;

    /// <summary>Status of <paramref name="path"/> after following symbolic links; null off Linux or when it does not exist
    /// (or <c>statx</c> is unavailable, glibc &lt; 2.28).</summary>
    public static UnixFileStatus? Stat(string path)
    {
        if (!OperatingSystem.IsLinux())
            return null;
        // struct statx has the same layout on every Linux architecture: mask@0, uid@20, mode@28 (u16), size@40; 256 bytes.
        var buffer = new byte[256];
        try
        {
            if (statx(AtFdCwd, path, 0, StatxType | StatxMode | StatxUid | StatxSize, buffer) != 0)
                return null;
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
        uint uid = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(20));
        ushort mode = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(28));
        long size = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(40));
        var kind = (mode & 0xF000) switch
        {
            0x8000 => UnixFileKind.Regular,
            0x4000 => UnixFileKind.Directory,
            0x2000 => UnixFileKind.CharacterDevice,
            0x6000 => UnixFileKind.BlockDevice,
            0x1000 => UnixFileKind.Fifo,
            0xC000 => UnixFileKind.Socket,
            _ => UnixFileKind.Other,
        };
        return new UnixFileStatus(kind, uid, (UnixFileMode)(mode & 0xFFF), size);
    }

    /// <summary>The effective user id of this process; null off Linux.</summary>
    public static uint? EffectiveUserId() => OperatingSystem.IsLinux() ? geteuid() : null;

    /// <summary>
    /// Checks that <paramref name="path"/> (links followed) is a regular file of at most <paramref name="maxBytes"/> bytes,
    /// before anything opens it (opening a FIFO blocks; reading <c>/dev/zero</c> never ends). Returns its size.
    /// </summary>
    /// <exception cref="InvalidDataException">It is a directory, device, FIFO or socket, or larger than the limit;
    /// the message starts with <paramref name="what"/> and names the path.</exception>
    /// <exception cref="FileNotFoundException">It does not exist.</exception>
    public static long RequireRegularFile(string path, long maxBytes, string what)
    {
        long size;
        if (Stat(path) is { } st)
        {
            if (st.Kind != UnixFileKind.Regular)
                throw new InvalidDataException($"{what} '{path}' is not a regular file (it is a {Describe(st.Kind)}); only regular files are read.");
            size = st.Size;
        }
        else
        {
            if (Directory.Exists(path))
                throw new InvalidDataException($"{what} '{path}' is not a regular file (it is a directory); only regular files are read.");
            var info = new FileInfo(path);
            if (!info.Exists)
                throw new FileNotFoundException($"{what} '{path}' does not exist.", path);
            size = info.Length;
        }
        if (size > maxBytes)
            throw new InvalidDataException($"{what} '{path}' has {size} bytes, more than the limit of {maxBytes} bytes.");
        return size;
    }

    /// <summary>Flushes <paramref name="directory"/>'s entries to disk (after a rename into it); a no-op off Linux.</summary>
    /// <exception cref="IOException">open or fsync failed (the message names the folder and errno).</exception>
    public static void FsyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux())
            return;
        int fd = open(directory, ORdOnly | OCloExec);
        if (fd < 0)
            throw new IOException($"Cannot open the folder '{directory}' to flush it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (fsync(fd) != 0)
                throw new IOException($"Cannot flush the folder '{directory}' to disk (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally
        {
            _ = close(fd);
        }
    }

    private static string Describe(UnixFileKind kind) => kind switch
    {
        UnixFileKind.CharacterDevice => "character device",
        UnixFileKind.BlockDevice => "block device",
        UnixFileKind.Fifo => "named pipe (FIFO)",
        UnixFileKind.Socket => "socket",
        UnixFileKind.Directory => "directory",
        _ => "special file",
    };

    [LibraryImport("libc.so.6", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, [Out] byte[] buffer);

    [LibraryImport("libc.so.6", EntryPoint = "geteuid")]
    private static partial uint geteuid();

    [LibraryImport("libc.so.6", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc.so.6", EntryPoint = "fsync", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc.so.6", EntryPoint = "close")]
    private static partial int close(int fd);
}
