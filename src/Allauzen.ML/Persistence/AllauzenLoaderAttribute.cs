namespace Allauzen.ML.Persistence;

/// <summary>
/// Declares a component's loader, beside its transformer:
/// <c>[assembly: AllauzenLoader(typeof(MlpTransformer), MlpTransformer.Signature, "Mlp")]</c>.
/// The transformer type must declare <c>static T Load(IHostEnvironment env, ModelPayloadReader payload)</c>
/// (T assignable to <see cref="Microsoft.ML.ITransformer"/>), which reverses
/// <see cref="IAllauzenTransformer.SavePayload"/>.
/// </summary>
/// <remarks>
/// Two readers: <see cref="AllauzenLoaders"/> builds its registry from these attributes at run time, and
/// the build's LoaderWeaver (<c>build/LoaderWeaver</c>) turns each into ML.NET's own loader metadata
/// (an assembly-level <c>LoadableClass</c> attribute and a <c>Create(IHostEnvironment, ModelLoadContext)</c>
/// method, both internal to ML.NET and therefore not writable in C#). ML.NET registers those when it loads
/// a model whose parts name Allauzen.ML as their loader assembly, so <c>ml.Model.Load</c> works in a fresh
/// <see cref="Microsoft.ML.MLContext"/> with no registration call.
/// </remarks>
/// <param name="transformerType">The transformer type.</param>
/// <param name="signature">Its 8-character payload signature (<see cref="IAllauzenTransformer.LoaderSignature"/>).</param>
/// <param name="componentName">Its component name (<see cref="IAllauzenTransformer.ComponentName"/>), a valid C# identifier.</param>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
internal sealed class AllauzenLoaderAttribute(Type transformerType, string signature, string componentName) : Attribute
{
    /// <summary>The transformer type.</summary>
    public Type TransformerType { get; } = transformerType;

    /// <summary>The 8-character payload signature.</summary>
    public string Signature { get; } = signature;

    /// <summary>The component name.</summary>
    public string ComponentName { get; } = componentName;
}
