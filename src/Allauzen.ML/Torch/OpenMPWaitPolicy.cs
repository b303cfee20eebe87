namespace Allauzen.ML.Torch;

/// <summary>How libtorch's OpenMP worker threads wait for work (the <c>OMP_WAIT_POLICY</c> setting).</summary>
public enum OpenMPWaitPolicy
{
    /// <summary>
    /// Idle workers sleep at once (<c>OMP_WAIT_POLICY=PASSIVE</c>). They cost no CPU time between
    /// parallel regions, so libtorch does not slow down other processes, or itself, on a shared machine.
    /// </summary>
    Passive,

    /// <summary>
    /// Idle workers spin (<c>OMP_WAIT_POLICY=ACTIVE</c>): lowest latency on a machine reserved for this
    /// process; on shared cores the spinning competes with every other process.
    /// </summary>
    Active,

    /// <summary>The OpenMP runtime's own default (spin a while, then sleep): the variable is left unset.</summary>
    RuntimeDefault,
}
