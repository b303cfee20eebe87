using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Quantization.ConditionalQuantizationTransformer),
    Allauzen.ML.Quantization.ConditionalQuantizationTransformer.Signature, "ConditionalQuantization")]

namespace Allauzen.ML.Quantization;

/// <summary>The column names a conditional quantization model reads and writes.</summary>
internal sealed record QuantizationColumns(string Features, string Score, string Points, string Weights, string ModePoint);

/// <summary>
/// A trained conditional quantizer: for each row it appends n points f_i(x) and their weights p_i(x), so that
/// Σ_i p_i(x) δ_{f_i(x)} approximates the law of the label given the features. Columns: <c>Score</c> = Σ_i p_i f_i (the
/// mean, so ML.NET's regression evaluator applies), <c>QuantizationPoints</c> (n·d values, row-major n × d; sorted
/// ascending for a scalar label), <c>QuantizationWeights</c> (n values summing to 1) and <c>ModePoint</c> (the point of
/// largest weight, the first one on ties). <c>Score</c> and <c>ModePoint</c> are <c>Single</c> for a scalar label and
/// <c>Vector&lt;Single, d&gt;</c> for a vector label. The points and weights carry slot names that give their shape
/// (<c>f1[0]</c>, <c>f1[1]</c>, …, row-major n × d; <c>p1</c> … <c>pn</c>). It saves with <c>ml.Model.Save</c>, loads with <c>ml.Model.Load</c>
/// and exports to ONNX (opset ≥ 11) with <c>ml.Model.ExportToOnnx</c>.
/// </summary>
public sealed class ConditionalQuantizationTransformer : AllauzenTransformerBase, IAllauzenTransformer, IOnnxExportable
{
    internal const string Signature = "ALZ-CQVQ";
    private const int Version = 1;
    private readonly QuantizationColumns _columns;
    private readonly float[] _labelMean;
    private readonly float[] _labelScale;
    private readonly DataViewSchema.DetachedColumn[] _added;
    private QuantizerNetwork? _net;

    internal ConditionalQuantizationTransformer(IHostEnvironment env, QuantizerNetwork net, QuantizationColumns columns,
        float[] labelMean, float[] labelScale)
        : base(env, "Allauzen.ConditionalQuantization")
    {
        _net = net;
        _net.eval();
        _columns = columns;
        _labelMean = labelMean;
        _labelScale = labelScale;
        int n = net.Architecture.Points, d = net.Architecture.LabelSize;
        _added = OutputColumns(columns, n, d).Select(c => Detached(c.Name, c.Type,
            c.Name == columns.Points ? SlotNames(PointSlotNames(n, d)) : c.Name == columns.Weights ? SlotNames(WeightSlotNames(n)) : null)).ToArray();
    }

    /// <summary>Slot names of the points: f1 … fn for a scalar label, f1[0], f1[1], …, fn[d−1] (row-major n × d) for a vector label.</summary>
    internal static string[] PointSlotNames(int n, int d) =>
        [.. Enumerable.Range(1, n).SelectMany(i => d == 1 ? [$"f{i}"] : Enumerable.Range(0, d).Select(k => $"f{i}[{k}]"))];

    /// <summary>Slot names of the weights: p1 … pn.</summary>
    internal static string[] WeightSlotNames(int n) => [.. Enumerable.Range(1, n).Select(i => $"p{i}")];

    private static DataViewSchema.Annotations SlotNames(string[] names)
    {
        var memory = names.Select(v => v.AsMemory()).ToArray();
        var b = new DataViewSchema.Annotations.Builder();
        b.Add(AllauzenColumnNames.SlotNamesKind, new VectorDataViewType(TextDataViewType.Instance, memory.Length),
            (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> dst) =>
                dst = new VBuffer<ReadOnlyMemory<char>>(memory.Length, (ReadOnlyMemory<char>[])memory.Clone())));
        return b.ToAnnotations();
    }

    /// <summary>The added columns (name, type) for n points of a d-dimensional label, in order.</summary>
    internal static (string Name, DataViewType Type)[] OutputColumns(QuantizationColumns c, int n, int d)
    {
        DataViewType value = d == 1 ? NumberDataViewType.Single : new VectorDataViewType(NumberDataViewType.Single, d);
        return
        [
            (c.Score, value),
            (c.Points, new VectorDataViewType(NumberDataViewType.Single, n * d)),
            (c.Weights, new VectorDataViewType(NumberDataViewType.Single, n)),
            (c.ModePoint, value),
        ];
    }

    private static DataViewSchema.DetachedColumn Detached(string name, DataViewType type, DataViewSchema.Annotations? annotations)
    {
        var b = new DataViewSchema.Builder();
        b.AddColumn(name, type, annotations);
        return new DataViewSchema.DetachedColumn(b.ToSchema()[0]);
    }

    /// <summary>Name of the feature vector column read by the model.</summary>
    public string FeatureColumnName => _columns.Features;

    /// <summary>Length of the feature vector the model expects.</summary>
    public int FeatureCount => Net.Architecture.InputSize;

    /// <summary>Number n of quantization points per row.</summary>
    public int NumberOfPoints => Net.Architecture.Points;

    /// <summary>Dimension d of the label (1 for a scalar label).</summary>
    public int LabelSize => Net.Architecture.LabelSize;

    /// <summary>True when the points of a scalar label are parameterised sorted (f_{i+1} = f_i + softplus(b_i)).</summary>
    public bool SortedHeads => Net.Architecture.Sorted;

    /// <summary>Widths of the trunk's hidden layers.</summary>
    public IReadOnlyList<int> HiddenSizes => Net.Architecture.HiddenSizes;

    /// <summary>Name of the score column (Σ p_i f_i).</summary>
    public string ScoreColumnName => _columns.Score;

    /// <summary>Name of the points column.</summary>
    public string PointsColumnName => _columns.Points;

    /// <summary>Name of the weights column.</summary>
    public string WeightsColumnName => _columns.Weights;

    /// <summary>Name of the mode-point column.</summary>
    public string ModePointColumnName => _columns.ModePoint;

    private QuantizerNetwork Net => _net ?? throw new ObjectDisposedException(nameof(ConditionalQuantizationTransformer));

    internal override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

    internal override IReadOnlyList<string> InputColumnNames => [FeatureColumnName];

    internal override void CheckInputSchema(DataViewSchema inputSchema) =>
        SchemaChecks.FeatureVector(inputSchema, FeatureColumnName, "feature", FeatureCount);

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) => new Scorer(this, inputSchema, capacity);

    /// <summary>
    /// Scores a block of feature rows (row-major, count × <see cref="FeatureCount"/>) without an IDataView: returns the
    /// points (count × n·d, in label units, sorted ascending per row for a scalar label) and the weights (count × n).
    /// </summary>
    /// <param name="features">count × <see cref="FeatureCount"/> values.</param>
    public (float[] Points, float[] Weights) Predict(ReadOnlySpan<float> features)
    {
        if (features.Length % FeatureCount != 0)
            throw new ArgumentException($"The feature block has {features.Length} values, not a multiple of the feature count {FeatureCount}.", nameof(features));
        int count = features.Length / FeatureCount;
        var points = new float[count * NumberOfPoints * LabelSize];
        var weights = new float[count * NumberOfPoints];
        if (count > 0)
            Forward(features.ToArray(), count, points, weights);
        return (points, weights);
    }

    /// <summary>
    /// Points (label units) and weights for <paramref name="count"/> rows; points sorted per row when d = 1. When
    /// <paramref name="score"/> is given it receives Σ p_i f_i computed in the standardised space, μ + σ·Σ p_i f̃_i, as the
    /// ONNX graph does: at label scale the weighted sum would round each term at the label's magnitude and the two
    /// backends' summation orders would then differ by a few float32 ulps of the label (2.3e-5 at Old Faithful's 70).
    /// </summary>
    internal void Forward(float[] features, int count, float[] points, float[] weights, float[]? score = null)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var net = Net;
        int nx = FeatureCount, n = NumberOfPoints, d = LabelSize;
        var x = torch.tensor(features, [features.Length / nx, nx]).narrow(0, 0, count);
        var device = net.Heads.weight!.device;
        if (device.type != DeviceType.CPU)
            x = x.to(device);
        var (f, logits) = net.Forward(x);
        var p = nn.functional.softmax(logits, 1);
        if (score is not null)
        {
            var standardised = p.unsqueeze(1).matmul(f).squeeze(1);                                 // Σ p_i f̃_i, [B, d]
            var s = (standardised * torch.tensor(_labelScale, [1, d], device: device)).add(torch.tensor(_labelMean, [1, d], device: device), KeptScalars.One);
            s.cpu().data<float>().CopyTo(score, 0, 0);
        }
        var fl = (f.reshape(count, n * d) * torch.tensor(Tile(_labelScale, n), device: device)).add(torch.tensor(Tile(_labelMean, n), device: device), KeptScalars.One);
        if (d == 1 && !net.Architecture.Sorted)
        {
            var (sorted, order) = fl.sort(1);
            fl = sorted;
            p = p.gather(1, order);
        }
        fl.cpu().data<float>().CopyTo(points, 0, 0);
        p.cpu().data<float>().CopyTo(weights, 0, 0);
    }

    private static float[] Tile(float[] v, int times) => Enumerable.Repeat(v, times).SelectMany(a => a).ToArray();

    string IAllauzenTransformer.ComponentName => "ConditionalQuantization";

    string IAllauzenTransformer.LoaderSignature => Signature;

    int IAllauzenTransformer.PayloadVersion => Version;

    void IAllauzenTransformer.SavePayload(ModelPayloadWriter writer)
    {
        writer.WriteJson("architecture", Net.Architecture);
        writer.WriteJson("columns", _columns);
        writer.WriteTensor("labelMean", _labelMean, [_labelMean.Length]);
        writer.WriteTensor("labelScale", _labelScale, [_labelScale.Length]);
        foreach (var (name, p) in Net.named_parameters())
        {
            using var cpu = p.detach().cpu().contiguous();
            writer.WriteTensor(name, cpu.data<float>().ToArray(), cpu.shape);
        }
    }

    /// <summary>Rebuilds a transformer from its payload (declared with <see cref="AllauzenLoaderAttribute"/>).</summary>
    internal static ConditionalQuantizationTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        var a = payload.ReadJson<QuantizerArchitecture>("architecture");
        string where = $"ConditionalQuantization model '{payload.Source}'";
        if (a is null || a.InputSize < 1 || a.Points < 1 || a.Points > 4096 || a.LabelSize < 1 || a.LabelSize > 1 << 16
            || a.HiddenSizes is null || a.HiddenSizes.Length > 256 || a.HiddenSizes.Any(h => h < 1) || (a.Sorted && (a.LabelSize != 1 || a.Points < 2)))
            throw new InvalidDataException($"{where}: invalid architecture.");
        var columns = payload.ReadJson<QuantizationColumns>("columns");
        if (columns is null || new[] { columns.Features, columns.Score, columns.Points, columns.Weights, columns.ModePoint }.Any(string.IsNullOrWhiteSpace))
            throw new InvalidDataException($"{where}: invalid column names.");
        var mean = ReadVector(payload, "labelMean", a.LabelSize, where);
        var scale = ReadVector(payload, "labelScale", a.LabelSize, where);
        // Every tensor is read and its shape checked against the architecture before the network is built, so no size the
        // file claims is allocated unless the file holds that many values.
        var tensors = new List<(string Name, float[] Data, long[] Shape)>();
        foreach (var (name, expected) in QuantizerNetwork.ParameterShapes(a))
        {
            var (data, shape) = payload.ReadTensor(name);
            if (!shape.SequenceEqual(expected))
                throw new InvalidDataException(
                    $"{where}: tensor '{name}' has shape [{string.Join(", ", shape)}], expected [{string.Join(", ", expected)}].");
            tensors.Add((name, data, shape));
        }
        TorchRuntime.EnsureInitialized();
        var net = new QuantizerNetwork(a);
        var parameters = net.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (torch.no_grad())
        {
            foreach (var (name, data, shape) in tensors)
            {
                using var t = torch.tensor(data, shape);
                parameters[name].copy_(t);
            }
        }
        return new ConditionalQuantizationTransformer(env, net, columns, mean, scale);
    }

    private static float[] ReadVector(ModelPayloadReader payload, string name, int size, string where)
    {
        var (data, shape) = payload.ReadTensor(name);
        if (shape.Length != 1 || shape[0] != size || data.Any(v => !float.IsFinite(v)))
            throw new InvalidDataException($"{where}: tensor '{name}' must hold {size} finite values.");
        return data;
    }

    void IOnnxExportable.EmitOnnx(OnnxGraphBuilder g, IDictionary<string, string> columns)
    {
        if (g.Opset < 11)
            throw new NotSupportedException($"ConditionalQuantization exports to ONNX opset 11 or later (GatherElements); opset {g.Opset} was requested.");
        var net = Net;
        int n = NumberOfPoints, d = LabelSize;
        string x = columns[FeatureColumnName];
        foreach (var (name, layer) in net.TrunkLayers())
            x = g.Node("Relu", [Gemm(g, x, name, layer)], $"{name}_relu");
        // The output layer as two Gemms (rows [0, n·d) and [n·d, n·d + n) of its weight): no Slice needed.
        string r = Gemm(g, x, "points", net.Heads, 0, n * d);
        string logits = Gemm(g, x, "logits", net.Heads, n * d, n);
        if (net.Architecture.Sorted)
        {
            // f = (r ⊙ m + softplus(r) ⊙ (1 − m)) · U: f₁ = a, f_{i+1} = f_i + softplus(b_i)
            var (mask, upper) = QuantizerNetwork.SortedConstants(n);
            string m = g.Initializer("cq_first", mask, 1, n);
            string notM = g.Initializer("cq_rest", mask.Select(v => 1 - v).ToArray(), 1, n);
            string u = g.Initializer("cq_cumulative", upper, n, n);
            string s = g.Node("Add", [g.Node("Mul", [r, m], "cq_a"), g.Node("Mul", [g.Node("Softplus", [r], "cq_softplus"), notM], "cq_gaps")], "cq_s");
            r = g.Node("MatMul", [s, u], "cq_sorted");
        }
        string points = g.Node("Add", [g.Node("Mul", [r, g.Initializer("cq_scale", Tile(_labelScale, n), 1, n * d)], "cq_scaled"),
            g.Initializer("cq_mean", Tile(_labelMean, n), 1, n * d)], "cq_points");
        string weights = g.Node("Softmax", [logits], "cq_weights", ("axis", 1L));
        // Score = μ + σ·Σ p_i f̃_i from the standardised, unsorted points, as Forward computes it (see there why).
        string pnd = g.Node("Reshape", [r, g.Initializer("cq_shape_nd", new long[] { -1, n, d }, 3)], "cq_standardised_nd");
        string w1n = g.Node("Reshape", [weights, g.Initializer("cq_shape_1n", new long[] { -1, 1, n }, 3)], "cq_weights_1n");
        string flat = g.Initializer("cq_shape_d", new long[] { -1, d }, 2);
        string standardisedScore = g.Node("Reshape", [g.Node("MatMul", [w1n, pnd], "cq_score_1d"), flat], "cq_score_standardised");
        string score = g.Node("Add", [g.Node("Mul", [standardisedScore, g.Initializer("cq_score_scale", _labelScale, 1, d)], "cq_score_scaled"),
            g.Initializer("cq_score_mean", _labelMean, 1, d)], "cq_score");
        if (d == 1 && !net.Architecture.Sorted)
        {
            string k = g.Initializer("cq_k", new long[] { n }, 1);
            var top = g.Node("TopK", [points, k], ["cq_points_sorted", "cq_order"], ("axis", 1L), ("largest", 0L), ("sorted", 1L));
            points = top[0];
            weights = g.Node("GatherElements", [weights, top[1]], "cq_weights_sorted", ("axis", 1L));
        }
        string mode = g.Node("ArgMax", [weights], "cq_argmax", ("axis", 1L), ("keepdims", 1L));   // [N, 1], first max on ties
        string modePoint;
        if (d == 1)
        {
            modePoint = g.Node("GatherElements", [points, mode], "cq_mode", ("axis", 1L));
        }
        else
        {
            string labelUnits = g.Node("Reshape", [points, g.Initializer("cq_shape_points_nd", new long[] { -1, n, d }, 3)], "cq_points_nd");
            string idx = g.Node("Tile", [g.Node("Reshape", [mode, g.Initializer("cq_shape_111", new long[] { -1, 1, 1 }, 3)], "cq_argmax_3d"),
                g.Initializer("cq_repeats", new long[] { 1, 1, d }, 3)], "cq_argmax_tiled");
            modePoint = g.Node("Reshape", [g.Node("GatherElements", [labelUnits, idx], "cq_mode_1d", ("axis", 1L)), flat], "cq_mode");
        }
        columns[ScoreColumnName] = score;
        columns[PointsColumnName] = points;
        columns[WeightsColumnName] = weights;
        columns[ModePointColumnName] = modePoint;
    }

    private static string Gemm(OnnxGraphBuilder g, string x, string name, TorchSharp.Modules.Linear layer, long firstRow = 0, long rows = -1)
    {
        if (rows < 0)
            rows = layer.weight!.shape[0];
        using var w = layer.weight!.detach().narrow(0, firstRow, rows).cpu().contiguous();
        using var b = layer.bias!.detach().narrow(0, firstRow, rows).cpu().contiguous();
        string wt = g.Initializer($"cq_{name}_weight", w.data<float>().ToArray(), w.shape);
        string bt = g.Initializer($"cq_{name}_bias", b.data<float>().ToArray(), b.shape);
        return g.Node("Gemm", [x, wt, bt], $"cq_{name}_out", ("transB", 1L));
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _net?.Dispose();
            _net = null;
        }
        base.Dispose(disposing);
    }

    /// <summary>Reads features into slots, runs one forward pass (points, weights, Score), picks ModePoint from points and weights.</summary>
    private sealed class Scorer : BatchScorer
    {
        private readonly ConditionalQuantizationTransformer _parent;
        private readonly FeatureVectorReader _reader;
        private readonly int _n;
        private readonly int _d;
        private readonly float[] _features;
        private readonly float[] _points;
        private readonly float[] _weights;
        private readonly float[] _score;
        private readonly float[] _mode;

        public Scorer(ConditionalQuantizationTransformer parent, DataViewSchema inputSchema, int capacity)
            : base(capacity)
        {
            _parent = parent;
            _reader = new FeatureVectorReader(inputSchema[parent.FeatureColumnName], parent.FeatureCount);
            _n = parent.NumberOfPoints;
            _d = parent.LabelSize;
            _features = new float[capacity * parent.FeatureCount];
            _points = new float[capacity * _n * _d];
            _weights = new float[capacity * _n];
            _score = new float[capacity * _d];
            _mode = new float[capacity * _d];
        }

        public override void Bind(DataViewRow input) => _reader.Bind(input);

        public override void Load(int slot) => _reader.CopyTo(_features, slot);

        public override void Score(int count)
        {
            _parent.Forward(_features, count, _points, _weights, _score);
            for (int r = 0; r < count; r++)
            {
                var w = _weights.AsSpan(r * _n, _n);
                int best = 0;
                for (int i = 1; i < _n; i++)
                {
                    if (w[i] > w[best])
                        best = i;
                }
                _points.AsSpan((r * _n + best) * _d, _d).CopyTo(_mode.AsSpan(r * _d, _d));
            }
        }

        public override Delegate GetGetter(int addedColumn, Func<int> slot) => addedColumn switch
        {
            0 => Value(_score, slot),
            1 => Vector(_points, _n * _d, slot),
            2 => Vector(_weights, _n, slot),
            3 => Value(_mode, slot),
            _ => throw new ArgumentOutOfRangeException(nameof(addedColumn)),
        };

        private Delegate Value(float[] source, Func<int> slot) => _d == 1
            ? (ValueGetter<float>)((ref float dst) => dst = source[slot()])
            : Vector(source, _d, slot);

        private static ValueGetter<VBuffer<float>> Vector(float[] source, int width, Func<int> slot) => (ref VBuffer<float> dst) =>
        {
            var editor = VBufferEditor.Create(ref dst, width);
            source.AsSpan(slot() * width, width).CopyTo(editor.Values);
            dst = editor.Commit();
        };
    }
}
