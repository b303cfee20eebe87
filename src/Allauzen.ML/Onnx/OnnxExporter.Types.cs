using System.Globalization;
using System.Reflection;
using System.Text;
using Allauzen.ML.Persistence;
using Onnx;

namespace Allauzen.ML.Onnx;

// Column types as ONNX tensor types, and the names used in messages.
internal sealed partial class OnnxExporter
{
    // ---------------------------------------------------------------- types and names

    /// <summary>ML.NET's mapping from a column type to an ONNX tensor type: the item's raw type (keys → their
    /// unsigned raw type), shape [-1, 1] for scalars and [-1, dims...] for vectors (-1 for unknown sizes).</summary>
    internal static bool TryGetElementType(DataViewType itemType, out OnnxElementType type)
    {
        var raw = itemType.RawType;
        type = raw == typeof(float) ? OnnxElementType.Float
            : raw == typeof(double) ? OnnxElementType.Double
            : raw == typeof(bool) ? OnnxElementType.Bool
            : raw == typeof(ReadOnlyMemory<char>) ? OnnxElementType.String
            : raw == typeof(sbyte) ? OnnxElementType.Int8
            : raw == typeof(byte) ? OnnxElementType.UInt8
            : raw == typeof(short) ? OnnxElementType.Int16
            : raw == typeof(ushort) ? OnnxElementType.UInt16
            : raw == typeof(int) ? OnnxElementType.Int32
            : raw == typeof(uint) ? OnnxElementType.UInt32
            : raw == typeof(long) ? OnnxElementType.Int64
            : raw == typeof(ulong) ? OnnxElementType.UInt64
            : 0;
        return type != 0;
    }

    private static bool TryGetTensorType(DataViewType columnType, out TensorType tensorType)
    {
        tensorType = default;
        if (columnType is VectorDataViewType vector)
        {
            if (!TryGetElementType(vector.ItemType, out var et))
                return false;
            var dims = new long[vector.Dimensions.Length + 1];
            dims[0] = -1;
            for (int i = 0; i < vector.Dimensions.Length; i++)
                dims[i + 1] = vector.Dimensions[i] > 0 ? vector.Dimensions[i] : -1;
            if (vector.Dimensions.Length == 0)
                dims = [-1, -1];
            tensorType = new TensorType(et, dims);
            return true;
        }
        if (columnType is PrimitiveDataViewType && TryGetElementType(columnType, out var e))
        {
            tensorType = new TensorType(e, [-1, 1]);
            return true;
        }
        return false;
    }

    internal static string Describe(ITransformer t) =>
        t is IAllauzenTransformer a ? $"{a.ComponentName} ({FriendlyName(t.GetType())})" : FriendlyName(t.GetType());

    private static string FriendlyName(Type type)
    {
        if (!type.IsGenericType)
            return type.Name;
        var sb = new StringBuilder();
        var name = type.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        sb.Append(tick > 0 ? name[..tick] : name).Append('<');
        sb.AppendJoin(", ", type.GetGenericArguments().Select(FriendlyName));
        return sb.Append('>').ToString();
    }
}
