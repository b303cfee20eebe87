namespace Allauzen.ML.Core;

/// <summary>
/// Reads the <see cref="IHostEnvironment"/> behind an ML.NET catalog object
/// (<c>mlContext.Model</c>, <c>mlContext.Transforms</c>, <c>mlContext.MulticlassClassification.Trainers</c>, ...).
/// </summary>
/// <remarks>
/// ML.NET does not expose it publicly: every catalog implements the internal interface
/// <c>Microsoft.ML.Data.IInternalCatalog</c> explicitly, whose only member is
/// <c>IHostEnvironment Environment { get; }</c>; <see cref="MlNetInternals"/> reads it.
/// The environment is ML.NET's <c>LocalEnvironment</c>, not the <see cref="MLContext"/>; messages sent to its
/// channels reach <see cref="MLContext.Log"/>.
/// </remarks>
internal static class CatalogEnvironment
{
    /// <summary>Returns the environment of <paramref name="catalog"/>.</summary>
    /// <param name="catalog">An ML.NET catalog object, or an <see cref="IHostEnvironment"/> (returned as is).</param>
    /// <exception cref="ArgumentNullException"><paramref name="catalog"/> is null.</exception>
    /// <exception cref="NotSupportedException">The object is not an ML.NET catalog, or the installed ML.NET
    /// version no longer has the internal member (the message names the version).</exception>
    public static IHostEnvironment Get(object catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        if (catalog is IHostEnvironment env)
            return env;
        return MlNetInternals.CatalogEnvironment(catalog) ?? throw new NotSupportedException(
            $"{catalog.GetType().FullName} is not an ML.NET catalog (it does not implement Microsoft.ML.Data.IInternalCatalog); " +
            "pass a catalog of an MLContext such as mlContext.Model or mlContext.MulticlassClassification.Trainers.");
    }

    /// <summary>
    /// Returns the <see cref="MLContext"/> to use with public ML.NET APIs that need one: the environment itself
    /// when it is an <see cref="MLContext"/>, otherwise a new <see cref="MLContext"/>. A catalog's environment is
    /// normally ML.NET's internal <c>LocalEnvironment</c>, so the second case is the usual one; the new context
    /// has its own log, which callers must forward if they need to.
    /// </summary>
    public static MLContext ContextOrNew(IHostEnvironment env) => env as MLContext ?? new MLContext();
}
