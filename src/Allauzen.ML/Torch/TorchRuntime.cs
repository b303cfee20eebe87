using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using System.Text.RegularExpressions;
using TorchSharp;

namespace Allauzen.ML.Torch;

/// <summary>
/// Loads and checks TorchSharp's native backend (libtorch plus <c>libLibTorchSharp.so</c>).
/// </summary>
/// <remarks>
/// <para>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> declares a dependency on symbol version
/// <c>GLIBCXX_3.4.32</c> (GCC 13's libstdc++) for a single symbol,
/// <c>std::ios_base_library_init()</c>, which it never calls. On systems with an older libstdc++
/// (Debian 12 ships GCC 12, up to <c>GLIBCXX_3.4.30</c>) the dynamic loader therefore refuses the
/// library. When that happens, this class writes a copy in which that version requirement is marked
/// weak to a per-user cache folder, preloads the libtorch libraries it depends on from the original
/// folder and loads the copy; TorchSharp is then pointed at it. Systems whose libstdc++ is recent
/// enough load the original library unchanged.
/// </para>
/// <para>
/// Every Allauzen.ML component that uses TorchSharp calls <see cref="EnsureInitialized"/> first.
/// Applications that call TorchSharp directly should do the same before their first
/// <c>torch</c> call.
/// </para>
/// </remarks>
public static partial class TorchRuntime
{
    private const string LibraryFileName = "libLibTorchSharp.so";

    /// <summary>Symbols that libLibTorchSharp.so references but never calls; safe to leave unresolved.</summary>
    private static readonly HashSet<string> UnusedSymbols = new(StringComparer.Ordinal)
    {
        "_ZSt21ios_base_library_initv", // std::ios_base_library_init(), GLIBCXX_3.4.32
    };

    private static readonly Regex MissingVersionPattern = new(
        @"version [`'](?<version>[^`'\s]+)' not found \(required by (?<by>[^)]+)\)",
        RegexOptions.CultureInvariant);

    /// <summary>Guards <see cref="EnsureInitialized"/>; held while TorchSharp code runs.</summary>
    private static readonly Lock InitGate = new();

    /// <summary>Guards native loading only; never held while TorchSharp code runs (no lock-order cycle with torch's type initializer).</summary>
    private static readonly Lock NativeGate = new();

    private static volatile bool s_initialized;
    private static volatile bool s_hooksRegistered;
    private static bool s_cudaAvailable;
    private static IntPtr s_nativeHandle;
    private static string? s_nativeError;
    private static string? s_patchedPath;
    private static string? s_nativeDirectory;

    /// <summary>Whether <see cref="EnsureInitialized"/> has completed successfully in this process.</summary>
    public static bool IsInitialized => s_initialized;

    /// <summary>
    /// Loads TorchSharp's native backend (patching it for older libstdc++ when needed, on Linux) and
    /// verifies it with a small tensor operation. Idempotent and thread-safe; cheap after the first call.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// No native backend was found (the application lacks the TorchSharp-cpu or TorchSharp-cuda-linux
    /// package), or it could not be loaded; the message says why and what was searched.
    /// </exception>
    public static void EnsureInitialized()
    {
        if (s_initialized)
            return;

        lock (InitGate)
        {
            if (s_initialized)
                return;

            if (OperatingSystem.IsLinux())
            {
                RegisterResolver();
                LoadNativeBackend();
            }

            ApplyNativeEnvironment();
            s_cudaAvailable = VerifyTorchSharp();
            s_initialized = true;
            int threads = s_options.IntraOpThreads;
            if (threads > 0)
                torch.set_num_threads(threads);
        }
    }

    /// <summary>
    /// Seeds libtorch's random number generators: the CPU generator and, when CUDA is available, every
    /// CUDA device's generator.
    /// </summary>
    /// <param name="seed">The seed.</param>
    public static void SetSeed(int seed)
    {
        EnsureInitialized();
        using (torch.manual_seed(seed))
        {
        }

        if (s_cudaAvailable)
            torch.cuda.manual_seed_all(seed);
    }

    /// <summary>
    /// Sets the number of threads libtorch uses for intra-op parallelism (<c>torch.set_num_threads</c>).
    /// </summary>
    /// <param name="intraOp">Number of threads; 0 keeps libtorch's default.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="intraOp"/> is negative.</exception>
    public static void SetThreads(int intraOp)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(intraOp);
        EnsureInitialized();
        if (intraOp > 0)
            torch.set_num_threads(intraOp);
    }

    // A module initializer in a library runs for every consumer of the library, so it must stay cheap
    // and must not fail: it only registers lazy hooks. Native code is loaded only when TorchSharp asks
    // for LibTorchSharp or when EnsureInitialized is called.
#pragma warning disable CA2255 // The 'ModuleInitializer' attribute should not be used in libraries
    [ModuleInitializer]
    internal static void Init() => RegisterResolver();
#pragma warning restore CA2255

    /// <summary>
    /// Installs the hooks through which TorchSharp finds the (possibly patched) native backend:
    /// a DllImport resolver on the TorchSharp assembly (used by its P/Invokes) and a
    /// <see cref="AssemblyLoadContext.ResolvingUnmanagedDll"/> handler (used by the
    /// <see cref="NativeLibrary.TryLoad(string, Assembly, DllImportSearchPath?, out IntPtr)"/> calls of
    /// TorchSharp's own <c>LoadNativeBackend</c>, which do not consult DllImport resolvers). Neither hook
    /// loads anything until TorchSharp asks for LibTorchSharp. Never throws.
    /// </summary>
    internal static void RegisterResolver()
    {
        if (s_hooksRegistered || !OperatingSystem.IsLinux())
            return;

        lock (NativeGate)
        {
            if (s_hooksRegistered)
                return;
            s_hooksRegistered = true;
            try
            {
                var assembly = typeof(torch).Assembly;
                try
                {
                    NativeLibrary.SetDllImportResolver(assembly, ResolveDllImport);
                }
                catch (InvalidOperationException)
                {
                    // The application installed its own resolver for TorchSharp; the load-context
                    // handler below still covers the cases where normal probing fails.
                }

                var context = AssemblyLoadContext.GetLoadContext(assembly) ?? AssemblyLoadContext.Default;
                context.ResolvingUnmanagedDll += OnResolvingUnmanagedDll;
            }
            catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
            {
                // TorchSharp.dll is not deployed: nothing to hook; EnsureInitialized reports it.
            }
        }
    }

    /// <summary>
    /// Loads the TorchSharp native backend on Linux (original, or patched copy when the system
    /// libstdc++ lacks a version it requires) and returns its handle. Does not call TorchSharp.
    /// </summary>
    /// <exception cref="InvalidOperationException">The backend is missing or cannot be loaded.</exception>
    internal static IntPtr LoadNativeBackend()
    {
        lock (NativeGate)
        {
            if (s_nativeHandle != IntPtr.Zero)
                return s_nativeHandle;
            if (s_nativeError is not null)
                throw new InvalidOperationException(s_nativeError);

            try
            {
                s_nativeHandle = LoadNativeBackendCore();
                return s_nativeHandle;
            }
            catch (InvalidOperationException e)
            {
                s_nativeError = e.Message;
                throw;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                s_nativeError = $"The TorchSharp native backend could not be prepared: {e.Message}";
                throw new InvalidOperationException(s_nativeError, e);
            }
        }
    }

    /// <summary>The folders searched for <c>libLibTorchSharp.so</c>, in order, without duplicates.</summary>
    internal static IReadOnlyList<string> GetSearchDirectories()
    {
        var result = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var rid = GetNativeRid();

        void Add(string? directory)
        {
            if (string.IsNullOrWhiteSpace(directory))
                return;
            string full;
            try
            {
                full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
            {
                return;
            }

            if (seen.Add(full))
                result.Add(full);
        }

        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string nativeDirectories)
        {
            foreach (var directory in nativeDirectories.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
                Add(directory);
        }

        var baseDirectory = AppContext.BaseDirectory;
        Add(baseDirectory);
        Add(Path.Combine(baseDirectory, "runtimes", rid, "native"));

        string? torchSharpDirectory = null;
        try
        {
            var location = typeof(torch).Assembly.Location;
            if (!string.IsNullOrEmpty(location))
                torchSharpDirectory = Path.GetDirectoryName(location);
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            // TorchSharp.dll missing: only the application folders are searched.
        }

        if (torchSharpDirectory is not null)
        {
            Add(torchSharpDirectory);
            Add(Path.Combine(torchSharpDirectory, "runtimes", rid, "native"));
        }

        return result;
    }

    /// <summary>The full path of the first <c>libLibTorchSharp.so</c> found, or <see langword="null"/>.</summary>
    internal static string? FindNativeLibrary() => FindNativeLibrary(GetSearchDirectories());

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

    private static string? FindNativeLibrary(IReadOnlyList<string> directories) =>
        directories.Select(d => Path.Combine(d, LibraryFileName)).FirstOrDefault(File.Exists);

    private static string GetNativeRid()
    {
        var arch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x64",
            Architecture.Arm64 => "arm64",
            Architecture.X86 => "x86",
            Architecture.Arm => "arm",
            var other => other.ToString().ToLowerInvariant(),
        };
        return $"linux-{arch}";
    }

    private static IntPtr LoadNativeBackendCore()
    {
        ApplyNativeEnvironment();
        var directories = GetSearchDirectories();
        var original = FindNativeLibrary(directories);
        if (original is null)
        {
            throw new InvalidOperationException(
                "No TorchSharp native backend found. Add the NuGet package TorchSharp-cpu (or TorchSharp-cuda-linux for GPUs) to your application project. " +
                $"Searched for {LibraryFileName} in: {string.Join(", ", directories)}.");
        }

        var originalDirectory = Path.GetDirectoryName(original)!;
        Volatile.Write(ref s_nativeDirectory, originalDirectory);

        // libLibTorchSharp.so ships with the managed TorchSharp package; libtorch comes with
        // TorchSharp-cpu / TorchSharp-cuda-linux. Report a missing libtorch the same way as a missing backend.
        var missingLibtorch = FindMissingTorchDependencies(original, originalDirectory, directories);
        if (missingLibtorch.Count > 0)
        {
            throw new InvalidOperationException(
                "No TorchSharp native backend found. Add the NuGet package TorchSharp-cpu (or TorchSharp-cuda-linux for GPUs) to your application project. " +
                $"Found {original} but not the libtorch libraries it needs ({string.Join(", ", missingLibtorch)}). " +
                $"Searched: {string.Join(", ", directories)}.");
        }

        if (TryLoad(original, out var handle, out var error))
            return handle;

        var missing = ParseMissingVersions(error);
        if (missing.Count == 0)
        {
            throw new InvalidOperationException(
                $"The TorchSharp native backend '{original}' could not be loaded: {error}");
        }

        return LoadPatchedCopy(original, originalDirectory, directories, missing, error);
    }

    private static IntPtr LoadPatchedCopy(
        string original,
        string originalDirectory,
        IReadOnlyList<string> directories,
        IReadOnlyList<(string Version, string RequiredBy)> missing,
        string error)
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
                Volatile.Write(ref s_patchedPath, copy);
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

    private static List<string> FindMissingTorchDependencies(string original, string originalDirectory, IReadOnlyList<string> directories)
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

    private static bool TryLoad(string path, out IntPtr handle, out string error)
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

    private static bool IsTorchSharpBackend(string libraryName) =>
        libraryName.Contains("LibTorchSharp", StringComparison.OrdinalIgnoreCase);

    private static IntPtr ResolveDllImport(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        IsTorchSharpBackend(libraryName) ? TryLoadNativeBackend() : IntPtr.Zero;

    private static IntPtr OnResolvingUnmanagedDll(Assembly assembly, string libraryName) =>
        IsTorchSharpBackend(libraryName) ? TryLoadNativeBackend() : IntPtr.Zero;

    /// <summary>Hook variant: failures fall through to the runtime's default behaviour.</summary>
    private static IntPtr TryLoadNativeBackend()
    {
        try
        {
            return LoadNativeBackend();
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            return IntPtr.Zero;
        }
    }

    /// <summary>Runs cheap TorchSharp calls so that load problems surface here; returns CUDA availability.</summary>
    private static bool VerifyTorchSharp()
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            using var probe = torch.ones(2, dtype: torch.float32);
            using var total = probe.sum();
            var sum = total.item<float>();
            if (sum != 2f)
                throw new InvalidOperationException($"TorchSharp self-check failed: sum of ones(2) returned {sum}.");
            return torch.cuda.is_available();
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or EntryPointNotFoundException or NotSupportedException or BadImageFormatException)
        {
            var patched = PatchedLibraryPath is { } p ? $" (patched copy: {p})" : string.Empty;
            throw new InvalidOperationException(
                $"TorchSharp failed to initialize its native backend{patched}. If TorchSharp was used before " +
                $"TorchRuntime.EnsureInitialized() in this process, call EnsureInitialized() first. {e.GetBaseException().Message}",
                e);
        }
    }
}
