using System.Reflection;
using Microsoft.ML.Runtime;

namespace Allauzen.ML.Persistence;

/// <summary>
/// The registry of Allauzen loaders: payload signature → component name, transformer type and load
/// function. Both persistence routes read it: the native bridge (<c>ml.Model.Load</c>, which
/// needs no registration call) and <see cref="AllauzenModel.Load(MLContext, string, out DataViewSchema)"/>.
/// </summary>
/// <remarks>
/// Every component declares an <see cref="AllauzenLoaderAttribute"/> beside its transformer (read by
/// <see cref="BuiltIn"/>). Tests may add test-only components with
/// <see cref="Register"/>. The registry is process-wide and thread-safe.
/// </remarks>
internal static class AllauzenLoaders
{
    /// <summary>
    /// The components shipped with Allauzen.ML: one <see cref="AllauzenLoaderAttribute"/> each, declared beside
    /// the transformer, whose <c>static Load(IHostEnvironment env, ModelPayloadReader payload)</c> reverses
    /// <see cref="IAllauzenTransformer.SavePayload"/> (it calls <see cref="ModelPayloadReader.RequireVersion"/> first).
    /// </summary>
    private static IEnumerable<Loader> BuiltIn()
    {
        foreach (var declared in typeof(AllauzenLoaders).Assembly.GetCustomAttributes(typeof(AllauzenLoaderAttribute), false).Cast<AllauzenLoaderAttribute>())
        {
            // The components' Load methods are internal: enumerate the type's own methods (this assembly's types only).
            var method = declared.TransformerType.GetRuntimeMethods().FirstOrDefault(m => m.IsStatic && m.Name == "Load"
                    && m.GetParameters().Select(p => p.ParameterType).SequenceEqual([typeof(IHostEnvironment), typeof(ModelPayloadReader)]))
                ?? throw new InvalidOperationException(
                    $"{declared.TransformerType.FullName} is declared as an Allauzen component but has no static Load(IHostEnvironment, ModelPayloadReader).");
            var load = (Func<IHostEnvironment, ModelPayloadReader, ITransformer>)Delegate.CreateDelegate(
                typeof(Func<IHostEnvironment, ModelPayloadReader, ITransformer>), method);
            yield return new Loader(declared.Signature, declared.ComponentName, declared.TransformerType, load);
        }
    }

    /// <summary>Signature of the native bridge's self-test probe; no component may use it.</summary>
    internal const string ReservedProbeSignature = "ALZPROBE";

    private static readonly object Gate = new();
    private static readonly Dictionary<string, Loader> BySignature = new(StringComparer.OrdinalIgnoreCase);
    private static Loader[] _snapshot = [];

    static AllauzenLoaders()
    {
        foreach (var loader in BuiltIn())
            Register(loader.Signature, loader.ComponentName, loader.TransformerType, loader.Load);
    }

    /// <summary>One registered component.</summary>
    /// <param name="Signature">The 8-character payload signature (<see cref="IAllauzenTransformer.LoaderSignature"/>).</param>
    /// <param name="ComponentName">The component name (<see cref="IAllauzenTransformer.ComponentName"/>).</param>
    /// <param name="TransformerType">The transformer type the load function returns.</param>
    /// <param name="Load">Rebuilds the transformer from its payload.</param>
    internal sealed record Loader(
        string Signature,
        string ComponentName,
        Type TransformerType,
        Func<IHostEnvironment, ModelPayloadReader, ITransformer> Load);

    /// <summary>All registered loaders, in registration order.</summary>
    public static IReadOnlyList<Loader> All
    {
        get
        {
            lock (Gate)
                return _snapshot;
        }
    }

    /// <summary>
    /// Registers a loader. Registering the same signature again with the same transformer type is a
    /// no-op (the first load function stays); with another type it throws. Signatures are compared
    /// ignoring case, as ML.NET's component catalog does.
    /// </summary>
    /// <exception cref="ArgumentException">The signature is not 8 printable ASCII characters, or the
    /// type is not an <see cref="ITransformer"/>.</exception>
    /// <exception cref="InvalidOperationException">The signature is taken by another type.</exception>
    public static void Register(string signature, string componentName, Type transformerType,
        Func<IHostEnvironment, ModelPayloadReader, ITransformer> load)
    {
        PayloadFormat.CheckSignature(signature, nameof(signature));
        ArgumentException.ThrowIfNullOrWhiteSpace(componentName);
        ArgumentNullException.ThrowIfNull(transformerType);
        ArgumentNullException.ThrowIfNull(load);
        if (string.Equals(signature, ReservedProbeSignature, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"Signature '{signature}' is reserved for the native bridge's self-test.", nameof(signature));
        if (!typeof(ITransformer).IsAssignableFrom(transformerType))
            throw new ArgumentException($"{transformerType.FullName} does not implement ITransformer.", nameof(transformerType));

        lock (Gate)
        {
            if (BySignature.TryGetValue(signature, out var existing))
            {
                if (existing.TransformerType == transformerType)
                    return;
                throw new InvalidOperationException(
                    $"Loader signature '{signature}' is already registered for component '{existing.ComponentName}' ({existing.TransformerType.FullName}); "
                    + $"'{componentName}' ({transformerType.FullName}) needs another signature.");
            }
            var loader = new Loader(signature, componentName, transformerType, load);
            BySignature.Add(signature, loader);
            _snapshot = [.. _snapshot, loader];
        }
    }

    /// <summary>The loader registered for <paramref name="signature"/>, or null.</summary>
    public static Loader? TryGet(string signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        lock (Gate)
            return BySignature.GetValueOrDefault(signature);
    }

    /// <summary>
    /// Finds the loader for <paramref name="signature"/> or throws an
    /// <see cref="InvalidOperationException"/> naming the component and the signature.
    /// </summary>
    internal static Loader Get(string signature, string componentName, string source)
    {
        if (TryGet(signature) is { } loader)
            return loader;
        throw new InvalidOperationException(
            $"No Allauzen loader is registered for component '{componentName}' (signature '{signature}') found in '{source}'. "
            + "The model was saved by a build of Allauzen.ML that has this component; load it with that build or a newer one.");
    }
}
