using System.Globalization;
using TorchSharp;

namespace Allauzen.ML.Torch;

/// <summary>
/// Resolves the user-facing <c>Device</c> option (<c>"auto"</c>, <c>"cpu"</c>, <c>"cuda"</c>,
/// <c>"cuda:N"</c>) to a canonical device string, checking CUDA availability.
/// </summary>
public static class TorchDevice
{
    private const string AcceptedForms = "\"auto\", \"cpu\", \"cuda\" or \"cuda:N\" with N a device index (0, 1, ...)";

    /// <summary>
    /// Resolves a device option to its canonical form: <c>"cpu"</c> or <c>"cuda:N"</c>.
    /// </summary>
    /// <param name="device">
    /// <c>"auto"</c> (CUDA device 0, or <paramref name="gpuDeviceId"/>, when CUDA is available, else the CPU),
    /// <c>"cpu"</c>, <c>"cuda"</c> (device <paramref name="gpuDeviceId"/>, default 0) or <c>"cuda:N"</c>.
    /// Case-insensitive; surrounding white space is ignored. <see langword="null"/> means <c>"auto"</c>.
    /// </param>
    /// <param name="gpuDeviceId">The CUDA device index used by <c>"auto"</c> and <c>"cuda"</c>; must agree with N in <c>"cuda:N"</c>.</param>
    /// <param name="fallbackToCpu">Return <c>"cpu"</c> instead of throwing when CUDA was requested but is not available.</param>
    /// <returns><c>"cpu"</c> or <c>"cuda:N"</c>.</returns>
    /// <exception cref="ArgumentException"><paramref name="device"/> is not one of the accepted forms, or <paramref name="gpuDeviceId"/> is negative or contradicts it.</exception>
    /// <exception cref="InvalidOperationException">CUDA was requested but is not available (and <paramref name="fallbackToCpu"/> is false), or the device index is not below the number of CUDA devices.</exception>
    public static string Resolve(string? device, int? gpuDeviceId = null, bool fallbackToCpu = false) =>
        Resolve(
            device,
            gpuDeviceId,
            fallbackToCpu,
            static () => TorchRuntime.IsCudaAvailable,
            static () =>
            {
                TorchRuntime.EnsureInitialized();
                return torch.cuda.device_count();
            },
            static () => TorchRuntime.IsCudaBuild);

    /// <summary>
    /// <see cref="Resolve(string?, int?, bool)"/> with injectable CUDA probes (for tests).
    /// </summary>
    /// <param name="device">The device option.</param>
    /// <param name="gpuDeviceId">The CUDA device index for <c>"auto"</c>/<c>"cuda"</c>.</param>
    /// <param name="fallbackToCpu">Return <c>"cpu"</c> when CUDA is unavailable.</param>
    /// <param name="cudaAvailable">Whether CUDA is available; called only when needed.</param>
    /// <param name="cudaCount">The number of CUDA devices; called only when CUDA is available.</param>
    /// <param name="cudaBuildPresent">Whether the CUDA build of libtorch is deployed (selects the error message); defaults to false.</param>
    internal static string Resolve(
        string? device,
        int? gpuDeviceId,
        bool fallbackToCpu,
        Func<bool> cudaAvailable,
        Func<int> cudaCount,
        Func<bool>? cudaBuildPresent = null)
    {
        ArgumentNullException.ThrowIfNull(cudaAvailable);
        ArgumentNullException.ThrowIfNull(cudaCount);
        if (gpuDeviceId is < 0)
        {
            throw new ArgumentOutOfRangeException(
                "GpuDeviceId",
                gpuDeviceId,
                $"Invalid value {gpuDeviceId} for option GpuDeviceId: a CUDA device index must be 0 or greater.");
        }

        var normalized = (device ?? "auto").Trim().ToLowerInvariant();
        switch (normalized)
        {
            case "cpu":
                return "cpu";

            case "auto":
                if (!cudaAvailable())
                    return "cpu";
                return CheckIndex(device, gpuDeviceId ?? 0, cudaCount);

            case "cuda":
                return RequireCuda(device, gpuDeviceId ?? 0, fallbackToCpu, cudaAvailable, cudaCount, cudaBuildPresent);
        }

        if (normalized.StartsWith("cuda:", StringComparison.Ordinal) &&
            int.TryParse(normalized.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            if (gpuDeviceId is { } id && id != index)
            {
                throw new ArgumentException(
                    $"Option Device = '{device}' contradicts option GpuDeviceId = {id}: give the index in one place only, or make them agree.",
                    "Device");
            }

            return RequireCuda(device, index, fallbackToCpu, cudaAvailable, cudaCount, cudaBuildPresent);
        }

        throw new ArgumentException(
            $"Invalid value '{device}' for option Device. Accepted forms: {AcceptedForms}.",
            "Device");
    }

    /// <summary>Converts a canonical device string from <see cref="Resolve(string?, int?, bool)"/> to a TorchSharp device.</summary>
    /// <exception cref="ArgumentException"><paramref name="canonical"/> is not <c>"cpu"</c> or <c>"cuda:N"</c>.</exception>
    internal static torch.Device ToTorch(string canonical)
    {
        ArgumentNullException.ThrowIfNull(canonical);
        if (canonical == "cpu")
            return new torch.Device(DeviceType.CPU);
        if (canonical.StartsWith("cuda:", StringComparison.Ordinal) &&
            int.TryParse(canonical.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            return new torch.Device(DeviceType.CUDA, index);
        }

        throw new ArgumentException(
            $"'{canonical}' is not a canonical device string (\"cpu\" or \"cuda:N\"); resolve it with TorchDevice.Resolve first.",
            nameof(canonical));
    }

    private static string RequireCuda(
        string? device,
        int index,
        bool fallbackToCpu,
        Func<bool> cudaAvailable,
        Func<int> cudaCount,
        Func<bool>? cudaBuildPresent)
    {
        if (cudaAvailable())
            return CheckIndex(device, index, cudaCount);
        if (fallbackToCpu)
            return "cpu";

        var requested = $"cuda:{index}";
        var reason = cudaBuildPresent?.Invoke() == true
            ? "the CUDA build of libtorch (TorchSharp-cuda-linux) is deployed, but no usable NVIDIA GPU or driver was found (check nvidia-smi)"
            : "this process uses the CPU build of libtorch (TorchSharp-cpu). Build with -p:TorchBackend=cuda (package TorchSharp-cuda-linux) on a machine with an NVIDIA driver";
        throw new InvalidOperationException(
            $"Device '{requested}' was requested but CUDA is not available: {reason}, or set Device = \"cpu\".");
    }

    private static string CheckIndex(string? device, int index, Func<int> cudaCount)
    {
        var count = cudaCount();
        if (index >= count)
        {
            var valid = count <= 0 ? "none" : count == 1 ? "cuda:0" : $"cuda:0 to cuda:{count - 1}";
            throw new InvalidOperationException(
                $"Device 'cuda:{index}' was requested (Device = '{device ?? "auto"}') but only {count} CUDA device(s) are visible " +
                $"(valid: {valid}). Check CUDA_VISIBLE_DEVICES or choose another index.");
        }

        return $"cuda:{index}";
    }
}
