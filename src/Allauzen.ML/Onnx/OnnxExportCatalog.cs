using Allauzen.ML.Core;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;

namespace Microsoft.ML;

/// <summary>
/// ONNX export of ML.NET models that contain Allauzen.ML transformers: <c>mlContext.Model.ExportToOnnx(...)</c>.
/// </summary>
/// <remarks>
/// <para>Use this instead of ML.NET's <c>ConvertToOnnx</c>, which silently drops every transformer it does not know
/// (and everything before it). The name differs on purpose, so that code importing both namespaces cannot fall into
/// ML.NET's method by accident.</para>
/// <para>The graph follows ML.NET's conventions, so <c>mlContext.Transforms.ApplyOnnxModel</c> reads it like one
/// written by ML.NET: inputs are named after the input columns the model uses; every visible output column
/// <c>c</c> is a graph output named <c>c.output</c> (ApplyOnnxModel maps it back to column <c>c</c>); vector columns
/// are [N, size] tensors and scalar columns [N, 1]; key columns are uint32; slot names (class names of
/// <c>Score</c>) travel in <c>mlnet.c.SlotNames</c> nodes. Columns whose type has no ONNX form (such as DateTime)
/// are left out.</para>
/// <para>Models with ML.NET transformers are written at opset min(<c>opset</c>, 12), the highest ML.NET's converter
/// (Microsoft.ML.OnnxConverter 0.23.1) supports. ML.NET's converter runs in a private <see cref="MLContext"/>,
/// because a catalog does not expose its own; its warnings are forwarded to this context's log.</para>
/// </remarks>
public static class AllauzenOnnxCatalog
{
    /// <summary>Exports <paramref name="model"/> to ONNX (opset 12) and writes it to <paramref name="output"/>.</summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted model; chains, nested chains, ML.NET and Allauzen transformers.</param>
    /// <param name="inputSample">Data with the model's input schema (rows are rarely read).</param>
    /// <param name="output">The stream receiving the model. It is written once, after the whole model has been
    /// built, so nothing is written when the export fails.</param>
    /// <exception cref="NotSupportedException">A transformer cannot be expressed in ONNX; the message names it.</exception>
    public static void ExportToOnnx(this ModelOperationsCatalog catalog, ITransformer model, IDataView inputSample, Stream output) =>
        ExportToOnnx(catalog, model, inputSample, OnnxExporter.DefaultOpset, output);

    /// <summary>Exports <paramref name="model"/> to ONNX at the given opset and writes it to <paramref name="output"/>.</summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted model.</param>
    /// <param name="inputSample">Data with the model's input schema.</param>
    /// <param name="opset">The <c>ai.onnx</c> opset, 9 to 23; capped to 12 when the model contains ML.NET transformers.</param>
    /// <param name="output">The stream receiving the model, written once after the model has been built.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="opset"/> is outside 9–23.</exception>
    /// <exception cref="NotSupportedException">A transformer cannot be expressed in ONNX; the message names it.</exception>
    public static void ExportToOnnx(this ModelOperationsCatalog catalog, ITransformer model, IDataView inputSample, int opset, Stream output)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite)
            throw new ArgumentException("The output stream is not writable.", nameof(output));
        var bytes = new OnnxExporter(CatalogEnvironment.Get(catalog)).ExportBytes(model, inputSample, opset);
        output.Write(bytes);
        output.Flush();
    }

    /// <summary>Exports <paramref name="model"/> to ONNX (opset 12) into the file <paramref name="path"/>.</summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted model.</param>
    /// <param name="inputSample">Data with the model's input schema.</param>
    /// <param name="path">Target file; its folder must exist. It is replaced atomically (written to a temporary file in the same directory,
    /// then renamed), so an existing file is left untouched when the export fails.</param>
    /// <exception cref="NotSupportedException">A transformer cannot be expressed in ONNX; the message names it.</exception>
    public static void ExportToOnnx(this ModelOperationsCatalog catalog, ITransformer model, IDataView inputSample, string path) =>
        ExportToOnnx(catalog, model, inputSample, OnnxExporter.DefaultOpset, path);

    /// <summary>Exports <paramref name="model"/> to ONNX at the given opset into the file <paramref name="path"/> (atomically).</summary>
    /// <param name="catalog">The model operations catalog (<c>mlContext.Model</c>).</param>
    /// <param name="model">The fitted model.</param>
    /// <param name="inputSample">Data with the model's input schema.</param>
    /// <param name="opset">The <c>ai.onnx</c> opset, 9 to 23; capped to 12 when the model contains ML.NET transformers.</param>
    /// <param name="path">Target file in an existing folder, replaced atomically (temporary file + rename).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="opset"/> is outside 9–23.</exception>
    /// <exception cref="NotSupportedException">A transformer cannot be expressed in ONNX; the message names it.</exception>
    public static void ExportToOnnx(this ModelOperationsCatalog catalog, ITransformer model, IDataView inputSample, int opset, string path)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var bytes = new OnnxExporter(CatalogEnvironment.Get(catalog)).ExportBytes(model, inputSample, opset);
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }
}
