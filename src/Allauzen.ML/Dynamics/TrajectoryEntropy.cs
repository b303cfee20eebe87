using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Allauzen.ML.Persistence;
using Microsoft.ML.Data;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Dynamics.TrajectoryEntropyTransformer), Allauzen.ML.Dynamics.TrajectoryEntropyTransformer.Signature, "TrajectoryEntropy")]

namespace Allauzen.ML.Dynamics;

/// <summary>
/// One trajectory window: <see cref="Window"/> holds w consecutive states of length d, flattened (state after state).
/// The rows that <see cref="DynamicalSystems.Windows"/> returns have this shape.
/// </summary>
public sealed class TrajectoryWindow
{
    /// <summary>w·d values: the states x_s, …, x_{s+w−1}, one after the other.</summary>
    public float[] Window { get; set; } = [];

    /// <summary>The index s of the window's first state in the trajectory.</summary>
    public int Start { get; set; }
}

/// <summary>
/// Learns the partition for <see cref="TrajectoryEntropyTransformer"/>: Bins boxes per coordinate over the bounding box
/// of all states in the training windows. Create it with <c>ml.Transforms.TrajectoryEntropy(...)</c>.
/// </summary>
public sealed class TrajectoryEntropyEstimator : IEstimator<TrajectoryEntropyTransformer>
{
    private readonly IHost _host;
    private readonly string _input;
    private readonly string _output;
    private readonly int _stateSize;
    private readonly int _bins;

    internal TrajectoryEntropyEstimator(IHostEnvironment env, string inputColumnName, string outputColumnName, int stateSize, int bins)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentException.ThrowIfNullOrWhiteSpace(inputColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputColumnName);
        if (stateSize < 1 || stateSize > 1 << 16)
            throw new ArgumentOutOfRangeException(nameof(stateSize), stateSize, "stateSize must be in [1, 65536].");
        if (bins < 1 || bins > 64 || stateSize * Math.Log2(bins) > 62)
            throw new ArgumentOutOfRangeException(nameof(bins), bins, $"bins must be in [1, 64] with bins^stateSize ≤ 2^62 (got {bins}, state size {stateSize}).");
        _host = env.Register("Allauzen.TrajectoryEntropy");
        (_input, _output, _stateSize, _bins) = (inputColumnName, outputColumnName, stateSize, bins);
    }

    /// <summary>The input shape plus the entropy column (Single).</summary>
    /// <param name="inputSchema">The input shape; it must hold the window column.</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SchemaChecks.FeatureVector(inputSchema, _input, "window");
        return SchemaShapes.With(inputSchema, [SchemaShapes.Column(_output, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false)]);
    }

    /// <summary>Fits the partition to the states of every window of <paramref name="input"/>.</summary>
    /// <param name="input">Rows with the window column: a float vector whose size is a multiple of the state size.</param>
    public TrajectoryEntropyTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int size = TrajectoryEntropyTransformer.CheckWindow(input.Schema, _input, _stateSize);
        var all = new List<float>();
        using (var cursor = input.GetRowCursor([input.Schema[_input]]))
        {
            var get = cursor.GetGetter<VBuffer<float>>(input.Schema[_input]);
            VBuffer<float> v = default;
            long row = 0;
            while (cursor.MoveNext())
            {
                get(ref v);
                foreach (float f in v.DenseValues())
                {
                    if (!float.IsFinite(f))
                        throw new ArgumentOutOfRangeException(nameof(input), f, $"Column '{_input}', row {row}: the value {f} is not finite.");
                    all.Add(f);
                }
                row++;
            }
        }
        if (all.Count == 0)
            throw new ArgumentException($"Column '{_input}': the data has no rows.", nameof(input));
        _ = size;
        return new TrajectoryEntropyTransformer(_host, StatePartition.Fit(all.ToArray(), _stateSize, _bins), _input, _output);
    }
}

/// <summary>
/// Adds the visitation entropy of each trajectory window (the curriculum paper's complexity score):
/// H = −Σ_k p_k ln p_k, where p_k is the fraction of the window's states that fall in box k of a regular partition
/// (Bins per coordinate) of the training states' bounding box; states outside it count in the nearest edge box.
/// H is 0 for a window that stays in one box and ln m for one spread evenly over m boxes. Saves with
/// <c>ml.Model.Save</c>; not exportable to ONNX.
/// </summary>
public sealed class TrajectoryEntropyTransformer : AllauzenTransformerBase, IAllauzenTransformer
{
    internal const string Signature = "ALZ-TENT";
    private const int Version = 1;
    private readonly StatePartition _partition;
    private readonly string _input;
    private readonly string _output;
    private readonly DataViewSchema.DetachedColumn[] _added;

    internal TrajectoryEntropyTransformer(IHostEnvironment env, StatePartition partition, string input, string output)
        : base(env, "Allauzen.TrajectoryEntropy")
    {
        (_partition, _input, _output) = (partition, input, output);
        _added = [new DataViewSchema.DetachedColumn(output, NumberDataViewType.Single)];
    }

    /// <summary>Length of one state in the windows.</summary>
    public int StateSize => _partition.Dimension;

    /// <summary>Boxes per coordinate of the partition.</summary>
    public int Bins => _partition.Bins;

    /// <summary>Lower corner of the partition's bounding box (one value per coordinate).</summary>
    public IReadOnlyList<double> Lower => _partition.Min;

    /// <summary>Upper corner of the partition's bounding box (one value per coordinate).</summary>
    public IReadOnlyList<double> Upper => _partition.Max;

    /// <summary>The visitation entropy (natural log) of one window of states.</summary>
    /// <param name="window">w·<see cref="StateSize"/> values, state after state.</param>
    public double Entropy(ReadOnlySpan<float> window)
    {
        if (window.Length == 0 || window.Length % StateSize != 0)
            throw new ArgumentException($"A window holds a positive multiple of {StateSize} values (got {window.Length}).", nameof(window));
        return _partition.Entropy(window);
    }

    internal static int CheckWindow(DataViewSchema schema, string column, int stateSize)
    {
        int size = SchemaChecks.FeatureVector(schema, column, "window");
        if (size % stateSize != 0)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{column}': the window size {size} is not a multiple of the state size {stateSize}.");
        return size;
    }

    internal override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

    internal override IReadOnlyList<string> InputColumnNames => [_input];

    internal override void CheckInputSchema(DataViewSchema inputSchema) => CheckWindow(inputSchema, _input, StateSize);

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) => new Scorer(this, inputSchema, capacity);

    private sealed class Scorer(TrajectoryEntropyTransformer parent, DataViewSchema schema, int capacity) : BatchScorer(capacity)
    {
        private readonly float[] _h = new float[capacity];
        private readonly float[][] _windows = new float[capacity][];
        private ValueGetter<VBuffer<float>>? _get;
        private VBuffer<float> _buffer;

        public override void Bind(DataViewRow input) => _get = input.GetGetter<VBuffer<float>>(schema[parent._input]);

        public override void Load(int slot)
        {
            _get!(ref _buffer);
            _windows[slot] = _buffer.DenseValues().ToArray();
        }

        public override void Score(int count)
        {
            for (int i = 0; i < count; i++)
                _h[i] = (float)parent._partition.Entropy(_windows[i]);
        }

        public override Delegate GetGetter(int addedColumn, Func<int> slot) => (ValueGetter<float>)((ref float v) => v = _h[slot()]);
    }

    string IAllauzenTransformer.ComponentName => "TrajectoryEntropy";

    string IAllauzenTransformer.LoaderSignature => Signature;

    int IAllauzenTransformer.PayloadVersion => Version;

    void IAllauzenTransformer.SavePayload(ModelPayloadWriter writer)
    {
        writer.WriteJson("partition", _partition);
        writer.WriteString("input", _input);
        writer.WriteString("output", _output);
    }

    /// <summary>Rebuilds a transformer from its payload (declared by the <see cref="AllauzenLoaderAttribute"/> above).</summary>
    internal static TrajectoryEntropyTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        var partition = payload.ReadJson<StatePartition>("partition");
        if (partition is null)
            throw new InvalidDataException($"TrajectoryEntropy model '{payload.Source}': the partition is missing.");
        partition.Validate($"TrajectoryEntropy model '{payload.Source}'");
        return new TrajectoryEntropyTransformer(env, partition, payload.ReadString("input"), payload.ReadString("output"));
    }
}
