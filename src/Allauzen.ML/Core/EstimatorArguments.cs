using Microsoft.ML.Runtime;

namespace Allauzen.ML.Core;

/// <summary>The argument checks every estimator constructor starts with, written once.</summary>
internal static class EstimatorArguments
{
    /// <summary>
    /// Throws <see cref="ArgumentNullException"/> when <paramref name="env"/> or <paramref name="options"/> is null, then
    /// runs <paramref name="validate"/> on the options (it throws naming the bad option); returns the options.
    /// </summary>
    internal static TOptions Validated<TOptions>(IHostEnvironment env, TOptions options, Action<TOptions> validate)
        where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        validate(options);
        return options;
    }
}
