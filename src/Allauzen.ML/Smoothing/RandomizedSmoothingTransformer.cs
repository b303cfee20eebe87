using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Allauzen.ML.Persistence;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Smoothing.RandomizedSmoothingTransformer), Allauzen.ML.Smoothing.RandomizedSmoothingTransformer.LoaderSignature, "RandomizedSmoothing")]
[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Smoothing.SmoothingSamplerTransformer), Allauzen.ML.Smoothing.SmoothingSamplerTransformer.LoaderSignature, "SmoothingSampler")]

namespace Allauzen.ML.Smoothing;

/// <summary>The settings a fitted smoothing transformer keeps (persisted as JSON).</summary>
internal sealed record SmoothingSettings(string FeatureColumnName, double Sigma, int SelectionSamples, int EstimationSamples,
    double Alpha, SmoothingMethod Method, int Seed, int BatchSize, CpmRadius CpmRadius, SimplexMap[] Maps, double? LogitsLipschitz = null,
    string? RowKeyColumnName = null)
{
    /// <param name="o">The options.</param>
    /// <param name="logitsLipschitz">The resolved certified Lipschitz constant of the logits (BridgingCpm's Lipschitz radius), or null.</param>
    public static SmoothingSettings From(RandomizedSmoothingOptions o, double? logitsLipschitz) =>
        new(o.FeatureColumnName, o.Sigma, o.SelectionSamples, o.EstimationSamples, o.Alpha, o.Method, o.Seed, o.BatchSize, o.CpmRadius, [.. o.EffectiveMaps],
            logitsLipschitz, o.RowKeyColumnName);

    /// <summary>
    /// Checks settings read from a file with the options' own rules (<see cref="RandomizedSmoothingOptions.ValidateSettings"/>),
    /// and that the stored maps are exactly those these options collect for the method.
    /// </summary>
    public void Validate(ModelPayloadReader payload, string entry)
    {
        if (Maps is null)
            throw payload.Invalid(entry, nameof(Maps), "is missing");
        bool lipschitz = Method == SmoothingMethod.BridgingCpm && LogitsLipschitz is not null;
        var options = new RandomizedSmoothingOptions
        {
            FeatureColumnName = FeatureColumnName, Sigma = Sigma, SelectionSamples = SelectionSamples, EstimationSamples = EstimationSamples,
            Alpha = Alpha, Method = Method, Seed = Seed, BatchSize = BatchSize, CpmRadius = CpmRadius, LipschitzConstant = LogitsLipschitz,
            LvmMaps = Method is SmoothingMethod.LvmAsPublished or SmoothingMethod.LvmSound ? Maps : null,
            LipschitzSoftmaxScale = lipschitz && Maps.Length == 1 ? Maps[0].T : 1.0, RowKeyColumnName = RowKeyColumnName,
        };
        payload.ValidateSettings(entry, options.ValidateSettings);
        var expected = options.EffectiveMaps;
        payload.Require(Maps.Length > 0 || expected.Count == 0, entry, nameof(Maps), $"is empty; method {Method} needs simplex maps");
        payload.Require(Maps.AsSpan().SequenceEqual(expected.ToArray()), entry, nameof(Maps),
            $"holds {Maps.Length} maps where method {Method}{(lipschitz ? " with a Lipschitz constant" : "")} collects {expected.Count}");
    }
}

/// <summary>
/// Shared part of the two transformers that run the base model under noise: the base model, the sampler, the
/// feature reading and persistence. <see cref="RandomizedSmoothingTransformer"/> appends certificates,
/// <see cref="SmoothingSamplerTransformer"/> appends the sufficient statistics.
/// </summary>
public abstract class SmoothingTransformerBase : AllauzenTransformerBase, IAllauzenTransformer
{
    private readonly DataViewSchema.DetachedColumn[] _added;

    private protected SmoothingTransformerBase(IHostEnvironment env, string name, SmoothingBaseModel model, SmoothingSettings settings)
        : base(env, name)
    {
        BaseModel = model;
        Settings = settings;
        Sampler = new SmoothingSampler(model, settings.Sigma, settings.SelectionSamples, settings.EstimationSamples, settings.BatchSize, settings.Maps);
        _added = [.. BuildColumns(), Column(SmoothingColumnNames.NoiseSeed, NumberDataViewType.UInt64)];
        if (settings.Method != SmoothingMethod.LvmAsPublished && settings.Method != SmoothingMethod.LvmSound)
        {
            long minimum = RandomizedSmoothingOptions.MinimumUsefulSamples(settings.Alpha);
            if (settings.EstimationSamples < minimum)
            {
                using var ch = Host.Start("RandomizedSmoothing");
                ch.Warning(MessageSensitivity.None, Cap(settings.EstimationSamples, settings.Alpha, settings.Sigma, minimum));
            }
        }
    }

    internal static string Cap(long n, double alpha, double sigma, long minimum) =>
        $"EstimationSamples n = {n} is too small to ever certify at Alpha = {alpha}: even n votes out of n give p̲A = α^(1/n) = "
        + $"{Math.Exp(Math.Log(alpha) / n):G6} < 0.5, so every row abstains (the cap σΦ⁻¹(α^(1/n)) = {SmoothingCertifier.SaturationRadius(sigma, n, alpha):G6} is not positive). "
        + $"Use n ≥ {minimum}.";

    internal SmoothingBaseModel BaseModel { get; }

    internal SmoothingSettings Settings { get; }

    internal SmoothingSampler Sampler { get; }

    /// <summary>Progress receiver (not persisted).</summary>
    public IProgress<SmoothingProgress>? Progress { get; set; }

    /// <summary>Cancellation of running passes (not persisted).</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Name of the feature column the noise is added to.</summary>
    public string FeatureColumnName => Settings.FeatureColumnName;

    /// <summary>Noise level σ.</summary>
    public double Sigma => Settings.Sigma;

    /// <summary>Number of classes of the base model.</summary>
    public int NumberOfClasses => BaseModel.ClassCount;

    /// <summary>
    /// The largest radius any row can get with these settings, σΦ⁻¹(α^(1/n)) (all n votes for one class);
    /// certified-accuracy curves are flat zero beyond it.
    /// </summary>
    public double SaturationRadius => SmoothingCertifier.SaturationRadius(Settings.Sigma, Settings.EstimationSamples, Settings.Alpha);

    /// <summary>The stage's own added columns; <c>NoiseSeed</c> follows them.</summary>
    private protected abstract IEnumerable<DataViewSchema.DetachedColumn> BuildColumns();

    private protected abstract string Signature { get; }

    internal override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

    /// <summary>The row key column the noise is seeded from, or null (seeded from the row id). See <see cref="RandomizedSmoothingOptions.RowKeyColumnName"/>.</summary>
    public string? RowKeyColumnName => Settings.RowKeyColumnName;

    internal override IReadOnlyList<string> InputColumnNames =>
        Settings.RowKeyColumnName is { } key ? [Settings.FeatureColumnName, key] : [Settings.FeatureColumnName];

    internal override void CheckInputSchema(DataViewSchema inputSchema)
    {
        SchemaChecks.FeatureVector(inputSchema, Settings.FeatureColumnName, "feature", BaseModel.FeatureCount);
        if (Settings.RowKeyColumnName is { } key)
            RowKeys.Find(inputSchema, key, "row key");
    }

    string IAllauzenTransformer.ComponentName => "RandomizedSmoothing";

    string IAllauzenTransformer.LoaderSignature => Signature;

    int IAllauzenTransformer.PayloadVersion => 1;

    void IAllauzenTransformer.SavePayload(ModelPayloadWriter writer)
    {
        writer.WriteJson("settings", Settings);
        BaseModel.Save(writer);
    }

    /// <summary>Reads the settings and the base model of a saved stage and builds the stage with <paramref name="create"/>.</summary>
    private protected static T LoadParts<T>(IHostEnvironment env, ModelPayloadReader payload, Func<SmoothingBaseModel, SmoothingSettings, T> create)
    {
        payload.RequireVersion(1);
        var settings = payload.ReadJson<SmoothingSettings>("settings");
        settings.Validate(payload, "settings");
        return create(SmoothingBaseModel.Load(env, payload), settings);
    }

    private protected static DataViewSchema.DetachedColumn Column(string name, DataViewType type) => CertificateColumns.Detached(name, type);

    /// <summary>Computes the added values for the sampled rows.</summary>
    private protected abstract SmoothingScorer CreateSmoothingScorer(DataViewSchema inputSchema, int capacity);

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) => CreateSmoothingScorer(inputSchema, capacity);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
            BaseModel.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>Reads features and row ids, samples, then lets the subclass fill its columns.</summary>
    private protected abstract class SmoothingScorer : BatchScorer
    {
        private readonly SmoothingTransformerBase _parent;
        private readonly DataViewSchema.Column _featureColumn;
        private readonly float[] _features;
        private readonly DataViewRowId[] _ids;
        private readonly ulong[] _keyHashes;
        private ValueGetter<VBuffer<float>>? _getter;
        private ValueGetter<DataViewRowId>? _idGetter;
        private Func<ulong>? _keyHash;
        private DataViewRow? _row;
        private VBuffer<float> _buffer;

        protected SmoothingScorer(SmoothingTransformerBase parent, DataViewSchema inputSchema, int capacity) : base(capacity)
        {
            _parent = parent;
            _featureColumn = inputSchema[parent.Settings.FeatureColumnName];
            _features = new float[capacity * parent.BaseModel.FeatureCount];
            _ids = new DataViewRowId[capacity];
            _keyHashes = new ulong[capacity];
            Stats = new RowStatistics[capacity];
            for (int i = 0; i < capacity; i++)
                Stats[i] = new RowStatistics(parent.BaseModel.ClassCount, parent.Settings.Maps.Length);
        }

        protected RowStatistics[] Stats { get; }

        public override void Bind(DataViewRow input)
        {
            _row = input;
            _getter = input.GetGetter<VBuffer<float>>(_featureColumn);
            _idGetter = input.GetIdGetter();
            _keyHash = _parent.Settings.RowKeyColumnName is { } key ? RowKeys.HashReader(input, input.Schema[key]) : null;
        }

        public override void Load(int slot)
        {
            _getter!(ref _buffer);
            int n = _parent.BaseModel.FeatureCount;
            if (_buffer.Length != n)
                throw new InvalidOperationException(
                    $"Feature column '{_parent.Settings.FeatureColumnName}' has {_buffer.Length} values at row {_row!.Position}; the base model expects {n}.");
            _buffer.CopyTo(_features.AsSpan(slot * n, n));
            foreach (float v in _features.AsSpan(slot * n, n))
            {
                if (!float.IsFinite(v))
                    throw new InvalidOperationException(
                        $"Feature column '{_parent.Settings.FeatureColumnName}' has a non-finite value at row {_row!.Position}; randomized smoothing needs finite inputs.");
            }
            if (_keyHash is not null)
                _keyHashes[slot] = _keyHash();
            else
                _idGetter!(ref _ids[slot]);
        }

        public override void Score(int count)
        {
            for (int i = 0; i < count; i++)
                Stats[i].Reset(_keyHash is not null
                    ? SmoothingSampler.RowSeed(_parent.Settings.Seed, _keyHashes[i])
                    : SmoothingSampler.RowSeed(_parent.Settings.Seed, _ids[i]));
            _parent.Sampler.Sample(_features, count, Stats, _parent.Progress, _parent.CancellationToken);
            Complete(count);
        }

        protected abstract void Complete(int count);
    }
}

/// <summary>
/// Certifies each row with randomized smoothing: appends <c>PredictedLabel</c> (key; missing = 0 when the
/// certifier abstains), <c>Abstained</c>, <c>CertifiedRadius</c> (L2, feature units), <c>LowerBoundTopClass</c>,
/// <c>UpperBoundRunnerUp</c> and <c>NoiseSeed</c>. Create it with <c>ml.Transforms.CertifyRandomizedSmoothing</c>.
/// </summary>
public sealed class RandomizedSmoothingTransformer : SmoothingTransformerBase
{
    internal const string LoaderSignature = "ALZ-RSCT";

    internal RandomizedSmoothingTransformer(IHostEnvironment env, SmoothingBaseModel model, SmoothingSettings settings)
        : base(env, "Allauzen.RandomizedSmoothing", model, settings)
    {
    }

    /// <summary>The certification method.</summary>
    public SmoothingMethod Method => Settings.Method;

    /// <summary>The failure probability α.</summary>
    public double Alpha => Settings.Alpha;

    /// <summary>
    /// The certified Lipschitz constant of the base model's logits used by BridgingCpm's Lipschitz-based radius
    /// (given as <see cref="RandomizedSmoothingOptions.LipschitzConstant"/> or read from the model), or null.
    /// </summary>
    public double? LipschitzConstant => Settings.LogitsLipschitz;

    private protected override string Signature => LoaderSignature;

    private protected override IEnumerable<DataViewSchema.DetachedColumn> BuildColumns() => CertificateColumns.Columns(BaseModel.Classes);

    internal static RandomizedSmoothingTransformer Load(IHostEnvironment env, ModelPayloadReader payload) =>
        LoadParts(env, payload, (model, settings) => new RandomizedSmoothingTransformer(env, model, settings));

    private protected override SmoothingScorer CreateSmoothingScorer(DataViewSchema inputSchema, int capacity) =>
        new CertifyScorer(this, inputSchema, capacity);

    /// <summary>The certificate of one row's statistics under the given settings.</summary>
    internal static SmoothingCertificate Certify(RowStatistics s, SmoothingSettings o, IReadOnlyList<SimplexMap> maps) => o.Method switch
    {
        SmoothingMethod.Cohen => SmoothingCertifier.Cohen(s.Selection, s.Estimation, o.Alpha, o.Sigma),
        SmoothingMethod.BridgingCpm when o.LogitsLipschitz is { } l => SmoothingCertifier.CpmLipschitz(s.Selection, s.MapStatistics(maps)[0], o.Alpha, o.Sigma,
            o.CpmRadius, SmoothingCertifier.SoftmaxBucketLipschitz(l, maps[0].T)),
        SmoothingMethod.BridgingCpm => SmoothingCertifier.Cpm(s.Selection, s.Estimation, o.Alpha, o.Sigma, o.CpmRadius),
        SmoothingMethod.LvmAsPublished => SmoothingCertifier.Lvm(s.Estimation, s.MapStatistics(maps), o.Alpha, o.Sigma, sound: false),
        _ => SmoothingCertifier.Lvm(s.Estimation, s.MapStatistics(maps), o.Alpha, o.Sigma, sound: true),
    };

    private sealed class CertifyScorer(RandomizedSmoothingTransformer parent, DataViewSchema inputSchema, int capacity)
        : SmoothingScorer(parent, inputSchema, capacity)
    {
        private readonly SmoothingCertificate[] _certs = new SmoothingCertificate[capacity];
        private readonly ulong[] _seeds = new ulong[capacity];

        protected override void Complete(int count)
        {
            for (int i = 0; i < count; i++)
            {
                _certs[i] = Certify(Stats[i], parent.Settings, parent.Settings.Maps);
                _seeds[i] = Stats[i].Seed;
            }
        }

        public override Delegate GetGetter(int addedColumn, Func<int> slot) => addedColumn == CertificateColumns.Count
            ? (ValueGetter<ulong>)((ref ulong v) => v = _seeds[slot()])
            : CertificateColumns.Getter(addedColumn, _certs, slot);
    }
}

/// <summary>
/// The sampling stage alone: appends each row's vote counts (<c>SelectionCounts</c>, <c>EstimationCounts</c>,
/// Vector&lt;Double, K&gt;), the simplex-map moments of the LVM methods (<c>MapSums</c>, <c>MapCentredSquares</c>,
/// Vector&lt;Double, M·K&gt;, map-major) and <c>NoiseSeed</c>. Cache or save the result once, then certify it
/// many ways with <c>ml.Transforms.CertifySmoothingStatistics</c> (any α, σ-consistent method) at no sampling cost.
/// </summary>
public sealed class SmoothingSamplerTransformer : SmoothingTransformerBase
{
    internal const string LoaderSignature = "ALZ-RSSM";

    internal SmoothingSamplerTransformer(IHostEnvironment env, SmoothingBaseModel model, SmoothingSettings settings)
        : base(env, "Allauzen.SmoothingSampler", model, settings)
    {
    }

    /// <summary>The simplex maps whose moments are collected, in column order.</summary>
    public IReadOnlyList<SimplexMap> Maps => Settings.Maps;

    private protected override string Signature => LoaderSignature;

    private protected override IEnumerable<DataViewSchema.DetachedColumn> BuildColumns()
    {
        int k = BaseModel.ClassCount, m = Settings.Maps.Length;
        yield return Column(SmoothingColumnNames.SelectionCounts, new VectorDataViewType(NumberDataViewType.Double, k));
        yield return Column(SmoothingColumnNames.EstimationCounts, new VectorDataViewType(NumberDataViewType.Double, k));
        if (m > 0)
        {
            yield return Column(SmoothingColumnNames.MapSums, new VectorDataViewType(NumberDataViewType.Double, m * k));
            yield return Column(SmoothingColumnNames.MapCentredSquares, new VectorDataViewType(NumberDataViewType.Double, m * k));
        }
    }

    internal static SmoothingSamplerTransformer Load(IHostEnvironment env, ModelPayloadReader payload) =>
        LoadParts(env, payload, (model, settings) => new SmoothingSamplerTransformer(env, model, settings));

    private protected override SmoothingScorer CreateSmoothingScorer(DataViewSchema inputSchema, int capacity) =>
        new SampleScorer(this, inputSchema, capacity);

    private sealed class SampleScorer(SmoothingSamplerTransformer parent, DataViewSchema inputSchema, int capacity)
        : SmoothingScorer(parent, inputSchema, capacity)
    {
        private readonly bool _maps = parent.Settings.Maps.Length > 0;

        protected override void Complete(int count)
        {
        }

        private ValueGetter<VBuffer<double>> Vector(Func<RowStatistics, int, double> value, int size, Func<int> slot) =>
            (ref VBuffer<double> dst) =>
            {
                var s = Stats[slot()];
                var editor = VBufferEditor.Create(ref dst, size);
                for (int i = 0; i < size; i++)
                    editor.Values[i] = value(s, i);
                dst = editor.Commit();
            };

        public override Delegate GetGetter(int addedColumn, Func<int> slot)
        {
            int k = parent.BaseModel.ClassCount, mk = parent.Settings.Maps.Length * k;
            if (!_maps && addedColumn >= 2)
                addedColumn += 2;
            return addedColumn switch
            {
                0 => Vector((s, i) => s.Selection[i], k, slot),
                1 => Vector((s, i) => s.Estimation[i], k, slot),
                2 => Vector((s, i) => s.MapMean[i] * s.MapCount, mk, slot),
                3 => Vector((s, i) => s.MapM2[i], mk, slot),
                4 => (ValueGetter<ulong>)((ref ulong v) => v = Stats[slot()].Seed),
                _ => throw new ArgumentOutOfRangeException(nameof(addedColumn)),
            };
        }
    }
}

/// <summary>Column names of the randomized-smoothing components.</summary>
public static class SmoothingColumnNames
{
    /// <summary>Certified class (key; missing = 0 when abstaining).</summary>
    public const string PredictedLabel = "PredictedLabel";

    /// <summary>True when the certifier abstained.</summary>
    public const string Abstained = "Abstained";

    /// <summary>Certified L2 radius in feature units (0 when abstaining).</summary>
    public const string CertifiedRadius = AllauzenColumnNames.CertifiedRadius;

    /// <summary>Lower confidence bound p̲A of the top class.</summary>
    public const string LowerBoundTopClass = "LowerBoundTopClass";

    /// <summary>Upper confidence bound p̄B of the runner-up.</summary>
    public const string UpperBoundRunnerUp = "UpperBoundRunnerUp";

    /// <summary>The row's noise seed (derived from the options' seed and the row key, or the row id without a key column).</summary>
    public const string NoiseSeed = "NoiseSeed";

    /// <summary>Votes of the n0 selection sample.</summary>
    public const string SelectionCounts = "SelectionCounts";

    /// <summary>Votes of the n estimation sample.</summary>
    public const string EstimationCounts = "EstimationCounts";

    /// <summary>Σ h_k per simplex map and class (map-major).</summary>
    public const string MapSums = "MapSums";

    /// <summary>Σ (h_k − mean)² per simplex map and class (map-major).</summary>
    public const string MapCentredSquares = "MapCentredSquares";
}
