using Allauzen.ML.Data;
using System.Globalization;
using System.Text;
using Allauzen.ML.Core;
using Google.Protobuf;
using Onnx;

namespace Allauzen.ML.Onnx;

// ML.NET's runs: exported with ML.NET's converter on the view they see, then merged into the graph by column name.
internal sealed partial class OnnxExporter
{
    // ---------------------------------------------------------------- native segments

    private IDataView MergeNative(int k, List<ITransformer> transformers, IDataView view, State state, IChannel ch)
    {
        var boundary = new SegmentInputView(view);
        foreach (var c in boundary.Schema)
        {
            if (!state.Columns.ContainsKey(c.Name))
                throw new InvalidOperationException($"Internal error: column '{c.Name}' has no ONNX tensor before segment {k}.");
        }

        // Apply one transformer at a time so that a view ML.NET cannot walk through names its transformer.
        IDataView output = boundary;
        foreach (var t in transformers)
        {
            var next = t.Transform(output);
            var blocker = MlNetInternals.FindOnnxWalkBlocker(next, output) is { } blocking ? FriendlyName(blocking.GetType()) : null;
            if (blocker is not null)
                throw new NotSupportedException(
                    $"The transformer {Describe(t)} cannot be exported to ONNX: its output view ({blocker}) is not one ML.NET's " +
                    "ONNX converter can walk through, so ML.NET would silently drop it and everything before it.");
            output = next;
        }

        var chain = new TransformerChain<ITransformer>([.. transformers]);
        var warnings = new List<string>();
        byte[] bytes;
        void OnLog(object? sender, LoggingEventArgs e)
        {
            if (e.Kind == ChannelMessageKind.Warning)
            {
                lock (warnings)
                    warnings.Add(e.Message);
            }
        }
        _converter.Log += OnLog;
        try
        {
            using var ms = new MemoryStream();
            _converter.Model.ConvertToOnnx(chain, boundary, state.Merged.Opset, ms);
            bytes = ms.ToArray();
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or NotSupportedException or FormatException)
        {
            throw new NotSupportedException(
                $"ML.NET could not export [{string.Join(", ", transformers.Select(Describe))}] to ONNX: {e.Message}", e);
        }
        finally
        {
            _converter.Log -= OnLog;
        }

        foreach (var w in warnings)
        {
            if (w.Contains("cannot save itself as ONNX", StringComparison.Ordinal) || w.Contains("stop walkback", StringComparison.Ordinal))
                throw new NotSupportedException(
                    $"ML.NET cannot export one of [{string.Join(", ", transformers.Select(Describe))}] to ONNX ({w}); " +
                    "its converter would silently drop it and everything before it.");
            ch.Warning(MessageSensitivity.None, "{0}", "ML.NET ONNX converter: " + w);
        }

        var graph = ModelProto.Parser.ParseFrom(bytes);
        CheckCoverage(graph, boundary.Schema, output.Schema, transformers);
        MergeGraph(k, graph, output.Schema, state);
        state.Prune(output.Schema);
        return output;
    }

    /// <summary>ML.NET's graph must start at the run's input and produce every column the run outputs.</summary>
    private static void CheckCoverage(ModelProto model, DataViewSchema inputSchema, DataViewSchema outputSchema, List<ITransformer> transformers)
    {
        string Run() => "[" + string.Join(", ", transformers.Select(Describe)) + "]";
        var inputs = new HashSet<string>(inputSchema.Select(c => c.Name), StringComparer.Ordinal);
        var foreign = model.Graph.Input.Select(i => i.Name).Where(n => !inputs.Contains(n)).ToList();
        if (foreign.Count > 0)
            throw new NotSupportedException(
                $"ML.NET's ONNX export of {Run()} reads [{string.Join(", ", foreign)}], which the run's input does not have: " +
                "a transformer of the run cannot be exported and ML.NET stopped at it.");

        var outputs = new HashSet<string>(model.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var missing = outputSchema.Where(c => !c.IsHidden && TryGetTensorType(c.Type, out _) && !outputs.Contains(c.Name + OutputSuffix))
            .Select(c => c.Name).ToList();
        if (missing.Count > 0)
            throw new NotSupportedException(
                $"ML.NET's ONNX export of {Run()} does not produce the column(s) [{string.Join(", ", missing)}].");
    }

    private static bool IsSlotNamesNode(NodeProto node) =>
        node.Name.StartsWith("mlnet.", StringComparison.Ordinal) && node.Name.EndsWith(".SlotNames", StringComparison.Ordinal);

    private static void MergeGraph(int k, ModelProto model, DataViewSchema outputSchema, State state)
    {
        var g = model.Graph;
        string prefix = "mlnet_" + k.ToString(CultureInfo.InvariantCulture) + "_";

        foreach (var import in model.OpsetImport)
        {
            if (import.Domain.Length == 0 || import.Domain == "ai.onnx")
            {
                if (import.Version > state.Merged.Opset)
                    throw new InvalidOperationException($"ML.NET wrote opset {import.Version}, above the requested {state.Merged.Opset}.");
            }
            else
            {
                state.Merged.RequireDomain(import.Domain, import.Version);
            }
        }

        // Graph inputs are wired to the tensors currently holding those columns.
        var rename = new Dictionary<string, string>(StringComparer.Ordinal) { [""] = "" };
        foreach (var input in g.Input)
            rename[input.Name] = state.Columns[input.Name];

        // Nodes that ML.NET adds for its own conventions are recreated at the end for the merged graph.
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in g.Node)
        {
            foreach (var o in node.Output)
                producers[o] = node;
        }
        var skipped = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var columnSources = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var output in g.Output)
        {
            if (!output.Name.EndsWith(OutputSuffix, StringComparison.Ordinal))
                continue;
            string column = output.Name[..^OutputSuffix.Length];
            if (producers.TryGetValue(output.Name, out var node) && node.OpType == "Identity" && node.Input.Count == 1)
            {
                skipped.Add(node);
                columnSources[column] = node.Input[0];
            }
            else
            {
                columnSources[column] = output.Name;
            }
        }
        foreach (var node in g.Node)
        {
            if (IsSlotNamesNode(node))
                skipped.Add(node);
        }

        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in g.Node)
        {
            if (!skipped.Contains(node))
                used.UnionWith(node.Input);
        }
        used.UnionWith(columnSources.Values);

        string Rename(string name)
        {
            if (!rename.TryGetValue(name, out var renamed))
            {
                renamed = Unique(state.Names, prefix + name);
                rename[name] = renamed;
            }
            return renamed;
        }

        foreach (var init in g.Initializer)
        {
            if (!used.Contains(init.Name))
                continue;
            var copy = init.Clone();
            copy.Name = Rename(init.Name);
            state.Merged.AddInitializer(copy);
            state.Defined.Add(copy.Name);
        }

        foreach (var node in g.Node)
        {
            if (skipped.Contains(node))
                continue;
            var copy = new NodeProto
            {
                OpType = node.OpType,
                Domain = node.Domain,
                DocString = node.DocString,
                Name = Unique(state.Names, prefix + (node.Name.Length > 0 ? node.Name : node.OpType)),
            };
            copy.Attribute.Add(node.Attribute.Select(a => a.Clone()));
            foreach (var i in node.Input)
            {
                var renamed = Rename(i);
                if (renamed.Length > 0 && !state.IsAvailable(renamed))
                    throw new InvalidOperationException(
                        $"Internal error: ML.NET node '{node.Name}' ({node.OpType}) reads '{i}', which nothing defines.");
                copy.Input.Add(renamed);
            }
            foreach (var o in node.Output)
            {
                var renamed = Rename(o);
                copy.Output.Add(renamed);
                if (renamed.Length > 0)
                    state.Defined.Add(renamed);
            }
            state.Merged.AddNode(copy);
        }

        foreach (var c in outputSchema)
        {
            if (c.IsHidden || !TryGetTensorType(c.Type, out var tt) || !columnSources.TryGetValue(c.Name, out var source))
                continue;
            var tensor = Rename(source);
            state.Columns[c.Name] = tensor;
            if (!state.InputTensors.Contains(tensor))
                state.Types[tensor] = tt;
        }
    }

    private static string Unique(HashSet<string> names, string hint)
    {
        string name = hint;
        for (int i = 1; !names.Add(name); i++)
            name = hint + "_" + i.ToString(CultureInfo.InvariantCulture);
        return name;
    }

    /// <summary>
    /// The view a native run is exported on: the visible columns of its input that have an ONNX type, nothing else.
    /// It is not one of ML.NET's data transforms, so ML.NET's converter stops exactly here and makes one graph input
    /// per column, named after it (hidden duplicates would otherwise become extra inputs such as <c>Features0</c>).
    /// </summary>
    private sealed class SegmentInputView : IDataView
    {
        private readonly IDataView _source;
        private readonly int[] _sourceIndex;

        public SegmentInputView(IDataView source)
        {
            _source = source;
            var builder = new DataViewSchema.Builder();
            var map = new List<int>();
            foreach (var c in source.Schema)
            {
                if (c.IsHidden || !TryGetTensorType(c.Type, out _))
                    continue;
                builder.AddColumn(c.Name, c.Type, c.Annotations);
                map.Add(c.Index);
            }
            Schema = builder.ToSchema();
            _sourceIndex = [.. map];
        }

        public DataViewSchema Schema { get; }

        public bool CanShuffle => _source.CanShuffle;

        public long? GetRowCount() => _source.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var active = new bool[Schema.Count];
            foreach (var c in columnsNeeded)
                active[c.Index] = true;
            var sourceColumns = Enumerable.Range(0, active.Length).Where(i => active[i]).Select(i => _source.Schema[_sourceIndex[i]]);
            return new MappedCursor(_source.GetRowCursor(sourceColumns, rand), Schema, active, _sourceIndex);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            [GetRowCursor(columnsNeeded, rand)];
    }
}
