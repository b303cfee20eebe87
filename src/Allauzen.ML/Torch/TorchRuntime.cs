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
/// The loading itself lives under <c>Torch/Native/</c>: the hooks and the search
/// (<c>TorchRuntime.NativeLoading.cs</c>), the patch orchestration (<c>NativeBackendPatcher</c>), the ELF
/// reader/patcher (<c>ElfVersionPatcher</c>) and the cache of patched copies (<c>PatchedLibraryCache</c>).
/// </para>
/// <para>
/// Every Allauzen.ML component that uses TorchSharp calls <see cref="EnsureInitialized"/> first.
/// Applications that call TorchSharp directly should do the same before their first
/// <c>torch</c> call.
/// </para>
/// </remarks>
public static partial class TorchRuntime
{
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
