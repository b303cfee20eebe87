using System.Reflection;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using AttributeType = Onnx.AttributeProto.Types.AttributeType;

namespace Allauzen.ML.Onnx;

/// <summary>
/// Element types of ONNX tensors (the values are those of <c>TensorProto.DataType</c>).
/// </summary>
internal enum OnnxElementType
{
    /// <summary>32-bit float (<c>Single</c>).</summary>
    Float = 1,

    /// <summary>Unsigned 8-bit integer.</summary>
    UInt8 = 2,

    /// <summary>Signed 8-bit integer.</summary>
    Int8 = 3,

    /// <summary>Unsigned 16-bit integer.</summary>
    UInt16 = 4,

    /// <summary>Signed 16-bit integer.</summary>
    Int16 = 5,

    /// <summary>Signed 32-bit integer.</summary>
    Int32 = 6,

    /// <summary>Signed 64-bit integer.</summary>
    Int64 = 7,

    /// <summary>UTF-8 string (ML.NET <c>Text</c>).</summary>
    String = 8,

    /// <summary>Boolean.</summary>
    Bool = 9,

    /// <summary>64-bit float.</summary>
    Double = 11,

    /// <summary>Unsigned 32-bit integer (ML.NET key columns).</summary>
    UInt32 = 12,

    /// <summary>Unsigned 64-bit integer.</summary>
    UInt64 = 13,
}

/// <summary>
/// A thin builder over OnnxSharp's generated protobuf classes. Every tensor and node name it creates
/// goes through <see cref="UniqueName"/>, which adds the builder's prefix (for example
/// <c>allauzen_3_</c>) and a numeric suffix when needed, so graphs built by different builders sharing
/// one name registry can be concatenated without collisions.
/// </summary>
/// <remarks>
/// Graph inputs and outputs keep the exact names given to <see cref="AddInput"/> and
/// <see cref="AddOutput"/>. Dimensions equal to -1 are written as the symbolic dimension <c>N</c>.
/// Nodes must be added in topological order (inputs before the nodes reading them).
/// </remarks>
internal sealed class OnnxGraphBuilder
{
    /// <summary>The ONNX-ML operator domain (LabelEncoder, Scaler, ...), used by ML.NET's exporter.</summary>
    public const string MlDomain = "ai.onnx.ml";

    /// <summary>Version of <see cref="MlDomain"/> imported when one of its operators is used (ML.NET uses 2).</summary>
    public const int MlDomainVersion = 2;

    private readonly GraphProto _graph = new() { Name = "allauzen" };
    private readonly ISet<string> _names;
    private readonly Dictionary<string, long> _domains = new(StringComparer.Ordinal);
    private readonly List<(string Key, string Value)> _metadata = [];

    /// <summary>Creates a builder.</summary>
    /// <param name="opset">Version of the default <c>ai.onnx</c> domain the nodes are written for (7 to 23).</param>
    /// <param name="prefix">Prefix of every generated name.</param>
    /// <param name="nameRegistry">Names already taken. Pass the same set to several builders whose graphs
    /// will be merged; the builder adds every name it creates to it. Null: a private registry.</param>
    public OnnxGraphBuilder(int opset = 12, string prefix = "allauzen_", ISet<string>? nameRegistry = null)
    {
        if (opset is < 7 or > 23)
            throw new ArgumentOutOfRangeException(nameof(opset), opset, "The ONNX opset must be between 7 and 23.");
        ArgumentNullException.ThrowIfNull(prefix);
        Opset = opset;
        Prefix = prefix;
        _names = nameRegistry ?? new HashSet<string>(StringComparer.Ordinal);
    }

    /// <summary>Version of the default (<c>ai.onnx</c>) operator set the graph targets.</summary>
    public int Opset { get; }

    /// <summary>Prefix added to every generated tensor and node name.</summary>
    public string Prefix { get; }

    /// <summary>The graph under construction (nodes, initializers, inputs, outputs).</summary>
    internal GraphProto Graph => _graph;

    /// <summary>Operator domains other than <c>ai.onnx</c> used so far, with their versions.</summary>
    internal IReadOnlyDictionary<string, long> Domains => _domains;

    /// <summary>Returns a name not used yet in the registry: the prefix, the hint, and a suffix if needed.</summary>
    public string UniqueName(string hint)
    {
        ArgumentException.ThrowIfNullOrEmpty(hint);
        string baseName = Prefix + hint;
        string name = baseName;
        for (int i = 1; !_names.Add(name); i++)
            name = baseName + "_" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return name;
    }

    /// <summary>Marks <paramref name="name"/> as taken (an externally defined tensor such as a graph input).</summary>
    /// <returns>False when the name was already taken.</returns>
    public bool Reserve(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return _names.Add(name);
    }

    /// <summary>Adds a FLOAT initializer and returns its (unique) name.</summary>
    public string Initializer(string nameHint, ReadOnlySpan<float> data, params long[] dims)
        => NumericInitializer(nameHint, OnnxElementType.Float, data, dims, static (t, v) => t.FloatData.Add(v));

    /// <summary>Adds an INT64 initializer and returns its (unique) name.</summary>
    public string Initializer(string nameHint, ReadOnlySpan<long> data, params long[] dims)
        => NumericInitializer(nameHint, OnnxElementType.Int64, data, dims, static (t, v) => t.Int64Data.Add(v));

    /// <summary>Adds an INT32 initializer and returns its (unique) name.</summary>
    public string Initializer(string nameHint, ReadOnlySpan<int> data, params long[] dims)
        => NumericInitializer(nameHint, OnnxElementType.Int32, data, dims, static (t, v) => t.Int32Data.Add(v));

    /// <summary>A numeric initializer: raw little-endian bytes, or the typed field on a big-endian machine.</summary>
    private string NumericInitializer<T>(string nameHint, OnnxElementType type, ReadOnlySpan<T> data, long[] dims,
        Action<TensorProto, T[]> typedField) where T : unmanaged
    {
        var t = NewInitializer(nameHint, type, data.Length, dims);
        if (BitConverter.IsLittleEndian)
            t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data));
        else
            typedField(t, data.ToArray());
        return t.Name;
    }

    /// <summary>Adds a STRING initializer (UTF-8) and returns its (unique) name.</summary>
    public string Initializer(string nameHint, IReadOnlyList<string> data, params long[] dims)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Any(s => s is null))
            throw new ArgumentException("Null string in initializer data.", nameof(data));
        var t = NewInitializer(nameHint, OnnxElementType.String, data.Count, dims);
        foreach (var s in data)
            t.StringData.Add(ByteString.CopyFromUtf8(s));
        return t.Name;
    }

    private TensorProto NewInitializer(string nameHint, OnnxElementType type, int length, long[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        long count = 1;
        foreach (var d in dims)
        {
            if (d < 0)
                throw new ArgumentOutOfRangeException(nameof(dims), d, "Initializer dimensions must be non-negative.");
            count *= d;
        }
        if (count != length)
            throw new ArgumentException(
                $"Initializer '{nameHint}': the dimensions [{string.Join(", ", dims)}] hold {count} values but {length} were given.", nameof(dims));
        var tensor = new TensorProto { Name = UniqueName(nameHint), DataType = (int)type };
        tensor.Dims.Add(dims);
        _graph.Initializer.Add(tensor);
        return tensor;
    }

    /// <summary>Adds a single-output node of the default domain and returns its output tensor name.</summary>
    /// <param name="opType">Operator, e.g. <c>Gemm</c>.</param>
    /// <param name="inputs">Input tensor names (an empty string marks an omitted optional input).</param>
    /// <param name="outputHint">Hint for the output name.</param>
    /// <param name="attributes">Attributes: int/long, float/double, string, int[]/long[], float[], string[] or a <see cref="TensorProto"/>.</param>
    public string Node(string opType, IReadOnlyList<string> inputs, string outputHint, params (string Name, object Value)[] attributes) =>
        AddNode("", opType, inputs, [outputHint], attributes)[0];

    /// <summary>Adds a multi-output node of the default domain and returns its output tensor names.</summary>
    public string[] Node(string opType, IReadOnlyList<string> inputs, string[] outputHints, params (string Name, object Value)[] attributes) =>
        AddNode("", opType, inputs, outputHints, attributes);

    /// <summary>Adds a node of another operator domain (e.g. <see cref="MlDomain"/>) and returns its output names.</summary>
    public string[] NodeInDomain(string domain, string opType, IReadOnlyList<string> inputs, string[] outputHints, params (string Name, object Value)[] attributes) =>
        AddNode(domain, opType, inputs, outputHints, attributes);

    private string[] AddNode(string domain, string opType, IReadOnlyList<string> inputs, string[] outputHints, (string Name, object Value)[] attributes)
    {
        ArgumentException.ThrowIfNullOrEmpty(opType);
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(outputHints);
        ArgumentNullException.ThrowIfNull(attributes);
        if (outputHints.Length == 0)
            throw new ArgumentException($"Node {opType} needs at least one output.", nameof(outputHints));
        var node = new NodeProto { OpType = opType, Domain = domain, Name = UniqueName(opType) };
        foreach (var input in inputs)
            node.Input.Add(input ?? throw new ArgumentException($"Node {opType}: null input name.", nameof(inputs)));
        var outputs = new string[outputHints.Length];
        for (int i = 0; i < outputs.Length; i++)
        {
            outputs[i] = UniqueName(outputHints[i]);
            node.Output.Add(outputs[i]);
        }
        foreach (var (name, value) in attributes)
            node.Attribute.Add(MakeAttribute(opType, name, value));
        AddNode(node);
        return outputs;
    }

    /// <summary>Appends an already built node (used when merging graphs); registers its domain.</summary>
    internal void AddNode(NodeProto node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.Domain.Length > 0 && node.Domain != "ai.onnx")
            RequireDomain(node.Domain, node.Domain == MlDomain ? MlDomainVersion : 1);
        _graph.Node.Add(node);
    }

    /// <summary>Appends an already built initializer (used when merging graphs).</summary>
    internal void AddInitializer(TensorProto tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        _graph.Initializer.Add(tensor);
    }

    /// <summary>Imports <paramref name="domain"/> at least at <paramref name="version"/>.</summary>
    internal void RequireDomain(string domain, long version)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if (domain.Length == 0 || domain == "ai.onnx")
            return;
        _domains[domain] = _domains.TryGetValue(domain, out var v) ? Math.Max(v, version) : version;
    }

    private static AttributeProto MakeAttribute(string opType, string name, object value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return value switch
        {
            int i => new AttributeProto { Name = name, Type = AttributeType.Int, I = i },
            long l => new AttributeProto { Name = name, Type = AttributeType.Int, I = l },
            float f => new AttributeProto { Name = name, Type = AttributeType.Float, F = f },
            double d => new AttributeProto { Name = name, Type = AttributeType.Float, F = (float)d },
            string s => new AttributeProto { Name = name, Type = AttributeType.String, S = ByteString.CopyFromUtf8(s) },
            long[] ls => new AttributeProto { Name = name, Type = AttributeType.Ints, Ints = { ls } },
            int[] ints => new AttributeProto { Name = name, Type = AttributeType.Ints, Ints = { ints.Select(i => (long)i) } },
            float[] fs => new AttributeProto { Name = name, Type = AttributeType.Floats, Floats = { fs } },
            string[] ss => new AttributeProto { Name = name, Type = AttributeType.Strings, Strings = { ss.Select(ByteString.CopyFromUtf8) } },
            TensorProto t => new AttributeProto { Name = name, Type = AttributeType.Tensor, T = t },
            _ => throw new ArgumentException(
                $"Node {opType}: attribute '{name}' has unsupported type {value?.GetType().Name ?? "null"} " +
                "(use int, long, float, string, long[], int[], float[], string[] or TensorProto).", nameof(value)),
        };
    }

    /// <summary>Declares a graph input named exactly <paramref name="name"/>.</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="type">Element type.</param>
    /// <param name="dims">Shape; -1 marks a dynamic dimension.</param>
    public void AddInput(string name, OnnxElementType type, long[] dims)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _names.Add(name);
        _graph.Input.Add(MakeValueInfo(name, type, dims));
    }

    /// <summary>Declares a graph output named exactly <paramref name="name"/> (it must be produced by a node).</summary>
    /// <param name="name">Tensor name.</param>
    /// <param name="type">Element type.</param>
    /// <param name="dims">Shape; -1 marks a dynamic dimension.</param>
    public void AddOutput(string name, OnnxElementType type, long[] dims)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _names.Add(name);
        _graph.Output.Add(MakeValueInfo(name, type, dims));
    }

    /// <summary>A value info with tensor type <paramref name="type"/> and shape <paramref name="dims"/> (-1 → symbolic <c>N</c>).</summary>
    internal static ValueInfoProto MakeValueInfo(string name, OnnxElementType type, long[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            if (d < -1)
                throw new ArgumentOutOfRangeException(nameof(dims), d, "Dimensions must be -1 (dynamic) or non-negative.");
            shape.Dim.Add(d == -1
                ? new TensorShapeProto.Types.Dimension { DimParam = "N" }
                : new TensorShapeProto.Types.Dimension { DimValue = d });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    /// <summary>Sets a metadata property of the model (replaces an earlier value for the same key).</summary>
    public void SetMetadata(string key, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        _metadata.RemoveAll(m => m.Key == key);
        _metadata.Add((key, value));
    }

    /// <summary>The ONNX IR version matching an opset of the default domain.</summary>
    internal static long IrVersionFor(int opset) => opset switch
    {
        <= 8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        _ => 11,
    };

    /// <summary>Builds the model: a copy of the graph, the opset imports and the metadata.</summary>
    public ModelProto Build(string producerName)
    {
        ArgumentException.ThrowIfNullOrEmpty(producerName);
        var model = new ModelProto
        {
            // ai.onnx.ml version 2 came with IR version 6 (ONNX 1.6).
            IrVersion = _domains.ContainsKey(MlDomain) ? Math.Max(IrVersionFor(Opset), 6) : IrVersionFor(Opset),
            ProducerName = producerName,
            ProducerVersion = typeof(OnnxGraphBuilder).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                ?? typeof(OnnxGraphBuilder).Assembly.GetName().Version?.ToString() ?? "0",
            Domain = "allauzen.ml",
            ModelVersion = 1,
            Graph = _graph.Clone(),
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (domain, version) in _domains.OrderBy(d => d.Key, StringComparer.Ordinal))
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        foreach (var (key, value) in _metadata)
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }
}
