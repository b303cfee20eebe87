using Allauzen.ML.Data;
using Microsoft.ML.Data;

namespace Allauzen.ML.Quantization;

/// <summary>The computations behind <see cref="QuantizationMetrics"/>, row by row (public for reuse on plain arrays).</summary>
public static class QuantizationEvaluator
{
    /// <summary>Evaluates a scored view (see <c>ml.Regression.EvaluateQuantization</c> for the arguments).</summary>
    internal static QuantizationMetrics Evaluate(IDataView data, string labelColumnName, string? referenceSamplesColumnName,
        string pointsColumnName, string weightsColumnName, string scoreColumnName, double intervalLevel)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!(intervalLevel > 0 && intervalLevel < 1))
            throw new ArgumentOutOfRangeException(nameof(intervalLevel), intervalLevel, "intervalLevel must be in (0, 1).");
        var s = data.Schema;
        int n = SchemaChecks.FeatureVector(s, weightsColumnName, "quantization weights");
        int nd = SchemaChecks.FeatureVector(s, pointsColumnName, "quantization points");
        if (nd % n != 0)
            throw SchemaChecks.Mismatch(pointsColumnName, "quantization points", $"a multiple of the {n} weights", $"{nd} values");
        int d = nd / n;
        int ld = ConditionalQuantizationTrainer.LabelSize(s, labelColumnName);
        if (ld != d)
            throw SchemaChecks.Mismatch(labelColumnName, "label", $"{d} value(s) as the points", $"{ld}");
        var score = s.GetColumnOrNull(scoreColumnName) ?? throw SchemaChecks.NotFound(scoreColumnName, "score");
        DataViewSchema.Column? reference = null;
        if (referenceSamplesColumnName is not null)
        {
            reference = s.GetColumnOrNull(referenceSamplesColumnName) ?? throw SchemaChecks.NotFound(referenceSamplesColumnName, "reference samples");
            if (reference.Value.Type is not VectorDataViewType { ItemType: var it } || it != NumberDataViewType.Single)
                throw SchemaChecks.Mismatch(referenceSamplesColumnName, "reference samples", "Vector<Single>", reference.Value.Type.ToString()!);
        }
        var cols = new List<DataViewSchema.Column> { s[labelColumnName], s[pointsColumnName], s[weightsColumnName], score };
        if (reference is not null)
            cols.Add(reference.Value);
        using var cursor = data.GetRowCursor(cols);
        var getLabel = VectorOrScalar(cursor, s[labelColumnName], d);
        var getScore = VectorOrScalar(cursor, score, d);
        var getPoints = cursor.GetGetter<VBuffer<float>>(s[pointsColumnName]);
        var getWeights = cursor.GetGetter<VBuffer<float>>(s[weightsColumnName]);
        var getReference = reference is null ? null : cursor.GetGetter<VBuffer<float>>(reference.Value);
        VBuffer<float> pb = default, wb = default, rb = default;
        var y = new float[d];
        var m = new float[d];
        var f = new float[nd];
        var w = new float[n];
        double distortion = 0, se = 0, w2 = 0, energy = 0, width = 0;
        long rows = 0, covered = 0, referenced = 0;
        while (cursor.MoveNext())
        {
            getLabel(y);
            getScore(m);
            getPoints(ref pb);
            getWeights(ref wb);
            pb.CopyTo(f);
            wb.CopyTo(w);
            if (y.Any(v => !float.IsFinite(v)))
                continue;
            rows++;
            distortion += Distortion(y, f, d);
            for (int k = 0; k < d; k++)
                se += (y[k] - (double)m[k]) * (y[k] - (double)m[k]);
            if (d == 1)
            {
                var (lo, hi) = Interval(f, w, intervalLevel);
                width += hi - lo;
                if (y[0] >= lo && y[0] <= hi)
                    covered++;
                if (getReference is not null)
                {
                    getReference(ref rb);
                    var b = rb.DenseValues().Where(float.IsFinite).ToArray();
                    if (b.Length > 0)
                    {
                        w2 += Wasserstein2Squared(f, w, b);
                        energy += EnergyDistance(f, w, b);
                        referenced++;
                    }
                }
            }
        }
        if (rows == 0)
            throw new InvalidOperationException($"No row with a finite label in column '{labelColumnName}' to evaluate.");
        bool scalar = d == 1;
        return new QuantizationMetrics
        {
            Rows = rows,
            Distortion = distortion / rows,
            ScoreRootMeanSquaredError = Math.Sqrt(se / rows),
            IntervalLevel = intervalLevel,
            IntervalCoverage = scalar ? (double)covered / rows : double.NaN,
            MeanIntervalWidth = scalar ? width / rows : double.NaN,
            Wasserstein2 = referenced > 0 ? Math.Sqrt(w2 / referenced) : double.NaN,
            EnergyDistance = referenced > 0 ? energy / referenced : double.NaN,
        };
    }

    private static Action<float[]> VectorOrScalar(DataViewRowCursor cursor, DataViewSchema.Column col, int d)
    {
        if (col.Type is VectorDataViewType)
        {
            var g = cursor.GetGetter<VBuffer<float>>(col);
            VBuffer<float> v = default;
            return dst =>
            {
                g(ref v);
                if (v.Length != d)
                    throw new InvalidOperationException($"Column '{col.Name}' has {v.Length} values at row {cursor.Position}; expected {d}.");
                v.CopyTo(dst);
            };
        }
        if (col.Type != NumberDataViewType.Single || d != 1)
            throw SchemaChecks.Mismatch(col.Name, "score", d == 1 ? "Single" : $"Vector<Single, {d}>", col.Type.ToString()!);
        var gs = cursor.GetGetter<float>(col);
        float x = 0;
        return dst => { gs(ref x); dst[0] = x; };
    }

    /// <summary>min_i ‖y − f_i‖² for points <paramref name="points"/> (n × d row-major).</summary>
    /// <param name="y">The label (d values).</param>
    /// <param name="points">n × d values.</param>
    /// <param name="d">Label dimension.</param>
    public static double Distortion(ReadOnlySpan<float> y, ReadOnlySpan<float> points, int d)
    {
        double best = double.PositiveInfinity;
        for (int i = 0; i < points.Length / d; i++)
        {
            double s = 0;
            for (int k = 0; k < d; k++)
            {
                double e = y[k] - (double)points[i * d + k];
                s += e * e;
            }
            best = Math.Min(best, s);
        }
        return best;
    }

    /// <summary>
    /// The interval [f_lo, f_hi] of level <paramref name="level"/> of a scalar quantization: with the points sorted, lo is
    /// the first point whose cumulative weight reaches (1 − level)/2 and hi the first whose cumulative weight reaches (1 + level)/2.
    /// </summary>
    /// <param name="points">n points.</param>
    /// <param name="weights">n non-negative weights (normalised here).</param>
    /// <param name="level">In (0, 1).</param>
    public static (double Lo, double Hi) Interval(ReadOnlySpan<float> points, ReadOnlySpan<float> weights, double level)
    {
        var (a, p) = SortedMeasure(points, weights);
        double lo = a[^1], hi = a[^1], c = 0;
        bool loSet = false;
        for (int i = 0; i < a.Length; i++)
        {
            c += p[i];
            if (!loSet && c >= (1 - level) / 2 - 1e-9)
            {
                lo = a[i];
                loSet = true;
            }
            if (c >= (1 + level) / 2 - 1e-9)
            {
                hi = a[i];
                break;
            }
        }
        return (lo, hi);
    }

    /// <summary>W₂² between Σ p_i δ_{a_i} and the empirical law of <paramref name="samples"/>, exact (quantile coupling).</summary>
    /// <param name="points">n points a_i.</param>
    /// <param name="weights">n non-negative weights (normalised here).</param>
    /// <param name="samples">m samples, equally weighted.</param>
    public static double Wasserstein2Squared(ReadOnlySpan<float> points, ReadOnlySpan<float> weights, ReadOnlySpan<float> samples)
    {
        var (a, p) = SortedMeasure(points, weights);
        var b = samples.ToArray().Select(v => (double)v).Order().ToArray();
        double q = 1.0 / b.Length, total = 0, ra = p[0], rb = q;
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            double mass = Math.Min(ra, rb);
            total += mass * (a[i] - b[j]) * (a[i] - b[j]);
            ra -= mass;
            rb -= mass;
            if (ra <= 1e-15 && ++i < a.Length)
                ra = p[i];
            if (rb <= 1e-15 && ++j < b.Length)
                rb = q;
        }
        return total;
    }

    /// <summary>Energy distance 2E|A − B| − E|A − A′| − E|B − B′| between Σ p_i δ_{a_i} and the empirical law of <paramref name="samples"/>.</summary>
    /// <param name="points">n points a_i.</param>
    /// <param name="weights">n non-negative weights (normalised here).</param>
    /// <param name="samples">m samples, equally weighted.</param>
    public static double EnergyDistance(ReadOnlySpan<float> points, ReadOnlySpan<float> weights, ReadOnlySpan<float> samples)
    {
        var (a, p) = SortedMeasure(points, weights);
        double ab = 0, aa = 0, bb = 0;
        int m = samples.Length;
        for (int i = 0; i < a.Length; i++)
        {
            for (int j = 0; j < m; j++)
                ab += p[i] * Math.Abs(a[i] - samples[j]) / m;
            for (int k = 0; k < a.Length; k++)
                aa += p[i] * p[k] * Math.Abs(a[i] - a[k]);
        }
        for (int j = 0; j < m; j++)
        {
            for (int k = 0; k < m; k++)
                bb += Math.Abs(samples[j] - (double)samples[k]);
        }
        return 2 * ab - aa - bb / ((double)m * m);
    }

    private static (double[] Points, double[] Weights) SortedMeasure(ReadOnlySpan<float> points, ReadOnlySpan<float> weights)
    {
        if (points.Length != weights.Length || points.Length == 0)
            throw new ArgumentException($"Expected as many points as weights, at least one (got {points.Length} and {weights.Length}).", nameof(weights));
        var order = Enumerable.Range(0, points.Length).ToArray();
        var a = points.ToArray();
        Array.Sort(a.ToArray(), order);
        double sum = 0;
        foreach (var v in weights)
            sum += Math.Max(0, v);
        if (!(sum > 0))
            throw new ArgumentException("The weights must have a positive sum.", nameof(weights));
        var w = weights.ToArray();
        return (order.Select(i => (double)a[i]).ToArray(), order.Select(i => Math.Max(0, w[i]) / sum).ToArray());
    }
}
