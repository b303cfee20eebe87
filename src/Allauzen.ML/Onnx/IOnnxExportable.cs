namespace Allauzen.ML.Onnx;

/// <summary>
/// Implemented by Allauzen transformers that can be written as ONNX nodes. The exporter
/// (<c>ml.Model.ExportToOnnx</c>, see <see cref="OnnxExporter"/>) calls <see cref="EmitOnnx"/> with the tensors that
/// hold the transformer's input columns and collects the tensors of the columns it adds.
/// </summary>
/// <remarks>
/// An Allauzen transformer (<see cref="Persistence.IAllauzenTransformer"/>) that does not implement this interface
/// makes the export fail with a <see cref="NotSupportedException"/> naming its component.
/// </remarks>
internal interface IOnnxExportable
{
    /// <summary>
    /// Emits the nodes computing this transformer's added columns.
    /// </summary>
    /// <param name="graph">The graph being built (opset in <see cref="OnnxGraphBuilder.Opset"/>, 12 when the model
    /// also contains ML.NET transformers). Create every initializer and node through it so names stay unique.</param>
    /// <param name="columns">Column name → tensor name, for every visible column of the input schema that has an
    /// ONNX type. Float vector columns are tensors of shape [N, size]; scalar columns have shape [N, 1]; other item
    /// types follow ML.NET's mapping (Text → string, Boolean → bool, key → uint32 holding ML.NET's 1-based key
    /// value, 0 = missing). Read the input columns from it and set every added column to a tensor created by this
    /// call (for example <c>columns["Score"] = tensor</c>), with the element type and shape of the column's type in
    /// the output schema: the exporter declares graph outputs from that schema and throws if an added column was
    /// not set.</param>
    void EmitOnnx(OnnxGraphBuilder graph, IDictionary<string, string> columns);
}
