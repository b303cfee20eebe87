using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Allauzen.ML.Persistence;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Dynamics.TrajectoryEntropyTransformer), Allauzen.ML.Dynamics.TrajectoryEntropyTransformer.Signature, "TrajectoryEntropy")]

namespace Allauzen.ML.Dynamics;

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
