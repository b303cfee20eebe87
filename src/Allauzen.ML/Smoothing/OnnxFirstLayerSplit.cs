using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using AttributeType = Onnx.AttributeProto.Types.AttributeType;

namespace Allauzen.ML.Smoothing;

/// <summary>
/// An ONNX classifier split at its first layer when that layer is linear with constant parameters: y = W·x + b with
/// W [h, d] and b [h] read from the initializers, and a "rest" model (same opsets, the remaining nodes unchanged) whose
/// single input is y and whose single output is the classifier's output. <see cref="FirstLayerNoise"/> then draws the
/// noise of the first layer's output instead of the input's.
/// </summary>
/// <remarks>
/// Matched first layers (after any chain of <c>Identity</c> nodes), on the nodes the chosen output depends on:
/// <list type="bullet">
/// <item><c>Gemm(x, B[, C])</c> with transA = 0, any transB, alpha and beta: Y = alpha·x·op(B) + beta·C, so W = alpha·op(B)ᵀ [h, d]
/// and b = beta·C;</item>
/// <item><c>MatMul(x, B)</c> with B [d, h], optionally followed by <c>Add</c> of a constant bias (either operand order).</item>
/// </list>
/// B and C (or the bias) must be float initializers stored in the file, C broadcastable to [h] ([], [1], [1, 1], [h] or
/// [1, h]); x must feed that node only, and no node with a subgraph may be present. Anything else gives null (the caller
/// keeps the direct path).
/// </remarks>
internal sealed class OnnxFirstLayerSplit
{
    private const string OnnxDomain = "ai.onnx";

    private OnnxFirstLayerSplit(float[] weight, float[] bias, int width, int features, byte[] rest, string restInput, long restParameters)
    {
        RestParameters = restParameters;
        Weight = weight;
        Bias = bias;
        Width = width;
        Features = features;
        Rest = rest;
        RestInput = restInput;
    }

    /// <summary>W, row-major [h, d]: row j holds the weights of output j.</summary>
    public float[] Weight { get; }

    /// <summary>b [h] (zeros when the layer has none).</summary>
    public float[] Bias { get; }

    /// <summary>h: the first layer's width.</summary>
    public int Width { get; }

    /// <summary>d: the input's width.</summary>
    public int Features { get; }

    /// <summary>The serialized rest model: input <see cref="RestInput"/> float [N, h], the classifier's output.</summary>
    public byte[] Rest { get; }

    /// <summary>Name of the rest model's input (the first layer's output tensor).</summary>
    public string RestInput { get; }

    /// <summary>Number of values in the rest model's initializers: about its multiply–adds per sample when it is dense.</summary>
    public long RestParameters { get; }

    /// <summary>
    /// The split of <paramref name="model"/> (serialized ModelProto) at its first layer, for input tensor
    /// <paramref name="input"/> and output <paramref name="output"/>, or null when the pattern does not match or h ≥ d.
    /// </summary>
    public static OnnxFirstLayerSplit? TryCreate(byte[] model, string input, string output, int featureCount)
    {
        if (!BitConverter.IsLittleEndian)
            return null; // raw_data is little-endian; not worth a byte-swapping path
        ModelProto proto;
        try
        {
            proto = ModelProto.Parser.ParseFrom(model);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
        var graph = proto.Graph;
        if (graph is null || graph.Output.All(o => o.Name != output))
            return null;
        var nodes = graph.Node;
        // A subgraph (If, Loop, Scan) may read any outer tensor by name: the analysis below would not see it.
        if (nodes.Any(n => n.Attribute.Any(a => a.Type is AttributeType.Graph or AttributeType.Graphs || a.G is not null || a.Graphs.Count > 0)))
            return null;
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < nodes.Count; i++)
        {
            foreach (var o in nodes[i].Output)
            {
                if (o.Length > 0 && !producer.TryAdd(o, i))
                    return null; // not a valid graph
            }
        }
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer)
            initializers[t.Name] = t;
        // The nodes the output depends on.
        var needed = new bool[nodes.Count];
        var stack = new Stack<string>([output]);
        while (stack.Count > 0)
        {
            if (!producer.TryGetValue(stack.Pop(), out int i) || needed[i])
                continue;
            needed[i] = true;
            foreach (var name in nodes[i].Input)
                stack.Push(name);
        }
        List<int> Consumers(string tensor) =>
            [.. Enumerable.Range(0, nodes.Count).Where(i => needed[i]).SelectMany(i => nodes[i].Input.Where(n => n == tensor).Select(_ => i))];
        if (initializers.ContainsKey(input))
            return null;

        // Through Identity nodes to the first real node.
        var removed = new HashSet<int>();
        string x = input;
        int first;
        while (true)
        {
            var consumers = Consumers(x);
            if (consumers.Count != 1 || x == output)
                return null;
            first = consumers[0];
            var node = nodes[first];
            if (!IsDefaultDomain(node) || node.OpType != "Identity")
                break;
            removed.Add(first);
            x = node.Output[0];
        }
        var layer = nodes[first];
        if (!IsDefaultDomain(layer) || layer.Input.Count < 1 || layer.Input[0] != x || layer.Output.Count != 1)
            return null;
        removed.Add(first);
        float[] weight, bias;
        int h, d = featureCount;
        string y = layer.Output[0];
        if (layer.OpType == "Gemm" && layer.Input.Count is 2 or 3)
        {
            float alpha = 1, beta = 1;
            long transA = 0, transB = 0;
            foreach (var a in layer.Attribute)
            {
                switch (a.Name)
                {
                    case "alpha": alpha = a.F; break;
                    case "beta": beta = a.F; break;
                    case "transA": transA = a.I; break;
                    case "transB": transB = a.I; break;
                    default: return null;
                }
            }
            if (transA != 0 || Matrix(initializers, layer.Input[1]) is not { } m)
                return null;
            var (b, rows, cols) = m;
            (h, int inner) = transB != 0 ? (rows, cols) : (cols, rows);
            if (inner != d)
                return null;
            weight = new float[(long)h * d];
            for (int j = 0; j < h; j++)
            {
                for (int i = 0; i < d; i++)
                    weight[(long)j * d + i] = alpha * (transB != 0 ? b[(long)j * d + i] : b[(long)i * h + j]);
            }
            bias = new float[h];
            if (layer.Input.Count == 3 && layer.Input[2].Length > 0)
            {
                if (Vector(initializers, layer.Input[2], h) is not { } c)
                    return null;
                for (int j = 0; j < h; j++)
                    bias[j] = beta * c[j];
            }
        }
        else if (layer.OpType == "MatMul" && layer.Input.Count == 2)
        {
            if (Matrix(initializers, layer.Input[1]) is not { } m || m.Rows != d)
                return null;
            var b = m.Values;
            h = m.Cols;
            weight = new float[(long)h * d];
            for (int j = 0; j < h; j++)
            {
                for (int i = 0; i < d; i++)
                    weight[(long)j * d + i] = b[(long)i * h + j];
            }
            bias = new float[h];
            // An Add of a constant bias right after it is part of the layer.
            var next = Consumers(y);
            if (next.Count == 1 && y != output && nodes[next[0]] is { OpType: "Add" } add && IsDefaultDomain(add) && add.Input.Count == 2 && add.Output.Count == 1)
            {
                string other = add.Input[0] == y ? add.Input[1] : add.Input[0];
                if (other != y && Vector(initializers, other, h) is { } c)
                {
                    bias = c;
                    removed.Add(next[0]);
                    y = add.Output[0];
                }
            }
        }
        else
            return null;
        if (h < 1 || h >= d)
            return null;

        // The rest: the needed nodes but the removed ones, reading y.
        var restNodes = Enumerable.Range(0, nodes.Count).Where(i => needed[i] && !removed.Contains(i)).Select(i => nodes[i].Clone()).ToList();
        if (restNodes.Any(n => n.Input.Contains(input)))
            return null; // the input is read again further on (e.g. a skip connection)
        string restInput = y;
        var rest = new GraphProto { Name = (graph.Name.Length > 0 ? graph.Name : "graph") + "_after_first_layer" };
        if (y == output)
        {
            // A single linear layer: the rest is the identity.
            restInput = y + "_first_layer";
            while (producer.ContainsKey(restInput) || initializers.ContainsKey(restInput) || graph.Input.Any(v => v.Name == restInput))
                restInput += "_";
            restNodes = [new NodeProto { OpType = "Identity", Name = restInput + "_identity", Input = { restInput }, Output = { output } }];
        }
        rest.Node.AddRange(restNodes);
        rest.Input.Add(new ValueInfoProto
        {
            Name = restInput,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor
                {
                    ElemType = (int)TensorProto.Types.DataType.Float,
                    Shape = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimParam = "N" }, new TensorShapeProto.Types.Dimension { DimValue = h } } },
                },
            },
        });
        var used = restNodes.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        foreach (var v in graph.Input)
        {
            if (v.Name == input)
                continue;
            if (!initializers.ContainsKey(v.Name))
                return null; // another input without a default: the base model could not run anyway
            if (used.Contains(v.Name))
                rest.Input.Add(v.Clone()); // IR < 4 lists initializers among the inputs
        }
        rest.Initializer.AddRange(graph.Initializer.Where(t => used.Contains(t.Name)).Select(t => t.Clone()));
        rest.SparseInitializer.AddRange(graph.SparseInitializer.Where(t => t.Values is { } v && used.Contains(v.Name)).Select(t => t.Clone()));
        rest.Output.Add(graph.Output.First(o => o.Name == output).Clone());
        var restModel = new ModelProto
        {
            IrVersion = proto.IrVersion,
            ProducerName = proto.ProducerName,
            ProducerVersion = proto.ProducerVersion,
            Domain = proto.Domain,
            ModelVersion = proto.ModelVersion,
            Graph = rest,
        };
        restModel.OpsetImport.AddRange(proto.OpsetImport.Select(o => o.Clone()));
        restModel.Functions.AddRange(proto.Functions.Select(f => f.Clone()));
        long restParameters = rest.Initializer.Sum(t => t.Dims.Aggregate(1L, (a, b) => a * b));
        return new OnnxFirstLayerSplit(weight, bias, h, d, restModel.ToByteArray(), restInput, restParameters);
    }

    private static bool IsDefaultDomain(NodeProto node) => node.Domain is "" or OnnxDomain;

    /// <summary>The float values of an initializer stored in the file, or null (other type, external data, size mismatch).</summary>
    private static float[]? Floats(Dictionary<string, TensorProto> initializers, string name)
    {
        if (!initializers.TryGetValue(name, out var t) || t.DataType != (int)TensorProto.Types.DataType.Float
            || t.DataLocation == TensorProto.Types.DataLocation.External || t.Segment is not null)
            return null;
        long count = 1;
        foreach (long dim in t.Dims)
        {
            if (dim < 0)
                return null;
            count *= dim;
        }
        float[] values;
        if (t.RawData.Length > 0)
        {
            if (t.RawData.Length != count * sizeof(float))
                return null;
            values = MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray();
        }
        else
        {
            if (t.FloatData.Count != count)
                return null;
            values = [.. t.FloatData];
        }
        return values;
    }

    /// <summary>A 2-D float initializer as (row-major values, rows, columns), or null.</summary>
    private static (float[] Values, int Rows, int Cols)? Matrix(Dictionary<string, TensorProto> initializers, string name)
    {
        if (Floats(initializers, name) is not { } values || initializers[name].Dims is not { Count: 2 } dims || dims[0] > int.MaxValue || dims[1] > int.MaxValue)
            return null;
        return (values, (int)dims[0], (int)dims[1]);
    }

    /// <summary>A float initializer that broadcasts to a row of <paramref name="h"/> values ([], [1], [1, 1], [h], [1, h]), as that row.</summary>
    private static float[]? Vector(Dictionary<string, TensorProto> initializers, string name, int h)
    {
        if (Floats(initializers, name) is not { } values)
            return null;
        var dims = initializers[name].Dims;
        if (dims.Count > 2 || (dims.Count == 2 && dims[0] != 1))
            return null;
        if (values.Length == 1)
            return Enumerable.Repeat(values[0], h).ToArray();
        return values.Length == h ? values : null;
    }
}
