namespace Allauzen.ML.Torch;

// The native runtime's settings (threads, OpenMP wait policy, reproducible oneMKL products): chosen by
// Configure, put into the native environment once, before libtorch loads.
public static partial class TorchRuntime
{
    private static TorchRuntimeOptions s_options = new();
    private static string? s_nativeSettings;

    /// <summary>
    /// What the native libraries were given when libtorch loaded (for example
    /// <c>"OMP_WAIT_POLICY=PASSIVE, MKL_CBWR=AUTO,STRICT"</c>), or null before it loaded.
    /// </summary>
    public static string? NativeSettings => Volatile.Read(ref s_nativeSettings);

    /// <summary>
    /// Sets how libtorch runs in this process: threads per operation, how idle worker threads wait, and
    /// reproducible matrix products (see <see cref="TorchRuntimeOptions"/>). Without a call, the defaults of
    /// <see cref="TorchRuntimeOptions"/> apply: idle workers sleep instead of spinning, so libtorch behaves on
    /// a machine shared with other CPU-bound processes.
    /// </summary>
    /// <param name="options">The settings.</param>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="TorchRuntimeOptions.IntraOpThreads"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">libtorch is already loaded and the call changes a setting
    /// read at load time (<see cref="TorchRuntimeOptions.WaitPolicy"/> or
    /// <see cref="TorchRuntimeOptions.ReproducibleMatrixProducts"/>); call it before the first Allauzen component runs.</exception>
    public static void Configure(TorchRuntimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.IntraOpThreads < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.IntraOpThreads,
                $"{nameof(TorchRuntimeOptions.IntraOpThreads)} must be 0 (libtorch's default) or positive; got {options.IntraOpThreads}.");
        lock (NativeGate)
        {
            bool loaded = s_nativeSettings is not null;
            if (loaded && (options.WaitPolicy != s_options.WaitPolicy || options.ReproducibleMatrixProducts != s_options.ReproducibleMatrixProducts))
            {
                throw new InvalidOperationException(
                    $"libtorch is already loaded with {s_nativeSettings}; {nameof(TorchRuntimeOptions.WaitPolicy)} and "
                    + $"{nameof(TorchRuntimeOptions.ReproducibleMatrixProducts)} are read when it loads. Call TorchRuntime.Configure "
                    + "before the first Allauzen component runs, or set OMP_WAIT_POLICY / MKL_CBWR in the environment that starts the process.");
            }
            s_options = options.Clone();
        }
        if (s_initialized && options.IntraOpThreads > 0)
            SetThreads(options.IntraOpThreads);
    }

    /// <summary>
    /// Full path of the patched copy of <c>libLibTorchSharp.so</c> that was loaded, or
    /// <see langword="null"/> when the original library loaded as is (or before initialization).
    /// </summary>
    public static string? PatchedLibraryPath => Volatile.Read(ref s_patchedPath);

    /// <summary>
    /// Whether CUDA is usable (<c>torch.cuda.is_available()</c>). Reading it initializes the runtime
    /// (see <see cref="EnsureInitialized"/>) when that has not happened yet.
    /// </summary>
    public static bool IsCudaAvailable
    {
        get
        {
            EnsureInitialized();
            return s_cudaAvailable;
        }
    }

    /// <summary>
    /// The folder holding the original TorchSharp native libraries, once located (Linux only).
    /// </summary>
    internal static string? NativeDirectory => Volatile.Read(ref s_nativeDirectory);

    /// <summary>
    /// Whether the CUDA build of libtorch is deployed next to the TorchSharp native backend
    /// (TorchSharp-cuda-linux rather than TorchSharp-cpu).
    /// </summary>
    internal static bool IsCudaBuild
    {
        get
        {
            if (NativeDirectory is { } directory)
                return File.Exists(Path.Combine(directory, "libtorch_cuda.so"));
            return GetSearchDirectories().Any(d =>
                File.Exists(Path.Combine(d, "libtorch_cuda.so")) || File.Exists(Path.Combine(d, "torch_cuda.dll")));
        }
    }

    /// <summary>
    /// Puts the configured settings into the native environment, once, before libtorch (and the OpenMP and
    /// oneMKL libraries it brings) load: both loading routes (<see cref="EnsureInitialized"/> and TorchSharp's
    /// own request for LibTorchSharp) pass here first.
    /// </summary>
    private static void ApplyNativeEnvironment()
    {
        lock (NativeGate)
        {
            if (s_nativeSettings is null)
                Volatile.Write(ref s_nativeSettings, NativeEnvironment.Apply(s_options));
        }
    }
}
