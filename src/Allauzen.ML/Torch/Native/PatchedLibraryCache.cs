using System.Security.Cryptography;
using System.Text;
using Allauzen.ML.Persistence;

namespace Allauzen.ML.Torch;

/// <summary>
/// Per-user cache of patched native libraries. Copies are named after a hash of the original file,
/// written to a unique temporary file and atomically renamed into place, so concurrent processes
/// never observe a partially written library, and never written next to the original (which may be
/// read-only).
/// </summary>
internal static class PatchedLibraryCache
{
    private const UnixFileMode PrivateDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const UnixFileMode LibraryFileMode =
        UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
        UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>The cache file name for a weakened copy of <paramref name="original"/>.</summary>
    internal static string GetFileName(byte[] original) => $"libLibTorchSharp.{Sha256Prefix(original)}.weak.so";

    /// <summary>
    /// The preferred cache folder: <c>$XDG_CACHE_HOME/allauzen-ml/native</c>, else
    /// <c>~/.cache/allauzen-ml/native</c>; <see langword="null"/> when neither base can be determined.
    /// </summary>
    internal static string? GetPrimaryDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg))
            return Path.Combine(xdg, "allauzen-ml", "native");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home) || !Path.IsPathRooted(home))
            return null;
        return Path.Combine(home, ".cache", "allauzen-ml", "native");
    }

    /// <summary>
    /// Stores <paramref name="patched"/> (the weakened copy of <paramref name="original"/>) in the user
    /// cache, falling back to a private folder under the temporary directory when the cache is not
    /// writable, and returns the full path of the stored file.
    /// </summary>
    internal static string Store(byte[] original, byte[] patched)
    {
        var fileName = GetFileName(original);
        var failures = new List<string>();
        var primary = GetPrimaryDirectory();
        if (primary is not null)
        {
            try
            {
                return WriteOrReuse(primary, fileName, patched);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                failures.Add($"{primary}: {e.Message}");
            }
        }

        var user = SanitizeUser(Environment.UserName);
        var tempRoot = Path.Combine(Path.GetTempPath(), $"allauzen-ml-{user}");
        try
        {
            EnsurePrivateDirectory(tempRoot);
            return WriteOrReuse(Path.Combine(tempRoot, "native"), fileName, patched);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            failures.Add($"{tempRoot}: {e.Message}");
        }

        // Last resort: a fresh private directory (0700, unique name), not shared with other processes.
        try
        {
            var unique = Directory.CreateTempSubdirectory("allauzen-ml-");
            return WriteOrReuse(unique.FullName, fileName, patched);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            failures.Add($"{Path.GetTempPath()}: {e.Message}");
            throw new IOException("Could not write the patched TorchSharp native library to any cache folder: " + string.Join("; ", failures), e);
        }
    }

    /// <summary>
    /// Makes sure <paramref name="directory"/>/<paramref name="fileName"/> holds exactly
    /// <paramref name="content"/> and returns its path. An existing file with the right content is
    /// reused untouched; otherwise the content is written to a unique temporary file in the same
    /// folder and renamed into place (first writer wins; a wrong pre-existing file is replaced).
    /// </summary>
    internal static string WriteOrReuse(string directory, string fileName, byte[] content)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(fileName);
        ArgumentNullException.ThrowIfNull(content);

        CreateDirectory(directory);
        var finalPath = Path.Combine(directory, fileName);
        var expected = SHA256.HashData(content);
        var existing = HasContent(finalPath, expected);
        if (existing == true)
            return finalPath;

        var tempPath = Path.Combine(directory, $".{fileName}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = LibraryFileMode;
            using (var stream = new FileStream(tempPath, options))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            if (existing == false)
            {
                // A stale or corrupted file occupies the name: replace it atomically.
                File.Move(tempPath, finalPath, overwrite: true);
                return finalPath;
            }

            try
            {
                File.Move(tempPath, finalPath, overwrite: false);
                return finalPath;
            }
            catch (IOException) when (File.Exists(finalPath))
            {
                // Another process won the race; keep its file when it is what we would have written.
                if (HasContent(finalPath, expected) != true)
                    File.Move(tempPath, finalPath, overwrite: true);
                return finalPath;
            }
        }
        finally
        {
            try
            {
                if (File.Exists(tempPath))
                    File.Delete(tempPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort: a leftover temporary file is harmless.
            }
        }
    }

    /// <summary>The first 16 lower-case hex digits of the SHA-256 of <paramref name="bytes"/>.</summary>
    internal static string Sha256Prefix(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes))[..16];

    /// <summary>true: file exists with that hash; false: exists with other content; null: absent.</summary>
    private static bool? HasContent(string path, byte[] expectedHash)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return SHA256.HashData(stream).AsSpan().SequenceEqual(expectedHash);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private static void CreateDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
            Directory.CreateDirectory(directory);
        else
            Directory.CreateDirectory(directory, PrivateDirectoryMode);
    }

    /// <summary>
    /// Creates <paramref name="directory"/> (mode 0700) or, when it already exists, makes sure it is
    /// ours before using it: not a symbolic link, owned by this process's effective user, and not writable
    /// by group or others (a folder planted in the shared temporary directory by another user, or one anybody
    /// could have dropped a library into, is refused with an <see cref="IOException"/>, and the caller moves
    /// on to its next candidate). Then it is set to 0700.
    /// </summary>
    internal static void EnsurePrivateDirectory(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return;
        }

        Directory.CreateDirectory(directory, PrivateDirectoryMode);
        if ((File.GetAttributes(directory) & FileAttributes.ReparsePoint) != 0)
            throw new IOException($"{directory} is a symbolic link; refusing to use it as a cache folder.");
        if (UnixFile.Stat(directory) is { } status && UnixFile.EffectiveUserId() is { } euid)
            CheckPrivateDirectory(directory, status, euid);
        File.SetUnixFileMode(directory, PrivateDirectoryMode);
    }

    /// <summary>Throws an <see cref="IOException"/> unless <paramref name="status"/> is a directory owned by
    /// <paramref name="euid"/> that neither group nor others can write.</summary>
    internal static void CheckPrivateDirectory(string directory, UnixFileStatus status, uint euid)
    {
        if (status.Kind != UnixFileKind.Directory)
            throw new IOException($"{directory} is not a directory; refusing to use it as a cache folder.");
        if (status.OwnerId != euid)
            throw new IOException($"{directory} is owned by uid {status.OwnerId}, not by this user (uid {euid}); refusing to use it as a cache folder.");
        if ((status.Mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            throw new IOException(
                $"{directory} is writable by {((status.Mode & UnixFileMode.OtherWrite) != 0 ? "others" : "its group")} (mode {Convert.ToString((int)status.Mode, 8)}); refusing to use it as a cache folder.");
        }
    }

    private static string SanitizeUser(string user)
    {
        var builder = new StringBuilder(user.Length);
        foreach (var c in user)
            builder.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_');
        return builder.Length == 0 ? "user" : builder.ToString();
    }
}
