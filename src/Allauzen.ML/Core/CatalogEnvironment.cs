using System.Collections.Concurrent;
using System.Reflection;

namespace Allauzen.ML.Core;

/// <summary>
/// Reads the <see cref="IHostEnvironment"/> behind an ML.NET catalog object
/// (<c>mlContext.Model</c>, <c>mlContext.Transforms</c>, <c>mlContext.MulticlassClassification.Trainers</c>, ...).
/// </summary>
/// <remarks>
/// ML.NET does not expose it publicly: every catalog implements the internal interface
/// <c>Microsoft.ML.Data.IInternalCatalog</c> explicitly, whose only member is
/// <c>IHostEnvironment Environment { get; }</c>. This class is the only place that reflects on it.
/// The environment is ML.NET's <c>LocalEnvironment</c>, not the <see cref="MLContext"/>; messages sent to its
/// channels reach <see cref="MLContext.Log"/>.
/// </remarks>
internal static class CatalogEnvironment
{
    /// <summary>Full name of ML.NET's internal catalog interface (Microsoft.ML.Data, 5.0.1).</summary>
    internal const string InternalCatalogInterface = "Microsoft.ML.Data.IInternalCatalog";

    private static readonly ConcurrentDictionary<Type, PropertyInfo?> Properties = new();

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

        var property = Properties.GetOrAdd(catalog.GetType(), FindProperty);
        if (property is null)
        {
            bool interfaceExists = typeof(MLContext).Assembly.GetType(InternalCatalogInterface) is not null;
            throw new NotSupportedException(interfaceExists
                ? $"{catalog.GetType().FullName} is not an ML.NET catalog (it does not implement {InternalCatalogInterface}); " +
                  "pass a catalog of an MLContext such as mlContext.Model or mlContext.MulticlassClassification.Trainers."
                : $"Cannot read the environment of {catalog.GetType().FullName}: the internal interface " +
                  $"{InternalCatalogInterface}.Environment was not found in {MlNetVersion}. Allauzen.ML was built " +
                  "against Microsoft.ML 5.0.1; use that version.");
        }

        object? value;
        try
        {
            value = property.GetValue(catalog);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw new NotSupportedException(
                $"Reading {InternalCatalogInterface}.Environment of {catalog.GetType().FullName} failed ({MlNetVersion}).", e.InnerException);
        }
        return value as IHostEnvironment ?? throw new NotSupportedException(
            $"{InternalCatalogInterface}.Environment of {catalog.GetType().FullName} returned " +
            $"{value?.GetType().FullName ?? "null"} instead of an IHostEnvironment ({MlNetVersion}); Allauzen.ML was built against Microsoft.ML 5.0.1.");
    }

    /// <summary>
    /// Returns the <see cref="MLContext"/> to use with public ML.NET APIs that need one: the environment itself
    /// when it is an <see cref="MLContext"/>, otherwise a new <see cref="MLContext"/>. A catalog's environment is
    /// normally ML.NET's internal <c>LocalEnvironment</c>, so the second case is the usual one; the new context
    /// has its own log, which callers must forward if they need to.
    /// </summary>
    public static MLContext ContextOrNew(IHostEnvironment env) => env as MLContext ?? new MLContext();

    /// <summary>"Microsoft.ML x.y.z" of the loaded assembly, for error messages.</summary>
    internal static string MlNetVersion
    {
        get
        {
            var asm = typeof(MLContext).Assembly;
            var version = asm.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? asm.GetName().Version?.ToString() ?? "unknown";
            int plus = version.IndexOf('+', StringComparison.Ordinal);
            return "Microsoft.ML " + (plus > 0 ? version[..plus] : version);
        }
    }

    private static PropertyInfo? FindProperty(Type type)
    {
        var iface = type.GetInterfaces().FirstOrDefault(i => i.FullName == InternalCatalogInterface);
        return iface?.GetProperty("Environment", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
    }
}
