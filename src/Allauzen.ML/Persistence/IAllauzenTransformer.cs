using Microsoft.ML;

namespace Allauzen.ML.Persistence;

/// <summary>
/// Implemented by every Allauzen transformer: the payload it writes and the signature its loader is
/// registered under. The payload format is ours (see <see cref="ModelPayloadWriter"/>), so the same
/// bytes go into an ML.NET zip (native bridge) or into the composite zip of <see cref="AllauzenModel"/>.
/// </summary>
/// <remarks>
/// A component does three things:
/// <list type="number">
/// <item>implements <c>void ICanSaveModel.Save(ModelSaveContext ctx) => NativeBridge.Save(ctx, this);</c>;</item>
/// <item>provides <c>static ITransformer Load(IHostEnvironment env, ModelPayloadReader payload)</c>,
/// which calls <see cref="ModelPayloadReader.RequireVersion"/> with its <see cref="PayloadVersion"/> and
/// then reads back what <see cref="SavePayload"/> wrote (keep old versions readable);</item>
/// <item>adds one line to the entry list at the top of <see cref="AllauzenLoaders"/>.</item>
/// </list>
/// Save must not depend on the data: a transformer read back by its loader must save again to an
/// equivalent payload (use <see cref="ModelPayloadWriter.WriteColumnInfo(string, PersistedColumn)"/>
/// for column information kept from training).
/// </remarks>
internal interface IAllauzenTransformer : ITransformer
{
    /// <summary>Human-readable component name used in error messages, e.g. "Mlp".</summary>
    string ComponentName { get; }

    /// <summary>
    /// Exactly 8 printable ASCII characters, unique per component (compared ignoring case, as ML.NET
    /// does), e.g. "ALZ-MLP_". Never change it once models have been saved.
    /// </summary>
    string LoaderSignature { get; }

    /// <summary>Payload version written by this build; loaders accept versions ≤ this.</summary>
    int PayloadVersion { get; }

    /// <summary>
    /// Writes options (<see cref="ModelPayloadWriter.WriteJson{T}"/>), schema information
    /// (<see cref="ModelPayloadWriter.WriteColumnInfo(string, Microsoft.ML.DataViewSchema.Column)"/>) and named
    /// tensors. It runs completely before anything reaches the output file, so it may throw; it should not
    /// for a valid, trained transformer.
    /// </summary>
    void SavePayload(ModelPayloadWriter writer);
}
