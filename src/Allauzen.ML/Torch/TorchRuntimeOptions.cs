namespace Allauzen.ML.Torch;

/// <summary>
/// Settings of the native libtorch runtime, applied by <see cref="TorchRuntime.Configure"/>. The
/// environment settings (<see cref="WaitPolicy"/>, <see cref="ReproducibleMatrixProducts"/>) are read by
/// the native libraries when they load, so they take effect only if configured before the first Allauzen
/// component (or TorchSharp call) loads libtorch; <see cref="IntraOpThreads"/> can change at any time.
/// A variable already set in the process environment (<c>OMP_WAIT_POLICY</c>, <c>MKL_CBWR</c>) always wins.
/// </summary>
public sealed class TorchRuntimeOptions
{
    /// <summary>
    /// Threads libtorch uses inside one operation (<c>torch.set_num_threads</c>). Default 0: libtorch's
    /// own default (the number of physical cores, or <c>OMP_NUM_THREADS</c> when set). A trainer's
    /// <c>NumberOfThreads</c> option overrides it while that trainer runs.
    /// </summary>
    public int IntraOpThreads { get; set; }

    /// <summary>How idle OpenMP workers wait. Default <see cref="OpenMPWaitPolicy.Passive"/>.</summary>
    public OpenMPWaitPolicy WaitPolicy { get; set; } = OpenMPWaitPolicy.Passive;

    /// <summary>
    /// Makes oneMKL's matrix products bit-reproducible within one machine whatever the memory layout of
    /// the operands (<c>MKL_CBWR=AUTO,STRICT</c>: oneMKL keeps the fastest code path for the CPU but no
    /// longer lets the alignment of a buffer choose between kernels with different rounding). Default
    /// true: scoring the same rows twice, or after a save and load, gives the same bits. Results still
    /// differ in the last bits between CPUs with different instruction sets.
    /// </summary>
    public bool ReproducibleMatrixProducts { get; set; } = true;

    internal TorchRuntimeOptions Clone() => (TorchRuntimeOptions)MemberwiseClone();
}
