using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using TorchSharp;

namespace Allauzen.ML.Torch;

// Native loading on Linux: the hooks through which TorchSharp finds its backend, the folders searched, and the
// load itself (the original library, or the patched copy NativeBackendPatcher prepares).
public static partial class TorchRuntime
{
    private const string LibraryFileName = "libLibTorchSharp.so";

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
        var missingLibtorch = NativeBackendPatcher.FindMissingTorchDependencies(original, originalDirectory, directories);
        if (missingLibtorch.Count > 0)
        {
            throw new InvalidOperationException(
                "No TorchSharp native backend found. Add the NuGet package TorchSharp-cpu (or TorchSharp-cuda-linux for GPUs) to your application project. " +
                $"Found {original} but not the libtorch libraries it needs ({string.Join(", ", missingLibtorch)}). " +
                $"Searched: {string.Join(", ", directories)}.");
        }

        if (NativeBackendPatcher.TryLoad(original, out var handle, out var error))
            return handle;

        var missing = NativeBackendPatcher.ParseMissingVersions(error);
        if (missing.Count == 0)
        {
            throw new InvalidOperationException(
                $"The TorchSharp native backend '{original}' could not be loaded: {error}");
        }

        handle = NativeBackendPatcher.LoadPatchedCopy(original, originalDirectory, directories, missing, error, out var copy);
        Volatile.Write(ref s_patchedPath, copy);
        return handle;
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
}
