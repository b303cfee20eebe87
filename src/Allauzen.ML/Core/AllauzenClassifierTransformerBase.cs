using Allauzen.ML.Data;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;

namespace Allauzen.ML.Core;

/// <summary>
/// Base of Allauzen multiclass classifiers: reads a <c>Vector&lt;Single, n&gt;</c> feature column and
/// appends <c>Score</c> (class probabilities, slot names = class names) and <c>PredictedLabel</c>
/// (a key with the label's key values), so that <c>MulticlassClassification.Evaluate</c>,
/// <c>MapKeyToValue</c> and <c>PredictionEngine</c> work as with ML.NET's own trainers.
/// </summary>
/// <remarks>
/// The base owns everything that is not the network: the scoring (features → logits → softmax → argmax), the payload's
/// classifier header (column names and class names, between the network's settings and its tensors), the ONNX classifier
/// head (Softmax, ArgMax, key + 1) and the <see cref="ILogitsModel"/> view used by wrapping components. A network
/// classifier supplies its logits (<see cref="ForwardLogits"/> on <see cref="NetworkDevice"/>), its payload
/// (<see cref="SaveSettings"/>, <see cref="SaveNetwork"/>, a static <c>Load</c> that calls <see cref="ClassifierHeader.Read"/>)
/// and its ONNX logits (<see cref="EmitLogits"/>).
/// </remarks>
public abstract class AllauzenClassifierTransformerBase : AllauzenTransformerBase, IAllauzenTransformer, IOnnxExportable, ILogitsModel
{
    private readonly DataViewSchema.DetachedColumn[] _added;

    private protected AllauzenClassifierTransformerBase(IHostEnvironment env, string registrationName,
        string featureColumnName, int featureCount, LabelNames classes,
        string scoreColumnName, string predictedLabelColumnName, IReadOnlyList<string>? extraColumnNames = null)
        : base(env, registrationName)
    {
        FeatureColumnName = featureColumnName;
        FeatureCount = featureCount;
        Classes = classes;
        ScoreColumnName = scoreColumnName;
        PredictedLabelColumnName = predictedLabelColumnName;

        var scoreAnn = new DataViewSchema.Annotations.Builder();
        classes.AddSlotNames(scoreAnn);
        var predAnn = new DataViewSchema.Annotations.Builder();
        classes.AddKeyValues(predAnn);
        ExtraColumnNames = extraColumnNames?.ToArray() ?? [];
        _added =
        [
            Detached(scoreColumnName, new VectorDataViewType(NumberDataViewType.Single, classes.Count), scoreAnn.ToAnnotations()),
            Detached(predictedLabelColumnName, new KeyDataViewType(typeof(uint), classes.Count), predAnn.ToAnnotations()),
            .. ExtraColumnNames.Select(n => Detached(n, NumberDataViewType.Single, DataViewSchema.Annotations.Empty)),
        ];
    }

    /// <summary>
    /// Names of the extra <c>Single</c> columns appended after <c>PredictedLabel</c>, each computed per row from that
    /// row's scores by <see cref="ComputeExtraColumns"/> (empty for plain classifiers).
    /// </summary>
    internal IReadOnlyList<string> ExtraColumnNames { get; }

    /// <summary>Fills <paramref name="values"/> (one per extra column) from one row's scores; only called when there are extra columns.</summary>
    internal virtual void ComputeExtraColumns(ReadOnlySpan<float> scores, Span<float> values)
    {
    }

    private static DataViewSchema.DetachedColumn Detached(string name, DataViewType type, DataViewSchema.Annotations ann)
    {
        var b = new DataViewSchema.Builder();
        b.AddColumn(name, type, ann);
        return new DataViewSchema.DetachedColumn(b.ToSchema()[0]);
    }

    /// <summary>Name of the feature vector column read by the model.</summary>
    public string FeatureColumnName { get; }

    /// <summary>Length of the feature vector the model expects.</summary>
    public int FeatureCount { get; }

    /// <summary>Number of classes.</summary>
    public int NumberOfClasses => Classes.Count;

    /// <summary>Class names in key order (the label's key values, or "0".."k-1").</summary>
    public IReadOnlyList<string> ClassNames => Classes.Values;

    /// <summary>Name of the score column.</summary>
    public string ScoreColumnName { get; }

    /// <summary>Name of the predicted-label column.</summary>
    public string PredictedLabelColumnName { get; }

    internal LabelNames Classes { get; }

    internal override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

    internal override IReadOnlyList<string> InputColumnNames => [FeatureColumnName];

    internal override void CheckInputSchema(DataViewSchema inputSchema) =>
        SchemaChecks.FeatureVector(inputSchema, FeatureColumnName, "feature", FeatureCount);

    /// <summary>
    /// Computes class probabilities for <paramref name="count"/> rows: <paramref name="features"/> holds at least
    /// count × <see cref="FeatureCount"/> values, <paramref name="probabilities"/> receives count × k.
    /// </summary>
    internal void Forward(float[] features, int count, float[] probabilities)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var p = torch.nn.functional.softmax(ForwardLogits(Input(features, count)), 1).cpu().contiguous();
        p.data<float>().CopyTo(probabilities, 0, 0);
    }

    /// <summary>The first <paramref name="count"/> rows of <paramref name="features"/> as a [count, n] tensor on <see cref="NetworkDevice"/>.</summary>
    private torch.Tensor Input(float[] features, int count)
    {
        int n = FeatureCount;
        var x = torch.tensor(features, [features.Length / n, n]).narrow(0, 0, count);
        var device = NetworkDevice;
        // On the CPU the copy puts the features in libtorch-allocated memory (the same kernels whatever the batch).
        return device.type == DeviceType.CPU ? x.clone() : x.to(device);
    }

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) =>
        new ClassifierScorer(this, inputSchema, capacity);

    /// <summary>
    /// Scores a block of feature rows (row-major, count × <see cref="FeatureCount"/>) into class
    /// probabilities (count × <see cref="NumberOfClasses"/>) without an IDataView: the fast path used
    /// by benchmarks and by callers that hold plain arrays.
    /// </summary>
    public float[] PredictProbabilities(ReadOnlySpan<float> features)
    {
        int count = RowCount(features);
        var probs = new float[count * NumberOfClasses];
        if (count > 0)
            Forward(features.ToArray(), count, probs);
        return probs;
    }

    /// <summary>
    /// The logits (before the softmax) of a block of feature rows (row-major, count × <see cref="FeatureCount"/>):
    /// count × <see cref="NumberOfClasses"/> values, row-major.
    /// </summary>
    public float[] PredictLogits(ReadOnlySpan<float> features)
    {
        int count = RowCount(features);
        if (count == 0)
            return [];
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return ForwardLogits(Input(features.ToArray(), count)).cpu().contiguous().data<float>().ToArray();
    }

    private int RowCount(ReadOnlySpan<float> features) => features.Length % FeatureCount == 0
        ? features.Length / FeatureCount
        : throw new ArgumentException($"The feature block has {features.Length} values, not a multiple of the feature count {FeatureCount}.", nameof(features));

    // ---- The network a derived classifier supplies ----

    /// <summary>The device the network's parameters live on (the features are moved there before <see cref="ForwardLogits"/>).</summary>
    private protected abstract torch.Device NetworkDevice { get; }

    /// <summary>Logits [N, k] of features [N, n] already on <see cref="NetworkDevice"/>; callers hold no_grad.</summary>
    private protected abstract torch.Tensor ForwardLogits(torch.Tensor features);

    /// <summary>The network as a module whose forward pass equals <see cref="ForwardLogits"/>, or null (the default).</summary>
    private protected virtual torch.nn.Module? LogitsNetwork => null;

    /// <summary>A certified upper bound on the L2 Lipschitz constant of features → logits, or null (the default).</summary>
    private protected virtual double? LipschitzUpperBound() => null;

    /// <summary>The component name used in error messages, e.g. "Mlp".</summary>
    private protected abstract string ComponentName { get; }

    /// <summary>The 8-character loader signature (never changed once models are saved).</summary>
    private protected abstract string LoaderSignature { get; }

    /// <summary>The payload version this build writes.</summary>
    private protected abstract int PayloadVersion { get; }

    /// <summary>Writes the network's settings (architecture, options): the entries before the classifier header.</summary>
    private protected abstract void SaveSettings(ModelPayloadWriter writer);

    /// <summary>Writes the network's tensors: the entries after the classifier header.</summary>
    private protected abstract void SaveNetwork(ModelPayloadWriter writer);

    /// <summary>
    /// Whether the header stores the feature count ("featureCount", right after "features"): for networks whose settings
    /// do not imply it.
    /// </summary>
    private protected virtual bool SavesFeatureCount => false;

    /// <summary>Emits the network's logits [N, k] from the feature tensor [N, n] (named <paramref name="features"/>).</summary>
    private protected abstract string EmitLogits(OnnxGraphBuilder graph, string features);

    /// <summary>
    /// Emits the extra columns (<see cref="ExtraColumnNames"/>) from the probabilities [N, k] and their argmax [N, 1]
    /// (int64, 0-based); none by default.
    /// </summary>
    private protected virtual void EmitExtraColumns(OnnxGraphBuilder graph, string probabilities, string argmax, IDictionary<string, string> columns)
    {
    }

    // ---- What the base derives from it ----

    LabelNames ILogitsModel.Classes => Classes;

    torch.Device ILogitsModel.Device => NetworkDevice;

    torch.Tensor ILogitsModel.ForwardLogits(torch.Tensor features) => ForwardLogits(features);

    torch.nn.Module? ILogitsModel.Network => LogitsNetwork;

    double? ILogitsModel.LipschitzUpperBound() => LipschitzUpperBound();

    string IAllauzenTransformer.ComponentName => ComponentName;

    string IAllauzenTransformer.LoaderSignature => LoaderSignature;

    int IAllauzenTransformer.PayloadVersion => PayloadVersion;

    /// <summary>The network's settings, the classifier header (see <see cref="ClassifierHeader"/>), the network's tensors.</summary>
    void IAllauzenTransformer.SavePayload(ModelPayloadWriter writer)
    {
        SaveSettings(writer);
        writer.WriteString(ClassifierHeader.Features, FeatureColumnName);
        if (SavesFeatureCount)
            writer.WriteInt64s(ClassifierHeader.FeatureCountEntry, [FeatureCount]);
        writer.WriteString(ClassifierHeader.Score, ScoreColumnName);
        writer.WriteString(ClassifierHeader.PredictedLabel, PredictedLabelColumnName);
        writer.WriteString("classType", Classes.TypeName);
        writer.WriteStrings("classes", Classes.Values);
        SaveNetwork(writer);
    }

    /// <summary>Logits, then Softmax → <c>Score</c> and ArgMax + 1 → <c>PredictedLabel</c> (uint32 key), then the extra columns.</summary>
    void IOnnxExportable.EmitOnnx(OnnxGraphBuilder graph, IDictionary<string, string> columns)
    {
        string logits = EmitLogits(graph, columns[FeatureColumnName]);
        string probs = graph.Node("Softmax", [logits], "probabilities", ("axis", 1L));
        string argmax = graph.Node("ArgMax", [probs], "argmax", ("axis", 1L), ("keepdims", 1L));
        string key = graph.Node("Add", [argmax, graph.Initializer("one", [1L], 1)], "key");
        columns[ScoreColumnName] = probs;
        columns[PredictedLabelColumnName] = graph.Node("Cast", [key], "predicted_label", ("to", (long)OnnxElementType.UInt32));
        EmitExtraColumns(graph, probs, argmax, columns);
    }

    private sealed class ClassifierScorer : BatchScorer
    {
        private readonly AllauzenClassifierTransformerBase _parent;
        private readonly FeatureVectorReader _reader;
        private readonly float[] _features;
        private readonly float[] _probs;
        private readonly uint[] _predicted;
        private readonly float[] _extra;
        private readonly int _extraCount;

        public ClassifierScorer(AllauzenClassifierTransformerBase parent, DataViewSchema inputSchema, int capacity)
            : base(capacity)
        {
            _parent = parent;
            _reader = new FeatureVectorReader(inputSchema[parent.FeatureColumnName], parent.FeatureCount);
            _features = new float[capacity * parent.FeatureCount];
            _probs = new float[capacity * parent.NumberOfClasses];
            _predicted = new uint[capacity];
            _extraCount = parent.ExtraColumnNames.Count;
            _extra = new float[capacity * _extraCount];
        }

        public override void Bind(DataViewRow input) => _reader.Bind(input);

        public override void Load(int slot) => _reader.CopyTo(_features, slot);

        public override void Score(int count)
        {
            _parent.Forward(_features, count, _probs);
            int k = _parent.NumberOfClasses;
            for (int i = 0; i < count; i++)
            {
                var row = _probs.AsSpan(i * k, k);
                int best = 0;
                for (int c = 1; c < k; c++)
                {
                    if (row[c] > row[best])
                        best = c;
                }
                _predicted[i] = (uint)(best + 1);
                if (_extraCount > 0)
                    _parent.ComputeExtraColumns(row, _extra.AsSpan(i * _extraCount, _extraCount));
            }
        }

        public override Delegate GetGetter(int addedColumn, Func<int> slot)
        {
            int k = _parent.NumberOfClasses;
            return addedColumn switch
            {
                0 => (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
                {
                    int s = slot();
                    var editor = VBufferEditor.Create(ref dst, k);
                    _probs.AsSpan(s * k, k).CopyTo(editor.Values);
                    dst = editor.Commit();
                }),
                1 => (ValueGetter<uint>)((ref uint dst) => dst = _predicted[slot()]),
                _ when addedColumn - 2 < _extraCount => (ValueGetter<float>)((ref float dst) => dst = _extra[slot() * _extraCount + addedColumn - 2]),
                _ => throw new ArgumentOutOfRangeException(nameof(addedColumn)),
            };
        }
    }
}

/// <summary>
/// The classifier header of a payload, as <see cref="AllauzenClassifierTransformerBase"/> writes it: the feature, score and
/// predicted-label column names and the class names (with, for some networks, the feature count).
/// </summary>
/// <param name="FeatureColumnName">The feature column.</param>
/// <param name="ScoreColumnName">The score column.</param>
/// <param name="PredictedLabelColumnName">The predicted-label column.</param>
/// <param name="Classes">The class names, checked against the network's class count.</param>
internal sealed record ClassifierHeader(string FeatureColumnName, string ScoreColumnName, string PredictedLabelColumnName, LabelNames Classes)
{
    internal const string Features = "features";
    internal const string FeatureCountEntry = "featureCount";
    internal const string Score = "score";
    internal const string PredictedLabel = "predictedLabel";

    /// <summary>Reads the header of a classifier with <paramref name="classCount"/> classes (names checked as column names).</summary>
    public static ClassifierHeader Read(ModelPayloadReader payload, int classCount)
    {
        var classes = LabelNames.Read(payload, classCount);
        return new(payload.ReadName(Features), payload.ReadName(Score), payload.ReadName(PredictedLabel), classes);
    }

    /// <summary>The stored feature count (for networks that save it), in [1, int.MaxValue].</summary>
    public static int ReadFeatureCount(ModelPayloadReader payload) => payload.ReadInt32(FeatureCountEntry, 1, int.MaxValue);
}
