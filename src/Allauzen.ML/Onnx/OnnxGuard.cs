using Allauzen.ML.Core;
using Allauzen.ML.Persistence;

namespace Allauzen.ML.Onnx;

/// <summary>The error ML.NET's own <c>ConvertToOnnx</c> gets when it reaches an Allauzen transformer.</summary>
internal static class OnnxGuard
{
    /// <summary>
    /// A <see cref="NotSupportedException"/> naming the component and <c>ml.Model.ExportToOnnx</c>, which
    /// exports ML.NET's transformers and Allauzen's into one graph.
    /// </summary>
    internal static NotSupportedException ConvertToOnnxNotSupported(AllauzenTransformerBase transformer)
    {
        string component = transformer is IAllauzenTransformer a ? $"'{a.ComponentName}' ({transformer.GetType().Name})" : transformer.GetType().Name;
        string how = transformer is IOnnxExportable
            ? "Use ml.Model.ExportToOnnx(model, data, stream) from Allauzen.ML instead: it exports ML.NET's transformers and Allauzen's into one graph and checks it."
            : "This component has no ONNX form (ml.Model.ExportToOnnx names the components that do); score it with ML.NET after ml.Model.Load.";
        return new NotSupportedException(
            $"ML.NET's ConvertToOnnx cannot export the Allauzen component {component}: it would silently start the graph after it "
            + $"and take its output columns as inputs. {how} To export only ML.NET transformers applied to Allauzen output, give "
            + "ConvertToOnnx input data that is not an Allauzen transformer's output (for example the scored rows materialized with ml.Data.LoadFromEnumerable).");
    }
}
