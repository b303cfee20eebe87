using Allauzen.ML.Data;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Persistence;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Synthetic.PrivateSyntheticDataTransformer),
    Allauzen.ML.Synthetic.PrivateSyntheticDataTransformer.Signature, "PrivateSyntheticData")]

namespace Allauzen.ML.Synthetic;

/// <summary>
/// A fitted differentially private generator. It holds only the released statistics (K fixed unit directions and M
/// noised quantiles per direction and class) and runs the sliced-Wasserstein flow on them in <see cref="Generate"/>,
/// so the generator itself, its saved file and every generated row are post-processing of the release described by
/// <see cref="PrivacyReport"/>. It saves with <c>ml.Model.Save</c> and loads with <c>ml.Model.Load</c>.
/// </summary>
/// <remarks>
/// <see cref="Transform"/> returns its input unchanged: the generator does not map rows, it produces new ones.
/// </remarks>
public sealed class PrivateSyntheticDataTransformer : ITransformer, IAllauzenTransformer
{
    internal const string Signature = "ALZ-DPSW";
    private const int Version = 1;
    private const long MaxReleasedValues = 1L << 28;
    private readonly IHost _host;
    private readonly SyntheticSettings _settings;
    private readonly PersistedColumn _feature;
    private readonly PersistedColumn? _label;
    private readonly float[] _theta;
    private readonly float[] _quantiles;
    private readonly ResampledRelease? _resampled;
    private readonly TabularCodec? _tabular;
    private readonly LatentAutoencoder? _latent;

    internal PrivateSyntheticDataTransformer(IHostEnvironment env, SyntheticSettings settings, PersistedColumn feature,
        PersistedColumn? label, float[] theta, float[] quantiles, ResampledRelease? resampled = null, TabularCodec? tabular = null,
        LatentAutoencoder? latent = null)
    {
        _host = env.Register("Allauzen.PrivateSyntheticData");
        (_settings, _feature, _label) = (settings, feature, label);
        (_theta, _quantiles) = (theta, quantiles);
        (_resampled, _tabular, _latent) = (resampled, tabular, latent);
        PrivacyReport = new PrivacyReport
        {
            Epsilon = settings.Epsilon,
            Delta = settings.Delta,
            Sigma = settings.Sigma,
            Projections = settings.Projections,
            Classes = settings.Classes,
            Sensitivity = DpSlicedWasserstein.Sensitivity(settings.Projections, settings.Dimensions, settings.Delta),
            Mechanism = Describe(settings) + LatentScope(latent),
            CoversWholeGenerator = latent?.Architecture.TrainedOnPrivateData != true,
        };
        if (resampled is not null)
            PrivacyReport = ResampledProjections.Amend(PrivacyReport, settings, resampled);
        if (tabular is not null)
            PrivacyReport = tabular.Amend(PrivacyReport);
    }

    /// <summary>Released directions per class: K (fixed projections) or T·K (resampled).</summary>
    private int DirectionRows => _settings.Projections * (_resampled?.Steps ?? 1);

    /// <summary>The guarantee of the release this generator was fitted from (validated again when loaded).</summary>
    public PrivacyReport PrivacyReport { get; }

    /// <summary>The released quantiles (C×K×M, row-major), for tests.</summary>
    internal ReadOnlySpan<float> ReleasedQuantiles => _quantiles;

    /// <summary>The settings, for tests.</summary>
    internal SyntheticSettings Settings => _settings;

    /// <summary>The tabular codec (null in vector mode), for tests.</summary>
    internal TabularCodec? Tabular => _tabular;

    /// <summary>The latent decoder, or null when the flow runs on the features, for tests.</summary>
    internal LatentAutoencoder? Latent => _latent;

    /// <summary>Dimension of the generated rows (the feature column's size; in latent mode the flow runs on smaller codes).</summary>
    public int Dimensions => _latent?.Architecture.FeatureDimensions ?? _settings.Dimensions;

    /// <summary>Receives one report per flow step of <see cref="Generate"/> (copied from the options; not persisted).</summary>
    public IProgress<SyntheticDataProgress>? Progress { get; set; }

    /// <summary>Cancels <see cref="Generate"/> (copied from the options; not persisted).</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>
    /// Generates <paramref name="rows"/> synthetic rows: a view with the feature column (same name, type and slot names as
    /// the column the generator was fitted on; values in the original scale: multiplied back by ClipNorm, mapped back through the public bounds and one-hot rounded when those are set) and, when
    /// class-conditional, the label column (same key type); rows are split evenly across classes, class after class.
    /// Deterministic in <paramref name="seed"/> on a given machine and thread count.
    /// </summary>
    /// <param name="rows">Number of rows (≥ 1).</param>
    /// <param name="seed">Seed of the particles' start, the sub-projection draws and the smoothing noise.</param>
    /// <exception cref="OperationCanceledException"><see cref="CancellationToken"/> was cancelled.</exception>
    public IDataView Generate(int rows, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        var s = _settings;
        int d = s.Dimensions, k = s.Projections, m = s.Percentiles, classes = s.Classes, features = Dimensions;
        var data = new object[rows][];
        int next = 0;
        for (int c = 0; c < classes; c++)
        {
            int n = rows / classes + (c < rows % classes ? 1 : 0);
            if (n == 0)
                continue;
            int rowsK = DirectionRows;
            var q = _quantiles.AsSpan(c * rowsK * m, rowsK * m).ToArray();
            int cls = c;
            int flowSeed = unchecked((int)VectorSet.Hash((ulong)(uint)seed, (ulong)c));
            Action<int>? onStep = Progress is { } p ? step => p.Report(new SyntheticDataProgress(cls, classes, step, s.Steps)) : null;
            var x = _resampled is null
                ? SlicedWassersteinFlow.Run(_theta, k, d, q, m, s.Flow, n, flowSeed, onStep, CancellationToken)
                : ResampledProjections.Run(_theta, k, d, q, m, s.Flow, n, flowSeed, onStep, CancellationToken);
            var decoded = _latent?.Decode(x, n);
            for (int i = 0; i < n; i++)
            {
                var values = new float[features];
                if (decoded is not null)
                    decoded.AsSpan(i * features, features).CopyTo(values);
                else
                    s.ToFeatureScale(x.AsSpan(i * d, d), values);
                data[next++] = _label is null
                    ? [new VBuffer<float>(features, values)]
                    : [new VBuffer<float>(features, values), (uint)(c + 1)];
            }
        }
        return _tabular is null ? new ColumnStore(OutputSchema(), data) : _tabular.Decode(data, _label);
    }

    /// <summary>The schema of <see cref="Generate"/>'s output.</summary>
    public DataViewSchema OutputSchema()
    {
        if (_tabular is not null)
            return _tabular.OutputSchema(_label);
        var b = new DataViewSchema.Builder();
        var f = _feature.ToDetachedColumn();
        b.AddColumn(f.Name, f.Type, f.Annotations);
        if (_label?.ToDetachedColumn() is { } l)
            b.AddColumn(l.Name, l.Type, l.Annotations);
        return b.ToSchema();
    }

    /// <summary>False: the generator does not map rows.</summary>
    public bool IsRowToRowMapper => false;

    /// <summary>The input schema unchanged.</summary>
    /// <param name="inputSchema">Any schema.</param>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return inputSchema;
    }

    /// <summary>Not supported: the generator does not map rows (use <see cref="Generate"/>).</summary>
    /// <param name="inputSchema">Ignored.</param>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) =>
        throw new NotSupportedException("PrivateSyntheticDataTransformer does not map rows; call Generate(rows, seed).");

    /// <summary>Returns <paramref name="input"/> unchanged (the generator produces rows with <see cref="Generate"/>).</summary>
    /// <param name="input">Any data.</param>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return input;
    }

    void ICanSaveModel.Save(ModelSaveContext ctx) => NativeBridge.Save(ctx, this);

    string IAllauzenTransformer.ComponentName => "PrivateSyntheticData";

    string IAllauzenTransformer.LoaderSignature => Signature;

    int IAllauzenTransformer.PayloadVersion => Version;

    void IAllauzenTransformer.SavePayload(ModelPayloadWriter writer)
    {
        var s = _settings;
        writer.WriteJson("settings", s);
        writer.WriteColumnInfo("features", _feature);
        if (_label is not null)
            writer.WriteColumnInfo("label", _label);
        if (_resampled is not null)
            writer.WriteJson(ResampledRelease.PayloadName, _resampled);
        if (_tabular is not null)
            writer.WriteJson(TabularCodec.PayloadName, _tabular);
        writer.WriteTensor("theta", _theta, [DirectionRows, s.Dimensions]);
        writer.WriteTensor("quantiles", _quantiles, [s.Classes, DirectionRows, s.Percentiles]);
        _latent?.Save(writer);
    }

    /// <summary>
    /// Rebuilds a generator from its payload. The settings pass the options' own rules; σ must equal the noise scale the
    /// stated (ε, δ, K, d) imply (so a report cannot claim more privacy than its noise gives); the columns must
    /// match d and the classes; the directions must be unit vectors and every released quantile row finite and sorted.
    /// </summary>
    internal static PrivateSyntheticDataTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        var s = payload.ReadJson<SyntheticSettings>("settings");
        payload.Require(s is not null, "settings", "settings", "are missing");
        payload.Require(s!.Dimensions is >= 1 and <= 1_000_000, "settings", nameof(s.Dimensions), $"must be in [1, 1000000] (got {s.Dimensions})");
        payload.ValidateSettings("settings", () =>
        {
            var o = s.ToOptions();
            o.Validate();
            o.ValidateTabular(s.Dimensions);
        });
        payload.Require(s.Classes is >= 1 and <= 100_000, "settings", nameof(s.Classes), $"must be in [1, 100000] (got {s.Classes})");
        payload.Require((long)s.Projections * s.Dimensions <= MaxReleasedValues && (long)s.Classes * s.Projections * s.Percentiles <= MaxReleasedValues,
            "settings", "size", $"K·d and C·K·M must be at most {MaxReleasedValues}");
        var resampled = payload.Contains(ResampledRelease.PayloadName) ? payload.ReadJson<ResampledRelease>(ResampledRelease.PayloadName) : null;
        if (resampled is not null)
        {
            ResampledProjections.Validate(payload, s, resampled);
        }
        else
        {
            double sigma = s.FixedNoiseScale();
            payload.Require(Math.Abs(s.Sigma - sigma) <= 1e-9 * Math.Max(1, sigma), "settings", nameof(s.Sigma),
                $"must be the noise scale {sigma} implied by ε = {s.Epsilon}, δ = {s.Delta}, K = {s.Projections}, d = {s.Dimensions} (got {s.Sigma})");
        }
        int directionRows = s.Projections * (resampled?.Steps ?? 1);
        payload.Require((long)directionRows * s.Dimensions <= MaxReleasedValues && (long)s.Classes * directionRows * s.Percentiles <= MaxReleasedValues,
            "settings", "size", $"T·K·d and C·T·K·M must be at most {MaxReleasedValues}");
        var latent = payload.Contains("latent") ? LatentAutoencoder.Load(payload, s.Dimensions) : null;
        int features = latent?.Architecture.FeatureDimensions ?? s.Dimensions;
        var feature = payload.ReadColumnInfo("features");
        payload.Require(feature.IsVector && feature.ItemKind == PersistedItemKind.Single && feature.VectorSize == features,
            "features", "column", $"must be Vector<Single, {features}>");
        PersistedColumn? label = null;
        if (payload.Contains("label"))
        {
            label = payload.ReadColumnInfo("label");
            payload.Require(!label.IsVector && label.ItemKind == PersistedItemKind.Key && label.KeyCount == (ulong)s.Classes,
                "label", "column", $"must be a key type with {s.Classes} values");
        }
        else
        {
            payload.Require(s.Classes == 1, "label", "column", "is missing although the settings have several classes");
        }
        var theta = payload.ReadTensor("theta", [directionRows, s.Dimensions]);
        for (int k = 0; k < directionRows; k++)
        {
            double norm2 = 0;
            for (int t = 0; t < s.Dimensions; t++)
                norm2 += (double)theta[k * s.Dimensions + t] * theta[k * s.Dimensions + t];
            payload.Require(Math.Abs(norm2 - 1) <= 1e-4, "theta", $"row {k}", $"must be a unit vector (squared norm {norm2})");
        }
        var quantiles = payload.ReadTensor("quantiles", [s.Classes, directionRows, s.Percentiles]);
        for (long r = 0; r < (long)s.Classes * directionRows; r++)
        {
            // A resampled step whose Poisson sample was empty released nothing: its K rows are all NaN (skipped by the flow).
            if (resampled is not null && ResampledProjections.IsEmptyStep(quantiles, r, s.Projections, s.Percentiles))
                continue;
            for (int j = 0; j < s.Percentiles; j++)
            {
                float v = quantiles[r * s.Percentiles + j];
                payload.Require(float.IsFinite(v) && (j == 0 || v >= quantiles[r * s.Percentiles + j - 1]), "quantiles", $"row {r}",
                    "must be finite and non-decreasing");
            }
        }
        var tabular = payload.Contains(TabularCodec.PayloadName) ? payload.ReadJson<TabularCodec>(TabularCodec.PayloadName) : null;
        tabular?.Validate(payload, s);
        return new PrivateSyntheticDataTransformer(env, s, feature, label, theta, quantiles, resampled, tabular, latent);
    }

    /// <summary>What the latent mode adds to the mechanism's description: where the decoder came from.</summary>
    private static string LatentScope(LatentAutoencoder? latent) => latent?.Architecture switch
    {
        null => "",
        { TrainedOnPrivateData: true } a =>
            $" Latent mode (codes of size {a.LatentDimension}): the (ε, δ) covers ONLY the release of the codes; the autoencoder was " +
            "trained on the private rows without privacy, so the decoder kept in this generator, and every generated row, is NOT covered.",
        var a => $" Latent mode (codes of size {a.LatentDimension}): the autoencoder was trained on the public rows given as " +
            "Latent.PublicData (covered only if those rows are truly public); the private rows entered only through the release of their codes.",
    };

    private static string Describe(SyntheticSettings s)
    {
        string noise = double.IsPositiveInfinity(s.Epsilon)
            ? "no noise (ε = ∞): NOT differentially private"
            : s.AnalyticCalibration
                ? "Gaussian mechanism, σ = s·Δ per release with s the exact analytic calibration at (ε, δ/2) (Balle & Wang 2018); Δ holds with probability 1 − δ/2"
                : "Gaussian mechanism, σ = c·Δ/ε per release with c = √(2 ln(1.25/(δ/2))) (classical constant, proved for ε ≤ 1 only)";
        string classes = s.Classes == 1
            ? "one release"
            : $"{s.Classes} class releases on disjoint rows, each (ε, δ): parallel composition, for neighbouring data sets that differ in one row's features with its class unchanged (the class of a row and the class sizes are not protected)";
        return $"DPSWflow, fixed projections: {noise}; projections of rows clipped to the unit ball (ClipNorm {s.ClipNorm}) on " +
            $"K = {s.Projections} unit directions released once as M = {s.Percentiles} quantiles; {classes}; generation is post-processing.";
    }
}
