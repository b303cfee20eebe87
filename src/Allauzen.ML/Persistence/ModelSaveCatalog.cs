using Allauzen.ML.Persistence;

namespace Microsoft.ML;

/// <summary>Crash-safe saving of ML.NET models (with or without Allauzen parts): <c>mlContext.Model.SaveAtomic(...)</c>.</summary>
public static class AllauzenModelSaveCatalog
{
    /// <summary>
    /// Saves <paramref name="model"/> like <c>ml.Model.Save(model, inputSchema, path)</c>, but never leaves a partial
    /// file: the model is written to a temporary file in the target's folder, flushed to disk, renamed over
    /// <paramref name="path"/>, and the folder is flushed. When <paramref name="path"/> is a symbolic link, the link is
    /// kept and its final target is replaced, with the target's permission bits.
    /// </summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted model.</param>
    /// <param name="inputSchema">The schema of the data the model was trained on; may be null.</param>
    /// <param name="path">The model file; its folder must exist.</param>
    /// <exception cref="Exception">Whatever a component's save or the file system throws (a full disk, a read-only
    /// folder); the previous file at <paramref name="path"/>, if any, is then byte-identical and no temporary file remains.</exception>
    public static void SaveAtomic(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema? inputSchema, string path)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        AtomicFile.Write(path, stream => catalog.Save(model, inputSchema, stream));
    }
}
