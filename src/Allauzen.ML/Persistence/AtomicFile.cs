namespace Allauzen.ML.Persistence;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new content, never a
/// partial file: the content goes to a uniquely named temporary file in the target's folder, is flushed
/// to disk (fsync), renamed over the target, and the folder is flushed too (so the rename survives a
/// crash). A symbolic link is followed: the link stays a link and its final target is replaced, keeping
/// the target's permission bits (a new file gets the process's default, 0666 minus the umask).
/// If anything fails, the temporary file is deleted and an existing target is left untouched.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> atomically with <paramref name="write"/>.</summary>
    /// <param name="path">Target file (or a symbolic link to it); its folder must exist.</param>
    /// <param name="write">Writes the content to the (seekable) stream it receives; it must not dispose it.</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);

        string target = ResolveTarget(Path.GetFullPath(path));
        string folder = Path.GetDirectoryName(target)
            ?? throw new ArgumentException($"'{path}' has no parent folder.", nameof(path));
        if (Directory.Exists(target))
            throw new IOException($"Cannot write '{target}': a folder has that name.");
        UnixFileMode? mode = !OperatingSystem.IsWindows() && File.Exists(target) ? File.GetUnixFileMode(target) : null;
        string temp = Path.Combine(folder, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");

        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
                bufferSize: 1 << 16, FileOptions.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            if (mode is { } m && !OperatingSystem.IsWindows())
                File.SetUnixFileMode(temp, m);
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        UnixFile.FsyncDirectory(folder);
    }

    /// <summary>The final target of <paramref name="fullPath"/> when it is a symbolic link (even a dangling one), else the path.</summary>
    private static string ResolveTarget(string fullPath)
    {
        var info = new FileInfo(fullPath);
        if (info.LinkTarget is null)
            return fullPath;
        var final = info.ResolveLinkTarget(returnFinalTarget: true);
        return final is null ? fullPath : Path.GetFullPath(final.FullName);
    }

    private static void TryDelete(string temp)
    {
        try
        {
            File.Delete(temp);
        }
        catch (IOException)
        {
            // Best effort: the original exception matters more than a leftover temporary file.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
