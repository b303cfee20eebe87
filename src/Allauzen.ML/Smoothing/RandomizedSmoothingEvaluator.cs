using System.Globalization;
using System.Text;

namespace Allauzen.ML.Smoothing;

/// <summary>One point of a certified-accuracy curve.</summary>
/// <param name="Radius">The radius r.</param>
/// <param name="CertifiedAccuracy">Fraction of rows certified with the true label at radius ≥ r (abstain = wrong).</param>
public readonly record struct CertifiedAccuracyPoint(double Radius, double CertifiedAccuracy);

/// <summary>A certified-accuracy curve with its context.</summary>
/// <param name="Points">Certified accuracy at each requested radius.</param>
/// <param name="Rows">Rows evaluated.</param>
/// <param name="AbstainRate">Fraction of rows where the certifier abstained.</param>
/// <param name="SaturationRadius">σΦ⁻¹(α^(1/n)), the largest radius any row can reach (NaN when unknown).</param>
public sealed record CertifiedAccuracyCurve(IReadOnlyList<CertifiedAccuracyPoint> Points, long Rows, double AbstainRate, double SaturationRadius)
{
    /// <summary>Certified accuracy at the point whose radius equals <paramref name="radius"/>.</summary>
    /// <param name="radius">One of the evaluated radii.</param>
    public double At(double radius) => Points.First(p => p.Radius == radius).CertifiedAccuracy;

    /// <summary>A markdown table: radius | certified accuracy, plus the abstain rate and the cap.</summary>
    /// <param name="title">Column title for the accuracy (e.g. the method name).</param>
    public string ToTable(string title = "certified accuracy")
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"| radius | {title} |");
        sb.AppendLine("|---|---|");
        foreach (var p in Points)
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {p.Radius:0.###} | {p.CertifiedAccuracy:0.000} |");
        sb.AppendLine(CultureInfo.InvariantCulture, $"rows {Rows}, abstain rate {AbstainRate:0.000}, saturation radius σΦ⁻¹(α^(1/n)) = {SaturationRadius:0.####}");
        return sb.ToString();
    }
}

/// <summary>
/// The counts of a certified-accuracy curve: <paramref name="Correct"/>[i] rows certified with the true label at radius ≥
/// <paramref name="Radii"/>[i], out of <paramref name="Rows"/>, with <paramref name="Abstained"/> abstentions. Shards add up
/// with <see cref="Sum"/>; <see cref="ToCurve"/> divides once, so the merged curve is bit-identical to the whole data's.
/// </summary>
/// <param name="Radii">The radii.</param>
/// <param name="Correct">Correct certified rows per radius.</param>
/// <param name="Rows">Rows counted.</param>
/// <param name="Abstained">Rows where the certifier abstained.</param>
/// <param name="SaturationRadius">The cap to report (NaN when unknown).</param>
public sealed record CertifiedAccuracyCounts(IReadOnlyList<double> Radii, IReadOnlyList<long> Correct, long Rows, long Abstained, double SaturationRadius)
{
    internal static CertifiedAccuracyCounts Count(ReadOnlySpan<int> predicted, ReadOnlySpan<int> truth, ReadOnlySpan<double> radius,
        IReadOnlyList<double> radii, double saturationRadius)
    {
        if (predicted.Length != truth.Length || predicted.Length != radius.Length)
            throw new ArgumentException($"predicted ({predicted.Length}), truth ({truth.Length}) and radius ({radius.Length}) must have the same length.");
        ArgumentNullException.ThrowIfNull(radii);
        var correct = new long[radii.Count];
        for (int j = 0; j < radii.Count; j++)
        {
            for (int i = 0; i < predicted.Length; i++)
            {
                if (predicted[i] >= 0 && predicted[i] == truth[i] && radius[i] >= radii[j])
                    correct[j]++;
            }
        }
        long abstained = 0;
        foreach (int p in predicted)
        {
            if (p < 0)
                abstained++;
        }
        return new CertifiedAccuracyCounts([.. radii], correct, predicted.Length, abstained, saturationRadius);
    }

    /// <summary>
    /// Adds up the counts of disjoint shards. All must have the same radii (compared exactly) and saturation radius
    /// (NaN equals NaN); otherwise an <see cref="ArgumentException"/> names the first that differs.
    /// </summary>
    /// <param name="shards">The counts of each shard (at least one).</param>
    public static CertifiedAccuracyCounts Sum(IEnumerable<CertifiedAccuracyCounts> shards)
    {
        ArgumentNullException.ThrowIfNull(shards);
        var list = shards.ToList();
        if (list.Count == 0)
            throw new ArgumentException("Sum needs the counts of at least one shard.", nameof(shards));
        var first = list[0];
        var correct = new long[first.Radii.Count];
        long rows = 0, abstained = 0;
        for (int s = 0; s < list.Count; s++)
        {
            var c = list[s];
            if (!c.Radii.SequenceEqual(first.Radii) || c.Correct.Count != correct.Length || !c.SaturationRadius.Equals(first.SaturationRadius))
                throw new ArgumentException($"Shard {s} was counted at other radii or another saturation radius than shard 0; count every shard with the same settings.", nameof(shards));
            for (int i = 0; i < correct.Length; i++)
                correct[i] += c.Correct[i];
            rows += c.Rows;
            abstained += c.Abstained;
        }
        return new CertifiedAccuracyCounts(first.Radii, correct, rows, abstained, first.SaturationRadius);
    }

    /// <summary>The curve: certified accuracy Correct/Rows per radius (0 for no rows) and the abstain rate.</summary>
    public CertifiedAccuracyCurve ToCurve()
    {
        long n = Rows;
        var points = Radii.Select((r, i) => new CertifiedAccuracyPoint(r, n == 0 ? 0 : (double)Correct[i] / n)).ToList();
        return new CertifiedAccuracyCurve(points, n, n == 0 ? 0 : (double)Abstained / n, SaturationRadius);
    }
}

/// <summary>
/// Certified accuracy of randomized smoothing (Cohen et al.'s "approximate certified accuracy"): at radius r,
/// the fraction of rows whose certified class is the true label and whose radius is ≥ r; an abstention counts
/// as wrong. Also Cohen's high-probability correction and a PNG plot of several curves.
/// </summary>
public static class RandomizedSmoothingEvaluator
{
    /// <summary>Certified accuracy from arrays: <paramref name="predicted"/> (−1 = abstain), <paramref name="truth"/>, <paramref name="radius"/>.</summary>
    /// <param name="predicted">Certified class per row (−1 for abstain).</param>
    /// <param name="truth">True class per row.</param>
    /// <param name="radius">Certified radius per row.</param>
    /// <param name="radii">The radii of the curve.</param>
    /// <param name="saturationRadius">The cap to report (NaN if unknown).</param>
    public static CertifiedAccuracyCurve Evaluate(ReadOnlySpan<int> predicted, ReadOnlySpan<int> truth, ReadOnlySpan<double> radius,
        IReadOnlyList<double> radii, double saturationRadius = double.NaN) =>
        CertifiedAccuracyCounts.Count(predicted, truth, radius, radii, saturationRadius).ToCurve();

    /// <summary>
    /// Certified accuracy of a certified view (the output of <c>CertifyRandomizedSmoothing</c>): compares the
    /// key-typed <c>PredictedLabel</c> (0 = abstain) with the key-typed <paramref name="labelColumnName"/>.
    /// </summary>
    /// <param name="certified">The certified data.</param>
    /// <param name="labelColumnName">A key-typed label column (apply MapValueToKey first) with the same key order as the base model's classes.</param>
    /// <param name="radii">The radii of the curve.</param>
    /// <param name="saturationRadius">The cap to report (e.g. the transformer's SaturationRadius).</param>
    public static CertifiedAccuracyCurve Evaluate(IDataView certified, string labelColumnName, IReadOnlyList<double> radii, double saturationRadius = double.NaN) =>
        CountCertified(certified, labelColumnName, radii, saturationRadius).ToCurve();

    /// <summary>
    /// The integer counts behind <see cref="Evaluate(IDataView, string, IReadOnlyList{double}, double)"/>: per radius the
    /// rows certified with the true label at radius ≥ r, the rows and the abstentions. Counts of disjoint shards add up
    /// exactly (<see cref="CertifiedAccuracyCounts.Sum"/>), so the curve of the merged counts equals the curve of the whole
    /// data bit for bit.
    /// </summary>
    /// <param name="certified">The certified data (or one shard of it).</param>
    /// <param name="labelColumnName">A key-typed label column.</param>
    /// <param name="radii">The radii of the curve.</param>
    /// <param name="saturationRadius">The cap to report.</param>
    public static CertifiedAccuracyCounts CountCertified(IDataView certified, string labelColumnName, IReadOnlyList<double> radii, double saturationRadius = double.NaN)
    {
        ArgumentNullException.ThrowIfNull(certified);
        var label = certified.Schema.GetColumnOrNull(labelColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(labelColumnName), $"Could not find label column '{labelColumnName}'.");
        if (label.Type is not KeyDataViewType)
            throw new ArgumentOutOfRangeException(nameof(labelColumnName), $"Schema mismatch for label column '{labelColumnName}': expected a key type, got {label.Type}.");
        var pred = certified.Schema[SmoothingColumnNames.PredictedLabel];
        var rad = certified.Schema[SmoothingColumnNames.CertifiedRadius];
        var p = new List<int>();
        var t = new List<int>();
        var r = new List<double>();
        using (var cursor = certified.GetRowCursor([label, pred, rad]))
        {
            var gl = cursor.GetGetter<uint>(label);
            var gp = cursor.GetGetter<uint>(pred);
            var gr = cursor.GetGetter<double>(rad);
            uint lv = 0, pv = 0;
            double rv = 0;
            while (cursor.MoveNext())
            {
                gl(ref lv);
                gp(ref pv);
                gr(ref rv);
                p.Add((int)pv - 1);
                t.Add((int)lv - 1);
                r.Add(rv);
            }
        }
        return CertifiedAccuracyCounts.Count(p.ToArray(), t.ToArray(), r.ToArray(), radii, saturationRadius);
    }

    /// <summary>
    /// Cohen et al.'s high-probability certified accuracy: mean − α − sqrt(α(1 − α)·ln(1/ρ)/N) − ln(1/ρ)/(3N),
    /// a lower bound that holds with probability 1 − ρ over the noise.
    /// </summary>
    /// <param name="mean">Approximate certified accuracy.</param>
    /// <param name="alpha">The certificates' α.</param>
    /// <param name="rho">Failure probability of the statement.</param>
    /// <param name="rows">N, the number of rows.</param>
    public static double HighProbabilityAccuracy(double mean, double alpha, double rho, long rows) =>
        mean - alpha - Math.Sqrt(alpha * (1 - alpha) * Math.Log(1 / rho) / rows) - Math.Log(1 / rho) / (3.0 * rows);
}
