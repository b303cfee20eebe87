using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Allauzen.ML.Persistence;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Smoothing.SmoothingStatisticsCertifierTransformer), Allauzen.ML.Smoothing.SmoothingStatisticsCertifierTransformer.LoaderSignature, "SmoothingStatisticsCertifier")]

namespace Allauzen.ML.Smoothing;

/// <summary>Options of <c>ml.Transforms.CertifySmoothingStatistics</c>.</summary>
public sealed class SmoothingCertifierOptions
{
    /// <summary>The certification procedure. Default <see cref="SmoothingMethod.Cohen"/>.</summary>
    public SmoothingMethod Method { get; set; } = SmoothingMethod.Cohen;

    /// <summary>Failure probability α, in (0, 0.5). Default 0.001.</summary>
    public double Alpha { get; set; } = 0.001;

    /// <summary>The σ the statistics were sampled with (the radius scales with it). Default 0.25.</summary>
    public double Sigma { get; set; } = 0.25;

    /// <summary>R_multi or R_mono for <see cref="SmoothingMethod.BridgingCpm"/>. Default R_multi.</summary>
    public CpmRadius CpmRadius { get; set; } = CpmRadius.Multi;

    /// <summary>
    /// For <see cref="SmoothingMethod.BridgingCpm"/>: the certified Lipschitz constant of the base model's logits, to
    /// certify with the Lipschitz-based radius (see <see cref="RandomizedSmoothingOptions.LipschitzConstant"/>). The
    /// statistics must then come from a sampling stage configured the same way (BridgingCpm with a Lipschitz constant
    /// and the same <see cref="LipschitzSoftmaxScale"/>): the first map of <c>MapSums</c> is that softmax. Default null.
    /// </summary>
    public double? LipschitzConstant { get; set; }

    /// <summary>The inverse temperature t of the sampled softmax (see <see cref="RandomizedSmoothingOptions.LipschitzSoftmaxScale"/>). Default 1.</summary>
    public double LipschitzSoftmaxScale { get; set; } = 1.0;

    internal void Validate()
    {
        if (LipschitzConstant is { } l && (!(l > 0) || double.IsNaN(l)))
            throw new ArgumentOutOfRangeException(nameof(LipschitzConstant), l, $"LipschitzConstant must be a positive certified bound (got {l}).");
        if (LipschitzConstant is not null && Method != SmoothingMethod.BridgingCpm)
            throw new ArgumentOutOfRangeException(nameof(LipschitzConstant), Method, $"The Lipschitz-based radius is the BridgingCpm method's; Method is {Method}.");
        if (!(LipschitzSoftmaxScale > 0) || double.IsInfinity(LipschitzSoftmaxScale))
            throw new ArgumentOutOfRangeException(nameof(LipschitzSoftmaxScale), LipschitzSoftmaxScale, $"LipschitzSoftmaxScale must be positive and finite (got {LipschitzSoftmaxScale}).");
        if (!Enum.IsDefined(Method))
            throw new ArgumentOutOfRangeException(nameof(Method), Method, $"Method {Method} is not a defined SmoothingMethod.");
        if (!(Alpha > 0 && Alpha < 0.5))
            throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, $"Alpha must lie in (0, 0.5): a certificate that fails with probability 1/2 or more certifies nothing (got {Alpha}).");
        if (!(Sigma > 0) || double.IsInfinity(Sigma))
            throw new ArgumentOutOfRangeException(nameof(Sigma), Sigma, $"Sigma must be positive and finite (got {Sigma}).");
        if (!Enum.IsDefined(CpmRadius))
            throw new ArgumentOutOfRangeException(nameof(CpmRadius), CpmRadius, $"CpmRadius {CpmRadius} is not a defined CpmRadius.");
    }
}

/// <summary>The estimator of <see cref="SmoothingStatisticsCertifierTransformer"/> (nothing to fit).</summary>
public sealed class SmoothingStatisticsCertifier : IEstimator<SmoothingStatisticsCertifierTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly SmoothingCertifierOptions _options;

    internal SmoothingStatisticsCertifier(IHostEnvironment env, SmoothingCertifierOptions options)
    {
        _options = EstimatorArguments.Validated(env, options, o => o.Validate());
        _env = env;
    }

    /// <summary>Checks the statistics columns and returns the certifier.</summary>
    /// <param name="input">Output of the sampling stage.</param>
    public SmoothingStatisticsCertifierTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var t = new SmoothingStatisticsCertifierTransformer(_env, _options.Method, _options.Alpha, _options.Sigma, _options.CpmRadius,
            _options.LipschitzConstant, _options.LipschitzSoftmaxScale);
        t.CheckInputSchema(input.Schema);
        return t;
    }

    /// <summary>The input shape plus the certificate columns.</summary>
    /// <param name="inputSchema">The input shape.</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        foreach (var c in SmoothingStatisticsCertifierTransformer.Needed(_options.Method, _options.LipschitzConstant is not null))
        {
            if (!SchemaChecks.TryFind(inputSchema, c, out _))
                throw SchemaChecks.NotFound(c, "smoothing statistics");
        }
        return SchemaShapes.With(inputSchema, CertificateColumns.Shapes());
    }
}

/// <summary>
/// Certifies rows from the statistics of <see cref="SmoothingSamplerTransformer"/> (vote counts and simplex-map
/// moments): the cheap, re-runnable stage of the sample-once / certify-many split. Appends PredictedLabel,
/// Abstained, CertifiedRadius, LowerBoundTopClass and UpperBoundRunnerUp.
/// </summary>
public sealed class SmoothingStatisticsCertifierTransformer : AllauzenTransformerBase, IAllauzenTransformer
{
    internal const string LoaderSignature = "ALZ-RSCS";
    private DataViewSchema.DetachedColumn[] _added = [];
    private int _classes = -1;

    internal SmoothingStatisticsCertifierTransformer(IHostEnvironment env, SmoothingMethod method, double alpha, double sigma, CpmRadius cpm,
        double? lipschitz = null, double softmaxScale = 1.0)
        : base(env, "Allauzen.SmoothingStatisticsCertifier")
    {
        (Method, Alpha, Sigma, CpmRadius) = (method, alpha, sigma, cpm);
        (LipschitzConstant, LipschitzSoftmaxScale) = (lipschitz, softmaxScale);
    }

    /// <summary>The method.</summary>
    public SmoothingMethod Method { get; }

    /// <summary>α.</summary>
    public double Alpha { get; }

    /// <summary>σ.</summary>
    public double Sigma { get; }

    /// <summary>CPM radius kind.</summary>
    public CpmRadius CpmRadius { get; }

    /// <summary>The certified Lipschitz constant of the logits for BridgingCpm's Lipschitz-based radius, or null.</summary>
    public double? LipschitzConstant { get; }

    /// <summary>The inverse temperature of the sampled softmax used with <see cref="LipschitzConstant"/>.</summary>
    public double LipschitzSoftmaxScale { get; }

    internal static string[] Needed(SmoothingMethod method, bool lipschitz) => method switch
    {
        SmoothingMethod.LvmAsPublished or SmoothingMethod.LvmSound => [SmoothingColumnNames.EstimationCounts, SmoothingColumnNames.MapSums, SmoothingColumnNames.MapCentredSquares],
        SmoothingMethod.BridgingCpm when lipschitz =>
            [SmoothingColumnNames.SelectionCounts, SmoothingColumnNames.EstimationCounts, SmoothingColumnNames.MapSums, SmoothingColumnNames.MapCentredSquares],
        _ => [SmoothingColumnNames.SelectionCounts, SmoothingColumnNames.EstimationCounts],
    };

    private string[] NeededColumns => Needed(Method, LipschitzConstant is not null);

    internal override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

    internal override IReadOnlyList<string> InputColumnNames => NeededColumns;

    internal override void CheckInputSchema(DataViewSchema inputSchema)
    {
        int k = -1;
        foreach (var name in NeededColumns)
        {
            var col = inputSchema.GetColumnOrNull(name) ?? throw SchemaChecks.NotFound(name, "smoothing statistics");
            if (col.Type is not VectorDataViewType vt || vt.ItemType != NumberDataViewType.Double || !vt.IsKnownSize)
                throw SchemaChecks.Mismatch(name, "smoothing statistics", "Vector<Double, n> of known size", col.Type.ToString()!);
            if (name == SmoothingColumnNames.EstimationCounts)
                k = vt.Size;
        }
        foreach (var name in NeededColumns)
        {
            int size = ((VectorDataViewType)inputSchema[name].Type).Size;
            if (size % k != 0 || (name == SmoothingColumnNames.SelectionCounts && size != k))
                throw SchemaChecks.Mismatch(name, "smoothing statistics", $"a multiple of the {k} classes of '{SmoothingColumnNames.EstimationCounts}'", $"Vector<Double, {size}>");
        }
        if (k != _classes)
        {
            _classes = k;
            _added = [.. CertificateColumns.Columns(LabelNames.Default(k))];
        }
    }

    string IAllauzenTransformer.ComponentName => "SmoothingStatisticsCertifier";

    string IAllauzenTransformer.LoaderSignature => LoaderSignature;

    int IAllauzenTransformer.PayloadVersion => 1;

    void IAllauzenTransformer.SavePayload(ModelPayloadWriter writer) =>
        writer.WriteJson("options", new SmoothingCertifierOptions
        {
            Method = Method, Alpha = Alpha, Sigma = Sigma, CpmRadius = CpmRadius, LipschitzConstant = LipschitzConstant, LipschitzSoftmaxScale = LipschitzSoftmaxScale,
        });

    internal static SmoothingStatisticsCertifierTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(1);
        var o = payload.ReadJson<SmoothingCertifierOptions>("options");
        payload.ValidateSettings("options", o.Validate);
        return new SmoothingStatisticsCertifierTransformer(env, o.Method, o.Alpha, o.Sigma, o.CpmRadius, o.LipschitzConstant, o.LipschitzSoftmaxScale);
    }

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) => new Scorer(this, inputSchema, capacity);

    private sealed class Scorer : BatchScorer
    {
        private readonly SmoothingStatisticsCertifierTransformer _p;
        private readonly DataViewSchema.Column[] _cols;
        private readonly ValueGetter<VBuffer<double>>?[] _getters;
        private readonly double[][][] _values;
        private readonly SmoothingCertificate[] _certs;

        public Scorer(SmoothingStatisticsCertifierTransformer parent, DataViewSchema schema, int capacity) : base(capacity)
        {
            _p = parent;
            parent.CheckInputSchema(schema);
            _cols = [.. parent.NeededColumns.Select(n => schema[n])];
            _getters = new ValueGetter<VBuffer<double>>?[_cols.Length];
            _values = [.. _cols.Select(c => Enumerable.Range(0, capacity).Select(_ => new double[((VectorDataViewType)c.Type).Size]).ToArray())];
            _certs = new SmoothingCertificate[capacity];
        }

        public override void Bind(DataViewRow input)
        {
            for (int i = 0; i < _cols.Length; i++)
                _getters[i] = input.GetGetter<VBuffer<double>>(_cols[i]);
        }

        public override void Load(int slot)
        {
            VBuffer<double> buffer = default;
            for (int i = 0; i < _cols.Length; i++)
            {
                _getters[i]!(ref buffer);
                buffer.CopyTo(_values[i][slot]);
            }
        }

        public override void Score(int count)
        {
            bool lvm = _p.Method is SmoothingMethod.LvmAsPublished or SmoothingMethod.LvmSound;
            for (int s = 0; s < count; s++)
            {
                if (lvm)
                {
                    var est = ToCounts(_values[0][s]);
                    int k = est.Length;
                    var sums = _values[1][s];
                    var squares = _values[2][s];
                    long n = est.Sum();
                    var maps = new SimplexMapStatistics[sums.Length / k];
                    for (int m = 0; m < maps.Length; m++)
                        maps[m] = new SimplexMapStatistics(new SimplexMap(SimplexMapKind.Softmax, 1), n, sums[(m * k)..((m + 1) * k)], squares[(m * k)..((m + 1) * k)]);
                    _certs[s] = SmoothingCertifier.Lvm(est, maps, _p.Alpha, _p.Sigma, _p.Method == SmoothingMethod.LvmSound);
                }
                else
                {
                    var sel = ToCounts(_values[0][s]);
                    var est = ToCounts(_values[1][s]);
                    if (_p.Method == SmoothingMethod.BridgingCpm && _p.LipschitzConstant is { } l)
                    {
                        int k = est.Length;
                        var soft = new SimplexMapStatistics(new SimplexMap(SimplexMapKind.Softmax, _p.LipschitzSoftmaxScale), est.Sum(),
                            _values[2][s][..k], _values[3][s][..k]);
                        _certs[s] = SmoothingCertifier.CpmLipschitz(sel, soft, _p.Alpha, _p.Sigma, _p.CpmRadius,
                            SmoothingCertifier.SoftmaxBucketLipschitz(l, _p.LipschitzSoftmaxScale));
                        continue;
                    }
                    _certs[s] = _p.Method == SmoothingMethod.Cohen
                        ? SmoothingCertifier.Cohen(sel, est, _p.Alpha, _p.Sigma)
                        : SmoothingCertifier.Cpm(sel, est, _p.Alpha, _p.Sigma, _p.CpmRadius);
                }
            }
        }

        private static long[] ToCounts(double[] v) => [.. v.Select(x => (long)Math.Round(x))];

        public override Delegate GetGetter(int addedColumn, Func<int> slot) => CertificateColumns.Getter(addedColumn, _certs, slot);
    }
}
