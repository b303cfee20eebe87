namespace Allauzen.ML.Persistence;

/// <summary>
/// Writes a file so that readers see either the old content or the complete new content, never a
/// partial file: the content goes to a uniquely named temporary file in the same folder, is flushed
/// to disk (<see cref="FileStream.Flush(bool)"/> with <c>true</c>), then renamed over the target.
/// If writing fails, the temporary file is deleted and an existing target is left untouched.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> atomically with <paramref name="write"/>.</summary>
    /// <param name="path">Target file; its folder must exist.</param>
    /// <param name="write">Writes the content to the (seekable) stream it receives; it must not dispose it.</param>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);

        string fullPath = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(fullPath)
            ?? throw new ArgumentException($"'{path}' has no parent folder.", nameof(path));
        if (Directory.Exists(fullPath))
            throw new IOException($"Cannot write '{fullPath}': a folder has that name.");
        string temp = Path.Combine(folder, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");

        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
                bufferSize: 1 << 16, FileOptions.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
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
