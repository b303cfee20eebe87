using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Allauzen.ML.Torch;

/// <summary>
/// The patch orchestration of native loading: when the dynamic loader refuses <c>libLibTorchSharp.so</c> for a
/// symbol version the system's libstdc++ lacks, checks that only never-called symbols need it, writes a copy with
/// the version marked weak (<see cref="ElfVersionPatcher"/>, <see cref="PatchedLibraryCache"/>), preloads its
/// libtorch dependencies and loads the copy. Called by <see cref="TorchRuntime"/>.
/// </summary>
internal static class NativeBackendPatcher
{
    /// <summary>Symbols that libLibTorchSharp.so references but never calls; safe to leave unresolved.</summary>
    private static readonly HashSet<string> UnusedSymbols = new(StringComparer.Ordinal)
    {
        "_ZSt21ios_base_library_initv", // std::ios_base_library_init(), GLIBCXX_3.4.32
    };

    private static readonly Regex MissingVersionPattern = new(
        @"version [`'](?<version>[^`'\s]+)' not found \(required by (?<by>[^)]+)\)",
        RegexOptions.CultureInvariant);

    /// <summary>
    /// Extracts the versions reported missing by a dynamic-loader error message such as
    /// <c>/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by /app/libLibTorchSharp.so)</c>.
    /// </summary>
    internal static IReadOnlyList<(string Version, string RequiredBy)> ParseMissingVersions(string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return MissingVersionPattern.Matches(message)
            .Select(m => (m.Groups["version"].Value, m.Groups["by"].Value.Trim()))
            .Distinct()
            .ToArray();
    }

    /// <summary>
    /// Loads a copy of <paramref name="original"/> in which the symbol versions the loader reported missing are
    /// marked weak, after checking that only never-called symbols need them; preloads the libtorch libraries the
    /// copy depends on from the original folder. Returns the handle and, in <paramref name="patchedPath"/>, the copy.
    /// </summary>
    /// <exception cref="InvalidOperationException">A missing version is needed by a symbol the library uses, the
    /// patch or the cache failed, or the copy still does not load.</exception>
    internal static IntPtr LoadPatchedCopy(
        string original,
        string originalDirectory,
        IReadOnlyList<string> directories,
        IReadOnlyList<(string Version, string RequiredBy)> missing,
        string error,
        out string patchedPath)
    {
        var bytes = File.ReadAllBytes(original);
        var weakened = new List<string>();
        var preloaded = false;

        // Each round weakens the versions the loader reported; the loader names one per failure.
        for (var round = 0; round < 16; round++)
        {
            var added = false;
            foreach (var (version, requiredBy) in missing)
            {
                if (weakened.Contains(version, StringComparer.Ordinal))
                    continue;
                if (!string.Equals(Path.GetFileName(requiredBy), Path.GetFileName(original), StringComparison.Ordinal) &&
                    !requiredBy.Contains("libLibTorchSharp", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException(
                        $"The TorchSharp native backend cannot be loaded: '{requiredBy}' requires symbol version {version}, " +
                        $"which this system's libraries do not provide. Loader error: {error}");
                }

                var symbols = ElfVersionPatcher.ListSymbolsRequiringVersion(bytes, version);
                var used = symbols.Where(s => !UnusedSymbols.Contains(s)).ToArray();
                if (used.Length > 0 || symbols.Count == 0)
                {
                    throw new InvalidOperationException(
                        $"The TorchSharp native backend '{original}' needs symbol version {version}, which this system's " +
                        $"libstdc++ does not provide, for symbols it really uses ({string.Join(", ", used.Take(8))}). " +
                        "Install a newer libstdc++ (GCC 13 or later) or use a newer Linux distribution. " +
                        $"Loader error: {error}");
                }

                weakened.Add(version);
                added = true;
            }

            if (!added)
            {
                throw new InvalidOperationException(
                    $"The TorchSharp native backend could not be loaded even after marking {string.Join(", ", weakened)} weak: {error}");
            }

            if (!ElfVersionPatcher.TryMakeWeak(bytes, weakened, out var patched, out var patchError))
                throw new InvalidOperationException($"Could not patch '{original}': {patchError}");

            string copy;
            try
            {
                copy = PatchedLibraryCache.Store(bytes, patched);
            }
            catch (IOException e)
            {
                throw new InvalidOperationException(e.Message, e);
            }

            if (!preloaded)
            {
                // The copy lives in another folder, so its $ORIGIN run path cannot find libtorch:
                // load its dependencies from the original folder first (dependencies before dependents).
                PreloadDependencies(bytes, originalDirectory, directories);
                preloaded = true;
            }

            if (TryLoad(copy, out var handle, out error))
            {
                patchedPath = copy;
                return handle;
            }

            missing = ParseMissingVersions(error);
            if (missing.Count == 0)
            {
                throw new InvalidOperationException(
                    $"The patched TorchSharp native backend '{copy}' (copy of '{original}' with {string.Join(", ", weakened)} marked weak) could not be loaded: {error}");
            }
        }

        throw new InvalidOperationException($"The TorchSharp native backend '{original}' could not be loaded: {error}");
    }

    /// <summary>The libtorch/libc10 libraries <paramref name="original"/> needs that are found in none of the folders.</summary>
    internal static List<string> FindMissingTorchDependencies(string original, string originalDirectory, IReadOnlyList<string> directories)
    {
        IReadOnlyList<string> needed;
        try
        {
            needed = ElfVersionPatcher.ListNeeded(original);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidOperationException($"The TorchSharp native backend '{original}' is not a valid shared library: {e.Message}", e);
        }

        return needed
            .Where(n => n.StartsWith("libtorch", StringComparison.Ordinal) || n.StartsWith("libc10", StringComparison.Ordinal))
            .Where(n => !File.Exists(Path.Combine(originalDirectory, n)) && !directories.Any(d => File.Exists(Path.Combine(d, n))))
            .ToList();
    }

    private static void PreloadDependencies(byte[] library, string originalDirectory, IReadOnlyList<string> directories)
    {
        var lookup = new List<string> { originalDirectory };
        lookup.AddRange(directories.Where(d => !string.Equals(d, originalDirectory, StringComparison.Ordinal)));

        var order = new List<string>();
        var state = new Dictionary<string, bool>(StringComparer.Ordinal); // false: visiting, true: done

        void Visit(IReadOnlyList<string> needed)
        {
            foreach (var name in needed)
            {
                var path = lookup.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
                if (path is null || state.ContainsKey(path))
                    continue; // a system library, or already visited (cycles are ignored)
                state[path] = false;
                IReadOnlyList<string> dependencies;
                try
                {
                    dependencies = ElfVersionPatcher.ListNeeded(path);
                }
                catch (InvalidDataException)
                {
                    dependencies = [];
                }

                Visit(dependencies);
                state[path] = true;
                order.Add(path);
            }
        }

        Visit(ElfVersionPatcher.ListNeeded(library));

        foreach (var path in order)
        {
            if (!TryLoad(path, out _, out var error))
            {
                throw new InvalidOperationException(
                    $"Could not load '{path}', a dependency of the TorchSharp native backend: {error}");
            }
        }
    }

    /// <summary><see cref="NativeLibrary.Load(string)"/> that reports a failure instead of throwing it.</summary>
    internal static bool TryLoad(string path, out IntPtr handle, out string error)
    {
        try
        {
            handle = NativeLibrary.Load(path);
            error = string.Empty;
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            handle = IntPtr.Zero;
            error = e.Message;
            return false;
        }
    }
}
