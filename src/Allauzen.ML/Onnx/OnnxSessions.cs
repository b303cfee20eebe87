using Allauzen.ML.Core;
using Microsoft.ML.OnnxRuntime;

namespace Allauzen.ML.Onnx;

/// <summary>
/// Opens ONNX Runtime sessions on the CPU or, when a GPU device is asked for, with the CUDA execution provider, the
/// way ML.NET's <c>ApplyOnnxModel</c> honours <c>MLContext.GpuDeviceId</c> / <c>FallbackToCpu</c>: CUDA that cannot
/// be used is an error naming the component and what to install, unless the fallback is on (then a warning and the CPU).
/// </summary>
internal static class OnnxSessions
{
    /// <summary>
    /// The <c>MLContext</c>'s <c>GpuDeviceId</c> and <c>FallbackToCpu</c> as seen through a catalog's environment (ML.NET keeps
    /// them on its internal <c>IHostEnvironmentInternal</c>, which <c>ApplyOnnxModel</c> reads); (null, false) when the
    /// environment does not expose them.
    /// </summary>
    /// <param name="env">The environment (an <c>MLContext</c> or a catalog's environment).</param>
    public static (int? GpuDeviceId, bool FallbackToCpu) ContextDevice(IHostEnvironment env)
    {
        if (env is MLContext ml)
            return (ml.GpuDeviceId, ml.FallbackToCpu);
        var (gpu, fallback) = MlNetInternals.EnvironmentDevice(env);
        return (gpu, fallback ?? false);
    }

    /// <summary>An opened session and the provider that runs it ("CPU" or "CUDA:n").</summary>
    public readonly record struct Opened(InferenceSession Session, string Provider);

    /// <summary>
    /// Opens <paramref name="open"/> with fresh options from <paramref name="options"/>: with the CUDA provider on
    /// <paramref name="gpuDeviceId"/> when it is set, else (or on fallback) on the CPU. An <see cref="OnnxRuntimeException"/>
    /// of the CPU session (a bad model) is thrown as <paramref name="badModel"/> makes it.
    /// </summary>
    /// <param name="component">Names the component in messages (e.g. "RandomizedSmoothing").</param>
    /// <param name="options">Creates session options (threads, optimisation level); called once per attempt.</param>
    /// <param name="open">Opens a session with the given options.</param>
    /// <param name="badModel">Turns the CPU session's load failure into the component's error (e.g. an <see cref="InvalidDataException"/> naming the file).</param>
    /// <param name="gpuDeviceId">CUDA device index, or null for the CPU.</param>
    /// <param name="fallbackToCpu">On a CUDA failure: true runs on the CPU after <paramref name="warn"/>, false throws <see cref="InvalidOperationException"/>.</param>
    /// <param name="warn">Receives the fallback warning.</param>
    public static Opened Open(string component, Func<SessionOptions> options, Func<SessionOptions, InferenceSession> open,
        Func<OnnxRuntimeException, Exception> badModel, int? gpuDeviceId, bool fallbackToCpu, Action<string> warn)
    {
        if (gpuDeviceId is int gpu)
        {
            if (gpu < 0)
                throw new ArgumentOutOfRangeException("GpuDeviceId", gpu, $"{component}: GpuDeviceId must be a device index ≥ 0 (got {gpu}).");
            try
            {
                using var gpuOptions = options();
                gpuOptions.AppendExecutionProvider_CUDA(gpu);
                return new Opened(open(gpuOptions), $"CUDA:{gpu}");
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                if (!fallbackToCpu)
                    throw new InvalidOperationException(
                        $"{component}: GpuDeviceId = {gpu} but ONNX Runtime could not use CUDA ({e.Message}). Reference the GPU build of " +
                        "ONNX Runtime (Microsoft.ML.OnnxRuntime.Gpu) with CUDA 12 and cuDNN 9 installed, or set FallbackToCpu = true.", e);
                warn($"{component}: CUDA device {gpu} is not usable ({e.Message}); running on the CPU (FallbackToCpu).");
            }
        }
        using var cpuOptions = options();
        try
        {
            return new Opened(open(cpuOptions), "CPU");
        }
        catch (OnnxRuntimeException e)
        {
            throw badModel(e);
        }
    }
}
