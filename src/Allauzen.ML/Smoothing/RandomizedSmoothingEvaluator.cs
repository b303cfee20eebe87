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
        IReadOnlyList<double> radii, double saturationRadius = double.NaN)
    {
        if (predicted.Length != truth.Length || predicted.Length != radius.Length)
            throw new ArgumentException($"predicted ({predicted.Length}), truth ({truth.Length}) and radius ({radius.Length}) must have the same length.");
        ArgumentNullException.ThrowIfNull(radii);
        int n = predicted.Length;
        var points = new List<CertifiedAccuracyPoint>();
        foreach (double r in radii)
        {
            int ok = 0;
            for (int i = 0; i < n; i++)
            {
                if (predicted[i] >= 0 && predicted[i] == truth[i] && radius[i] >= r)
                    ok++;
            }
            points.Add(new CertifiedAccuracyPoint(r, n == 0 ? 0 : (double)ok / n));
        }
        int abstained = 0;
        foreach (int p in predicted)
        {
            if (p < 0)
                abstained++;
        }
        return new CertifiedAccuracyCurve(points, n, n == 0 ? 0 : (double)abstained / n, saturationRadius);
    }

    /// <summary>
    /// Certified accuracy of a certified view (the output of <c>CertifyRandomizedSmoothing</c>): compares the
    /// key-typed <c>PredictedLabel</c> (0 = abstain) with the key-typed <paramref name="labelColumnName"/>.
    /// </summary>
    /// <param name="certified">The certified data.</param>
    /// <param name="labelColumnName">A key-typed label column (apply MapValueToKey first) with the same key order as the base model's classes.</param>
    /// <param name="radii">The radii of the curve.</param>
    /// <param name="saturationRadius">The cap to report (e.g. the transformer's SaturationRadius).</param>
    public static CertifiedAccuracyCurve Evaluate(IDataView certified, string labelColumnName, IReadOnlyList<double> radii, double saturationRadius = double.NaN)
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
        return Evaluate(p.ToArray(), t.ToArray(), r.ToArray(), radii, saturationRadius);
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
