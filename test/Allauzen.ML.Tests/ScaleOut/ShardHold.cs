using Allauzen.ML.Orleans;
using Orleans.Hosting;
using Orleans.Runtime;
using Orleans.TestingHost;

namespace Allauzen.ML.Tests.ScaleOut;

/// <summary>
/// Test silos whose shard calls can be held: once <see cref="Arm"/> names a silo, the first
/// <see cref="IShardRunnerGrain.Run"/> call that silo receives never starts its shard and stays in flight until
/// <see cref="Release"/> (or the silo dies), so a test can kill a silo with a shard certainly running on it instead of
/// timing the kill from progress reports. Unarmed, the filter passes every call through.
/// </summary>
public sealed class ShardHold : ISiloConfigurator
{
    private static readonly Lock Gate = new();
    private static string? s_silo;
    private static TaskCompletionSource<string>? s_held;
    private static CancellationTokenSource? s_release;

    /// <inheritdoc/>
    public void Configure(ISiloBuilder siloBuilder) => siloBuilder.AddIncomingGrainCallFilter<ShardHoldFilter>();

    /// <summary>Holds the next shard call on the silo <paramref name="siloAddress"/> (its parsable address); the task completes with the held grain's id.</summary>
    public static Task<string> Arm(string siloAddress)
    {
        lock (Gate)
        {
            if (s_silo is not null)
                throw new InvalidOperationException($"ShardHold is already armed for {s_silo}.");
            s_silo = siloAddress;
            s_held = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            s_release = new CancellationTokenSource();
            return s_held.Task;
        }
    }

    /// <summary>Lets a held call end (it fails with <see cref="OperationCanceledException"/>) and disarms.</summary>
    public static void Release()
    {
        lock (Gate)
        {
            s_release?.Cancel();
            s_release?.Dispose();
            (s_silo, s_held, s_release) = (null, null, null);
        }
    }

    /// <summary>The token a call on <paramref name="silo"/> waits on, when it is the one to hold (at most one per arming).</summary>
    internal static CancellationToken? TryHold(string silo, string grain)
    {
        lock (Gate)
        {
            if (s_silo != silo || s_held is null || s_release is null || s_held.Task.IsCompleted)
                return null;
            s_held.TrySetResult(grain);
            return s_release.Token;
        }
    }
}

/// <summary>The silo side of <see cref="ShardHold"/>.</summary>
internal sealed class ShardHoldFilter(ILocalSiloDetails silo) : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod?.DeclaringType == typeof(IShardRunnerGrain) && context.MethodName == nameof(IShardRunnerGrain.Run)
            && ShardHold.TryHold(silo.SiloAddress.ToParsableString(), context.TargetId.ToString()) is { } release)
        {
            await Task.Delay(Timeout.Infinite, release);
        }
        await context.Invoke();
    }
}
