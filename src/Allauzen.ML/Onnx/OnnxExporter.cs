using System.Globalization;
using System.Text;
using Allauzen.ML.Core;
using Allauzen.ML.Persistence;
using Google.Protobuf;
using Onnx;

namespace Allauzen.ML.Onnx;

/// <summary>
/// Exports a fitted ML.NET model that may contain Allauzen transformers to one ONNX graph.
/// </summary>
/// <remarks>
/// <para>ML.NET's <c>ConvertToOnnx</c> stops silently at any view it did not create itself, so a chain containing
/// our transformers would lose everything before them. This exporter therefore:</para>
/// <list type="number">
/// <item>flattens the model (nested <see cref="TransformerChain{TLastTransformer}"/>s) and splits it into maximal
/// runs of ML.NET transformers ("native") and of <see cref="IOnnxExportable"/> transformers ("ours");</item>
/// <item>exports each native run with ML.NET's converter on the view the run sees, and emits each of our runs with
/// an <see cref="OnnxGraphBuilder"/>;</item>
/// <item>merges the graphs by column name: a column→tensor map is threaded through the runs; ML.NET's graph inputs
/// (one per column, named after it) are wired to the current tensors of those columns and its <c>&lt;col&gt;.output</c>
/// tensors become the new tensors of the columns. Every internal name gets a per-run prefix
/// (<c>mlnet_&lt;k&gt;_</c> or <c>allauzen_&lt;k&gt;_</c>).</item>
/// </list>
/// <para>The merged graph follows ML.NET's conventions so that <c>ApplyOnnxModel</c> consumes it like a graph written
/// by ML.NET: one input per column of the input schema that the graph uses, named after the column; one output
/// <c>&lt;col&gt;.output</c> per visible column of the final schema (<c>ApplyOnnxModel</c> strips <c>.output</c>);
/// shapes [N, size] for vectors and [N, 1] for scalars; key columns as their raw type (uint32); slot names
/// carried by <c>mlnet.&lt;col&gt;.SlotNames</c> LabelEncoder nodes. Columns whose type has no ONNX form (for example
/// <c>DateTime</c>) are neither inputs nor outputs.</para>
/// <para>Files: this one (entry, split, state, our runs, graph outputs and pruning), <c>OnnxExporter.NativeSegments.cs</c>
/// (ML.NET's runs and the graph merge) and <c>OnnxExporter.Types.cs</c> (column types and names).</para>
/// <para>Nothing is dropped silently: an Allauzen transformer without ONNX support, a transformer ML.NET cannot
/// export, or an ML.NET graph that does not cover its run all raise <see cref="NotSupportedException"/>.</para>
/// </remarks>
internal sealed partial class OnnxExporter
{
    /// <summary>Opset used when none is given; also the highest one ML.NET's converter (0.23.1) writes.</summary>
    public const int DefaultOpset = 12;

    /// <summary>Lowest opset accepted (ML.NET's converter minimum).</summary>
    public const int MinOpset = 9;

    /// <summary>Highest opset accepted for graphs without ML.NET transformers.</summary>
    public const int MaxOpset = 23;

    /// <summary>Highest opset ML.NET's converter supports; chains with native transformers are capped to it.</summary>
    public const int MlNetMaxOpset = 12;

    /// <summary>Producer name written in the model.</summary>
    public const string ProducerName = "Allauzen.ML";

    /// <summary>Suffix ML.NET gives graph outputs (<c>ApplyOnnxModel</c> removes it from column names).</summary>
    public const string OutputSuffix = ".output";

    private readonly IHostEnvironment _env;
    private readonly MLContext _converter;

    /// <summary>Creates an exporter logging to <paramref name="env"/>.</summary>
    /// <param name="env">Environment of the caller's catalog. ML.NET's converter runs in it when it is an
    /// <see cref="MLContext"/>, otherwise (the usual case: a catalog's <c>LocalEnvironment</c>) in a private
    /// <see cref="MLContext"/> whose warnings are forwarded to <paramref name="env"/>.</param>
    public OnnxExporter(IHostEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        _env = env;
        _converter = CatalogEnvironment.ContextOrNew(env);
    }

    /// <summary>Exports <paramref name="model"/> as it applies to data with the schema of <paramref name="inputSample"/>.</summary>
    /// <param name="model">The fitted model (a chain, a single transformer, nested chains).</param>
    /// <param name="inputSample">Data with the model's input schema; ML.NET's converter may read a few rows.</param>
    /// <param name="opset">Requested <c>ai.onnx</c> opset (9–23); capped to 12 when the model contains ML.NET transformers.</param>
    /// <exception cref="NotSupportedException">A part of the model cannot be expressed in ONNX.</exception>
    public ModelProto Export(ITransformer model, IDataView inputSample, int opset = DefaultOpset)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputSample);
        if (opset is < MinOpset or > MaxOpset)
            throw new ArgumentOutOfRangeException(nameof(opset), opset, $"The ONNX opset must be between {MinOpset} and {MaxOpset}.");

        var segments = Split(Flatten(model));
        bool hasNative = segments.Any(s => s.Native);
        int effectiveOpset = hasNative ? Math.Min(opset, MlNetMaxOpset) : opset;

        var state = new State(inputSample.Schema, effectiveOpset);
        var host = _env.Register("Allauzen.OnnxExport");
        using var ch = host.Start("ExportToOnnx");
        if (effectiveOpset != opset)
            ch.Info(MessageSensitivity.None, "{0}", $"The model contains ML.NET transformers: exporting at opset {effectiveOpset} instead of {opset}.");

        IDataView view = inputSample;
        for (int k = 0; k < segments.Count; k++)
        {
            var segment = segments[k];
            view = segment.Native
                ? MergeNative(k, segment.Transformers, view, state, ch)
                : EmitOurs(k, segment.Transformers, view, state);
        }

        AddOutputsAndInputs(view.Schema, state);
        state.Merged.SetMetadata("allauzen.onnx.segments", string.Join(" | ", segments.Select(s =>
            (s.Native ? "mlnet[" : "allauzen[") + string.Join(", ", s.Transformers.Select(Describe)) + "]")));
        return state.Merged.Build(ProducerName);
    }

    /// <summary>Exports and serializes in memory (nothing is written if the export fails).</summary>
    public byte[] ExportBytes(ITransformer model, IDataView inputSample, int opset = DefaultOpset) =>
        Export(model, inputSample, opset).ToByteArray();

    // ---------------------------------------------------------------- flatten and split

    /// <summary>The model's transformers in application order, nested chains expanded.</summary>
    internal static List<ITransformer> Flatten(ITransformer model)
    {
        var list = new List<ITransformer>();
        Add(model);
        return list;

        void Add(ITransformer t)
        {
            // Ours first: an Allauzen transformer is a leaf even if it happens to be enumerable.
            if (t is not (IOnnxExportable or IAllauzenTransformer) && t is IEnumerable<ITransformer> chain)
            {
                foreach (var inner in chain)
                    Add(inner ?? throw new ArgumentException("The model contains a null transformer.", nameof(model)));
            }
            else
            {
                list.Add(t);
            }
        }
    }

    internal sealed record Segment(bool Native, List<ITransformer> Transformers);

    /// <summary>Maximal runs of native and of exportable Allauzen transformers.</summary>
    /// <exception cref="NotSupportedException">An Allauzen transformer does not implement <see cref="IOnnxExportable"/>.</exception>
    internal static List<Segment> Split(IReadOnlyList<ITransformer> transformers)
    {
        var segments = new List<Segment>();
        foreach (var t in transformers)
        {
            bool native;
            if (t is IOnnxExportable)
                native = false;
            else if (t is IAllauzenTransformer a)
                throw new NotSupportedException(
                    $"The Allauzen component '{a.ComponentName}' ({FriendlyName(t.GetType())}) cannot be exported to ONNX: " +
                    "it has no ONNX form (it does not implement ONNX export, typically because its prediction is not a fixed " +
                    "graph of tensor operations). Score this model with ML.NET instead, or export only the part of the chain before it.");
            else
                native = true;

            if (segments.Count > 0 && segments[^1].Native == native)
                segments[^1].Transformers.Add(t);
            else
                segments.Add(new Segment(native, [t]));
        }
        return segments;
    }

    // ---------------------------------------------------------------- state

    private readonly record struct TensorType(OnnxElementType ElementType, long[] Dims);

    private sealed class State
    {
        public State(DataViewSchema inputSchema, int opset)
        {
            InputSchema = inputSchema;
            Merged = new OnnxGraphBuilder(opset, "allauzen_", Names);
            foreach (var c in inputSchema)
                Names.Add(c.Name);
            foreach (var c in inputSchema)
            {
                if (c.IsHidden || !TryGetTensorType(c.Type, out var tt))
                    continue;
                Columns[c.Name] = c.Name;
                Types[c.Name] = tt;
                InputTensors.Add(c.Name);
            }
        }

        /// <summary>Every name used in the merged graph (tensors and nodes).</summary>
        public HashSet<string> Names { get; } = new(StringComparer.Ordinal);

        public DataViewSchema InputSchema { get; }

        public OnnxGraphBuilder Merged { get; }

        /// <summary>Column name → tensor holding its current value.</summary>
        public Dictionary<string, string> Columns { get; } = new(StringComparer.Ordinal);

        /// <summary>Tensor name → element type and shape, for tensors that hold columns.</summary>
        public Dictionary<string, TensorType> Types { get; } = new(StringComparer.Ordinal);

        /// <summary>Tensors that are original input columns (declared as graph inputs if used).</summary>
        public HashSet<string> InputTensors { get; } = new(StringComparer.Ordinal);

        /// <summary>Tensors defined by nodes or initializers of the merged graph.</summary>
        public HashSet<string> Defined { get; } = new(StringComparer.Ordinal);

        public bool IsAvailable(string tensor) => Defined.Contains(tensor) || InputTensors.Contains(tensor);

        /// <summary>Keeps only the visible ONNX-typed columns of <paramref name="schema"/> in the map.</summary>
        public void Prune(DataViewSchema schema)
        {
            var keep = new HashSet<string>(schema.Where(c => !c.IsHidden && TryGetTensorType(c.Type, out _)).Select(c => c.Name), StringComparer.Ordinal);
            foreach (var name in Columns.Keys.Where(n => !keep.Contains(n)).ToList())
                Columns.Remove(name);
        }
    }

    // ---------------------------------------------------------------- our segments

    private static IDataView EmitOurs(int k, List<ITransformer> transformers, IDataView view, State state)
    {
        var builder = new OnnxGraphBuilder(state.Merged.Opset, "allauzen_" + k.ToString(CultureInfo.InvariantCulture) + "_", state.Names);
        foreach (var t in transformers)
        {
            var inputSchema = view.Schema;
            var output = t.Transform(view);
            var before = new Dictionary<string, string>(state.Columns, StringComparer.Ordinal);

            ((IOnnxExportable)t).EmitOnnx(builder, state.Columns);

            foreach (var c in output.Schema)
            {
                if (c.IsHidden || !TryGetTensorType(c.Type, out var tt))
                    continue;
                bool added = c.Index >= inputSchema.Count || inputSchema[c.Index].Name != c.Name;
                if (!added)
                    continue;
                if (!state.Columns.TryGetValue(c.Name, out var tensor)
                    || (before.TryGetValue(c.Name, out var old) && old == tensor))
                    throw new InvalidOperationException(
                        $"{Describe(t)} did not set the ONNX tensor of its output column '{c.Name}' in EmitOnnx.");
                state.Types[tensor] = tt;
            }
            state.Prune(output.Schema);
            view = output;
        }

        // The run's own graph: its inputs are the tensors it reads that other runs (or the graph inputs) define.
        var defined = new HashSet<string>(builder.Graph.Initializer.Select(i => i.Name), StringComparer.Ordinal) { "" };
        var reads = new List<string>();
        foreach (var node in builder.Graph.Node)
        {
            foreach (var i in node.Input)
            {
                if (!defined.Contains(i) && !reads.Contains(i))
                    reads.Add(i);
            }
            defined.UnionWith(node.Output);
        }
        foreach (var r in reads)
        {
            if (!state.IsAvailable(r))
                throw new InvalidOperationException(
                    $"[{string.Join(", ", transformers.Select(Describe))}] emitted a node reading '{r}', which is neither a column tensor nor defined earlier.");
            if (state.Types.TryGetValue(r, out var tt))
                builder.AddInput(r, tt.ElementType, tt.Dims);
        }
        foreach (var tensor in state.Columns.Values)
        {
            if (!defined.Contains(tensor) && !state.IsAvailable(tensor))
                throw new InvalidOperationException(
                    $"[{string.Join(", ", transformers.Select(Describe))}] mapped a column to '{tensor}', which no node defines.");
        }

        foreach (var init in builder.Graph.Initializer)
        {
            state.Merged.AddInitializer(init);
            state.Defined.Add(init.Name);
        }
        foreach (var node in builder.Graph.Node)
        {
            state.Merged.AddNode(node);
            state.Defined.UnionWith(node.Output.Where(o => o.Length > 0));
        }
        foreach (var (domain, version) in builder.Domains)
            state.Merged.RequireDomain(domain, version);
        return view;
    }

    // ---------------------------------------------------------------- outputs, inputs, pruning

    private static void AddOutputsAndInputs(DataViewSchema finalSchema, State state)
    {
        var merged = state.Merged;
        foreach (var c in finalSchema)
        {
            if (c.IsHidden || !TryGetTensorType(c.Type, out var tt) || !state.Columns.TryGetValue(c.Name, out var tensor))
                continue;
            string outputName = c.Name + OutputSuffix;
            if (!merged.Reserve(outputName))
                throw new NotSupportedException(
                    $"Cannot name the output of column '{c.Name}' '{outputName}': that name is already used (an input column?).");
            var identity = new NodeProto { OpType = "Identity", Name = merged.UniqueName("Identity_" + c.Name) };
            identity.Input.Add(tensor);
            identity.Output.Add(outputName);
            merged.AddNode(identity);
            merged.AddOutput(outputName, tt.ElementType, tt.Dims);

            if (c.Type is VectorDataViewType && c.HasSlotNames())
                AddSlotNames(merged, c);
        }

        Prune(merged.Graph);

        var needed = new HashSet<string>(merged.Graph.Node.SelectMany(n => n.Input), StringComparer.Ordinal);
        foreach (var c in state.InputSchema)
        {
            if (c.IsHidden || !state.InputTensors.Contains(c.Name) || !needed.Contains(c.Name))
                continue;
            var tt = state.Types[c.Name];
            merged.AddInput(c.Name, tt.ElementType, tt.Dims);
        }
    }

    /// <summary>ML.NET's convention (SaveOnnxCommand.AddSlotNames): a LabelEncoder node named
    /// <c>mlnet.&lt;col&gt;.SlotNames</c> whose <c>keys_strings</c> are the slot names, kept alive by a graph output.</summary>
    private static void AddSlotNames(OnnxGraphBuilder merged, DataViewSchema.Column column)
    {
        VBuffer<ReadOnlyMemory<char>> names = default;
        column.GetSlotNames(ref names);
        var keys = names.DenseValues().Select(n => n.ToString()).ToArray();
        string nodeName = $"mlnet.{column.Name}.SlotNames";
        string outputName = $"mlnet.{column.Name}.unusedOutput";
        if (!merged.Reserve(nodeName) || !merged.Reserve(outputName))
            throw new NotSupportedException($"Cannot add the slot names of column '{column.Name}': '{nodeName}' or '{outputName}' is already used.");
        var one = merged.Initializer("slotnames_" + column.Name, ["one"], 1, 1);
        var node = new NodeProto { OpType = "LabelEncoder", Domain = OnnxGraphBuilder.MlDomain, Name = nodeName };
        node.Input.Add(one);
        node.Output.Add(outputName);
        var keysAttr = new AttributeProto { Name = "keys_strings", Type = AttributeProto.Types.AttributeType.Strings };
        foreach (var key in keys)
            keysAttr.Strings.Add(ByteString.CopyFromUtf8(key));
        var valuesAttr = new AttributeProto { Name = "values_int64s", Type = AttributeProto.Types.AttributeType.Ints };
        valuesAttr.Ints.Add(Enumerable.Range(0, keys.Length).Select(i => (long)i));
        node.Attribute.Add(keysAttr);
        node.Attribute.Add(valuesAttr);
        merged.AddNode(node);
        merged.AddOutput(outputName, OnnxElementType.Int64, [1, 1]);
    }

    /// <summary>Removes nodes and initializers that no graph output depends on.</summary>
    private static void Prune(GraphProto graph)
    {
        var needed = new HashSet<string>(graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var keep = new bool[graph.Node.Count];
        for (int i = graph.Node.Count - 1; i >= 0; i--)
        {
            var node = graph.Node[i];
            if (!node.Output.Any(needed.Contains))
                continue;
            keep[i] = true;
            needed.UnionWith(node.Input);
        }
        var nodes = graph.Node.Where((_, i) => keep[i]).ToList();
        graph.Node.Clear();
        graph.Node.Add(nodes);
        var inits = graph.Initializer.Where(t => needed.Contains(t.Name)).ToList();
        graph.Initializer.Clear();
        graph.Initializer.Add(inits);
    }
}
