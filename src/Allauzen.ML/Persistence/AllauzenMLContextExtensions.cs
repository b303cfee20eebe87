using System.Runtime.CompilerServices;
using Allauzen.ML.Persistence;
using Microsoft.ML.Runtime;

namespace Microsoft.ML;

/// <summary>Connects Allauzen.ML to an <see cref="MLContext"/>.</summary>
public static class AllauzenMLContextExtensions
{
    private static readonly ConditionalWeakTable<MLContext, object> Warned = new();

    /// <summary>
    /// Registers the loaders of all Allauzen components in this context. Loading does not need it:
    /// <c>new MLContext().Model.Load(path, out _)</c> reads models with Allauzen parts with no
    /// registration call, because ML.NET registers the loader assembly stored in the model (Allauzen.ML
    /// carries ML.NET's loader metadata, written at build time). Every Allauzen catalog method calls it;
    /// call it yourself only to check the persistence bridge early (it logs a warning to
    /// <see cref="MLContext.Log"/> when the bridge does not work with the ML.NET in use) or to register
    /// components added at run time. Calling it again is harmless.
    /// </summary>
    /// <param name="ml">The context.</param>
    /// <returns><paramref name="ml"/>, for chaining.</returns>
    /// <remarks>
    /// <para>Registration reaches a few ML.NET internals (Allauzen.ML is tested against ML.NET 5.0.1).
    /// If they do not work with the ML.NET version in use, this method logs a warning to
    /// <see cref="MLContext.Log"/> instead of failing, and saving a model that contains an Allauzen
    /// component through <c>ml.Model.Save</c> then throws a <see cref="NotSupportedException"/>
    /// explaining why; <see cref="AllauzenModel.Save(MLContext, ITransformer, DataViewSchema, string)"/>
    /// and <see cref="AllauzenModel.Load(MLContext, string, out DataViewSchema)"/> work with any version.</para>
    /// <para>When the bridge works, an Allauzen component's save only fails for an invalid model
    /// (for example an unregistered component). <c>ml.Model.Save(model, schema, path)</c> writes the
    /// target file directly and leaves a partial file when any component's save throws; use
    /// <see cref="AllauzenModelSaveCatalog.SaveAtomic"/> if the target must stay intact.</para>
    /// </remarks>
    public static MLContext UseAllauzen(this MLContext ml)
    {
        ArgumentNullException.ThrowIfNull(ml);
        if (NativeBridge.SelfTest() is { } error)
        {
            bool first = false;
            Warned.GetValue(ml, _ =>
            {
                first = true;
                return new object();
            });
            if (first)
            {
                var host = ((IHostEnvironment)ml).Register("Allauzen");
                using var channel = host.Start("UseAllauzen");
                channel.Warning(MessageSensitivity.None, error);
            }
            return ml;
        }
        NativeBridge.Register(ml);
        return ml;
    }
}
