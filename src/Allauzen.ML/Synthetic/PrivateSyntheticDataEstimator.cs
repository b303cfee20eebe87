using Allauzen.ML.Data;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Persistence;

namespace Allauzen.ML.Synthetic;

/// <summary>
/// Fits a differentially private synthetic-data generator (DPSWflow with fixed projections; Sebag et al., arXiv
/// 2312.08227). Create it with <c>ml.Transforms.PrivateSyntheticData(options)</c>.
/// </summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// | Input columns | |
/// | -- | -- |
/// | `Features` | `Vector<Single, d>` of known size, finite values; rows are divided by `ClipNorm` and clipped into the unit ball |
/// | `ClassConditional` (optional) | key type (apply `MapValueToKey`); missing keys are an error |
///
/// Fit reads the rows once and performs the only private operation: per class, the projections of the clipped rows
/// on K fixed random unit directions plus N(0, σ²) noise, summarised by M quantiles per direction. The class releases
/// read disjoint rows, so each spends the whole (ε, δ) (parallel composition; see <see cref="PrivacyReport"/>). The fitted
/// <see cref="PrivateSyntheticDataTransformer"/> keeps only those quantiles and the directions. With
/// <see cref="PrivateSyntheticDataOptions.Latent"/> set, Fit first trains an autoencoder, releases the unit-norm codes
/// of the rows instead, and the generator also keeps the decoder (see <see cref="PrivacyReport.CoversWholeGenerator"/>).
/// ]]></format>
/// </remarks>
public sealed class PrivateSyntheticDataEstimator : IEstimator<PrivateSyntheticDataTransformer>
{
    private readonly IHost _host;
    private readonly PrivateSyntheticDataOptions _options;

    internal PrivateSyntheticDataEstimator(IHostEnvironment env, PrivateSyntheticDataOptions options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _host = env.Register("Allauzen.PrivateSyntheticData");
        _options = options;
    }

    /// <summary>The input shape unchanged (the generator's <c>Transform</c> is the identity); checks the columns.</summary>
    /// <param name="inputSchema">The input shape; it must hold the feature column (and the label column when class-conditional).</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        if (_options.InputColumnNames is { } columns)
            TabularCodec.CheckShape(inputSchema, columns);
        else
            SchemaChecks.FeatureVector(inputSchema, _options.FeatureColumnName);
        if (_options.ClassConditional is string label)
            SchemaChecks.KeyLabel(inputSchema, label);
        return inputSchema;
    }

    /// <summary>Releases the noised projection quantiles of <paramref name="input"/> and returns the generator.</summary>
    /// <param name="input">The private rows.</param>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type (the message names it).</exception>
    /// <exception cref="InvalidOperationException">A value is not finite, a label is missing, or a class has no row.</exception>
    public PrivateSyntheticDataTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var o = _options;
        TabularCodec? tabular = null;
        if (o.InputColumnNames is not null)
            (input, o, tabular) = TabularCodec.Prepare(input, o);
        int d = SchemaChecks.FeatureVector(input.Schema, o.FeatureColumnName);
        o.ValidateTabular(d);
        var featureInfo = PersistedColumn.From(input.Schema[o.FeatureColumnName]);
        PersistedColumn? labelInfo = null;
        int classes = 1;
        if (o.ClassConditional is string label)
        {
            classes = SchemaChecks.KeyLabel(input.Schema, label);
            labelInfo = PersistedColumn.From(input.Schema[label]);
        }
        var rows = ReadClipped(input, o, d, classes, latentInput: o.Latent is not null);
        LatentAutoencoder? latent = null;
        if (o.Latent is not null)
        {
            // Latent mode: the flow's d is the code size; the bounds only clamp the decoder's output.
            (rows, latent) = LatentAutoencoder.FitAndEncode(rows, d, o);
            d = o.Latent.LatentDimension;
        }
        var settings = SyntheticSettings.From(o, d, classes);
        if (latent is not null)
            settings = settings with { LowerBounds = null, UpperBounds = null };
        var resampled = o.Mechanism == PrivateSyntheticMechanism.ResampledProjections ? ResampledProjections.Plan(o, d, classes) : null;
        if (resampled is not null)
            settings = ResampledProjections.Apply(settings, resampled);
        int k = settings.Projections, m = settings.Percentiles, directions = k * (resampled?.Steps ?? 1);
        var theta = resampled is null
            ? SlicedWassersteinFlow.UnitDirections(settings.Projections, d, o.Seed)
            : ResampledProjections.Directions(resampled.Steps, k, d, o.Seed);
        var quantiles = new float[(long)classes * directions * m];
        for (int c = 0; c < classes; c++)
        {
            o.CancellationToken.ThrowIfCancellationRequested();
            var y = rows[c];
            if (y.Count == 0)
                throw new InvalidOperationException(
                    $"Class {c + 1} of the label column '{o.ClassConditional}' has no row: every class needs rows to be released.");
            var flat = y.SelectMany(r => r).ToArray();
            // The noise must stay secret: its seed comes from the OS generator, never from Seed (which is persisted).
            var q = resampled is null
                ? SlicedWassersteinFlow.ReleaseQuantiles(flat, y.Count, d, theta, k, m, settings.Sigma, SecretSeed.Next())
                : ResampledProjections.Release(y, d, theta, k, m, resampled, settings.Sigma, o.CancellationToken);
            q.CopyTo(quantiles, (long)c * directions * m);
        }
        return new PrivateSyntheticDataTransformer(_host, settings, featureInfo, labelInfo, theta, quantiles, resampled, tabular, latent)
        {
            Progress = o.Progress,
            CancellationToken = o.CancellationToken,
        };
    }

    /// <summary>Reads the rows per class, divided by ClipNorm and projected into the unit ball (as read, only checked
    /// finite, when <paramref name="latentInput"/>: the autoencoder's codes are what gets clipped).</summary>
    private static List<float[]>[] ReadClipped(IDataView input, PrivateSyntheticDataOptions o, int d, int classes, bool latentInput = false)
    {
        var lists = Enumerable.Range(0, classes).Select(_ => new List<float[]>()).ToArray();
        var feature = input.Schema[o.FeatureColumnName];
        var columns = new List<DataViewSchema.Column> { feature };
        DataViewSchema.Column? labelColumn = o.ClassConditional is string l ? input.Schema[l] : null;
        if (labelColumn is { } lc)
            columns.Add(lc);
        using var cursor = input.GetRowCursor(columns);
        var getter = cursor.GetGetter<VBuffer<float>>(feature);
        var labelGetter = labelColumn is { } lcol ? cursor.GetGetter<uint>(lcol) : null;
        var buffer = default(VBuffer<float>);
        uint key = 1;
        long row = -1;
        while (cursor.MoveNext())
        {
            row++;
            if ((row & 1023) == 0)
                o.CancellationToken.ThrowIfCancellationRequested();
            getter(ref buffer);
            var values = new float[d];
            buffer.CopyTo(values);
            double norm2 = 0;
            for (int t = 0; t < d; t++)
            {
                if (!float.IsFinite(values[t]))
                    throw new InvalidOperationException(
                        $"The feature column '{o.FeatureColumnName}' holds {values[t]} at row {row}, index {t}: every value must be finite.");
                if (latentInput)
                    continue;
                if (o.LowerBounds is { } lo && o.UpperBounds is { } hi)
                    values[t] = (float)((Math.Clamp(values[t], lo[t], hi[t]) - (double)lo[t]) / ((double)hi[t] - lo[t]) - 0.5);
                double v = values[t] / o.ClipNorm;
                norm2 += v * v;
            }
            // Unit-ball clipping (the sensitivity bound assumes ‖y‖ ≤ 1); float rounding is absorbed by the 1e-6 margin.
            double scale = latentInput ? 1 : 1 / o.ClipNorm * (norm2 > 1 ? (1 - 1e-6) / Math.Sqrt(norm2) : 1);
            for (int t = 0; t < d; t++)
                values[t] = (float)(values[t] * scale);
            labelGetter?.Invoke(ref key);
            if (key == 0 || key > classes)
                throw new InvalidOperationException(
                    $"The label column '{o.ClassConditional}' holds a missing or out-of-range key at row {row}: every row needs a class.");
            lists[key - 1].Add(values);
        }
        return lists;
    }
}

/// <summary>The persisted settings of a generator (everything but the tensors and the column descriptions).
/// <see cref="AnalyticCalibration"/> is true for generators fitted since 2026-12-06 (σ from
/// <see cref="DpSlicedWasserstein.AnalyticNoiseScale"/>); files without it were calibrated with the classical constant.</summary>
internal sealed record SyntheticSettings(int Dimensions, int Projections, int Percentiles, int SubProjections, int Steps,
    double StepSize, double Lambda, double ClipNorm, double Epsilon, double Delta, double Sigma, int Classes, int Seed,
    float[]? LowerBounds = null, float[]? UpperBounds = null, int[][]? CategoricalSlots = null, bool AnalyticCalibration = false)
{
    public static SyntheticSettings From(PrivateSyntheticDataOptions o, int d, int classes) =>
        new(d, o.NumberOfProjections, o.Percentiles, o.SubProjections, o.Steps, o.StepSize, o.Lambda, o.ClipNorm,
            o.Epsilon, o.Delta, DpSlicedWasserstein.AnalyticNoiseScale(o.NumberOfProjections, d, o.Epsilon, o.Delta),
            classes, o.Seed, o.LowerBounds?.ToArray(), o.UpperBounds?.ToArray(), o.CategoricalSlots?.Select(g => g?.ToArray()!).ToArray(),
            AnalyticCalibration: true);

    /// <summary>σ of the fixed-projection release these settings state: the analytic calibration, or the classical
    /// constant for older files.</summary>
    public double FixedNoiseScale() => AnalyticCalibration
        ? DpSlicedWasserstein.AnalyticNoiseScale(Projections, Dimensions, Epsilon, Delta)
        : DpSlicedWasserstein.NoiseScale(Projections, Dimensions, Epsilon, Delta);

    /// <summary>Maps one generated row (unit-ball scale) back to the feature scale: ×ClipNorm, then the inverse of the
    /// public-bounds map with clamping, then one-hot rounding of the categorical groups.</summary>
    public void ToFeatureScale(ReadOnlySpan<float> z, Span<float> output)
    {
        for (int t = 0; t < z.Length; t++)
        {
            double v = z[t] * ClipNorm;
            if (LowerBounds is { } lo && UpperBounds is { } hi)
                v = Math.Clamp(lo[t] + (v + 0.5) * ((double)hi[t] - lo[t]), lo[t], hi[t]);
            output[t] = (float)v;
        }
        foreach (var group in CategoricalSlots ?? [])
        {
            int best = group[0];
            foreach (int slot in group)
            {
                if (output[slot] > output[best])
                    best = slot;
            }
            // One-hot at the largest value: the group's upper bound (1 without bounds) for the winner, the lower bound (0) elsewhere.
            foreach (int slot in group)
                output[slot] = slot == best ? (UpperBounds?[slot] ?? 1f) : (LowerBounds?[slot] ?? 0f);
        }
    }

    /// <summary>The same settings as options, for the options' own validation rules.</summary>
    public PrivateSyntheticDataOptions ToOptions() => new()
    {
        Epsilon = Epsilon, Delta = Delta, NumberOfProjections = Projections, SubProjections = SubProjections,
        Percentiles = Percentiles, Steps = Steps, StepSize = StepSize, Lambda = Lambda, ClipNorm = ClipNorm, Seed = Seed,
        LowerBounds = LowerBounds, UpperBounds = UpperBounds, CategoricalSlots = CategoricalSlots,
    };

    public FlowSettings Flow => new(SubProjections, Steps, StepSize, Lambda, Sigma);
}
