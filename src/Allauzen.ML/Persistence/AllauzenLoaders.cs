using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Allauzen.ML.Persistence;

/// <summary>
/// The registry of Allauzen loaders: payload signature → component name, transformer type and load
/// function. Both persistence routes read it: the native bridge (<c>ml.Model.Load</c> after
/// <c>ml.UseAllauzen()</c>) and <see cref="AllauzenModel.Load(MLContext, string, out DataViewSchema)"/>.
/// </summary>
/// <remarks>
/// Every component adds one line to <see cref="BuiltIn"/>. Tests may add test-only components with
/// <see cref="Register"/>. The registry is process-wide and thread-safe.
/// </remarks>
internal static class AllauzenLoaders
{
    /// <summary>
    /// The components shipped with Allauzen.ML, one entry each:
    /// <c>new("ALZ-MLP_", "Mlp", typeof(MlpTransformer), MlpTransformer.Load)</c>, where
    /// <c>Load(IHostEnvironment env, ModelPayloadReader payload)</c> reverses
    /// <see cref="IAllauzenTransformer.SavePayload"/> (call <see cref="ModelPayloadReader.RequireVersion"/> first).
    /// </summary>
    private static readonly Loader[] BuiltIn =
    [
        new(Mlp.MlpTransformer.Signature, "Mlp", typeof(Mlp.MlpTransformer), Mlp.MlpTransformer.Load),
        new(Lipschitz.LipschitzClassifierTransformer.Signature, "LipschitzClassifier", typeof(Lipschitz.LipschitzClassifierTransformer), Lipschitz.LipschitzClassifierTransformer.Load),
        new(Smoothing.RandomizedSmoothingTransformer.LoaderSignature, "RandomizedSmoothing", typeof(Smoothing.RandomizedSmoothingTransformer), Smoothing.RandomizedSmoothingTransformer.Load),
        new(Smoothing.SmoothingSamplerTransformer.LoaderSignature, "SmoothingSampler", typeof(Smoothing.SmoothingSamplerTransformer), Smoothing.SmoothingSamplerTransformer.Load),
        new(Smoothing.SmoothingStatisticsCertifierTransformer.LoaderSignature, "SmoothingStatisticsCertifier", typeof(Smoothing.SmoothingStatisticsCertifierTransformer), Smoothing.SmoothingStatisticsCertifierTransformer.Load),
        new(Speech.SslFeaturizerTransformer.Signature, "SslFeaturizer", typeof(Speech.SslFeaturizerTransformer), Speech.SslFeaturizerTransformer.Load),
        new(Foton.FotonTransformer.Signature, "Foton", typeof(Foton.FotonTransformer), Foton.FotonTransformer.Load),
        new(Diachronic.DiachronicEmbeddingsTransformer.Signature, "DiachronicEmbeddings", typeof(Diachronic.DiachronicEmbeddingsTransformer), Diachronic.DiachronicEmbeddingsTransformer.Load),
    ];

    /// <summary>Signature of the native bridge's self-test probe; no component may use it.</summary>
    internal const string ReservedProbeSignature = "ALZPROBE";

    private static readonly object Gate = new();
    private static readonly Dictionary<string, Loader> BySignature = new(StringComparer.OrdinalIgnoreCase);
    private static Loader[] _snapshot = [];

    static AllauzenLoaders()
    {
        foreach (var loader in BuiltIn)
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
