using Allauzen.ML.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Core;

/// <summary>
/// Base of Allauzen multiclass classifiers: reads a <c>Vector&lt;Single, n&gt;</c> feature column and
/// appends <c>Score</c> (class probabilities, slot names = class names) and <c>PredictedLabel</c>
/// (a key with the label's key values), so that <c>MulticlassClassification.Evaluate</c>,
/// <c>MapKeyToValue</c> and <c>PredictionEngine</c> work as with ML.NET's own trainers.
/// </summary>
public abstract class AllauzenClassifierTransformerBase : AllauzenTransformerBase
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
    /// Computes class probabilities for <paramref name="count"/> rows: <paramref name="features"/> holds
    /// count × <see cref="FeatureCount"/> values, <paramref name="probabilities"/> receives count × k.
    /// </summary>
    internal abstract void Forward(float[] features, int count, float[] probabilities);

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) =>
        new ClassifierScorer(this, inputSchema, capacity);

    /// <summary>
    /// Scores a block of feature rows (row-major, count × <see cref="FeatureCount"/>) into class
    /// probabilities (count × <see cref="NumberOfClasses"/>) without an IDataView: the fast path used
    /// by benchmarks and by callers that hold plain arrays.
    /// </summary>
    public float[] PredictProbabilities(ReadOnlySpan<float> features)
    {
        if (features.Length % FeatureCount != 0)
            throw new ArgumentException($"The feature block has {features.Length} values, not a multiple of the feature count {FeatureCount}.", nameof(features));
        int count = features.Length / FeatureCount;
        var probs = new float[count * NumberOfClasses];
        if (count > 0)
            Forward(features.ToArray(), count, probs);
        return probs;
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
