using Microsoft.ML.Runtime;

namespace Allauzen.ML.Core;

/// <summary>What every catalog extension of Allauzen.ML does before building its estimator, written once.</summary>
internal static class CatalogEntry
{
    /// <summary>
    /// The environment of <paramref name="catalog"/> (see <see cref="CatalogEnvironment.Get"/>: throws on a null or unknown
    /// catalog) with the Allauzen model loaders registered in it, so that what the estimator builds saves and loads.
    /// </summary>
    internal static IHostEnvironment Environment(object catalog)
    {
        var env = CatalogEnvironment.Get(catalog);
        Allauzen.ML.Persistence.NativeBridge.TryRegister(env);
        return env;
    }
}
