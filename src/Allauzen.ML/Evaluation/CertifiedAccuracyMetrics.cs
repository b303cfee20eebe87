using System.Globalization;
using System.Text;

namespace Allauzen.ML.Evaluation;

/// <summary>
/// Certified accuracy of scored data, whatever the certificate (a Lipschitz classifier's radius, a randomized-smoothing
/// certificate, ...). The convention: a row is <b>certified at ε</b> when its certified radius is ≥ ε <b>and</b> its prediction
/// is correct; an abstention (missing predicted key) is never correct. <see cref="CertifiedAccuracyPoint.CertifiedAccuracy"/> is
/// the fraction of all rows certified at ε, so it never exceeds <see cref="Accuracy"/> and never increases with ε. Create it with
/// <c>ml.MulticlassClassification.EvaluateCertified(scored)</c>, or from shard counts with <see cref="CertifiedAccuracyCounts.ToMetrics"/>.
/// </summary>
public sealed class CertifiedAccuracyMetrics
{
    /// <summary>The radii used by the papers on inputs in [0, 1]: 0, 36/255, 72/255, 108/255 and 255/255.</summary>
    public static IReadOnlyList<double> DefaultRadii { get; } = [0, 36 / 255.0, 72 / 255.0, 108 / 255.0, 1.0];

    internal CertifiedAccuracyMetrics(CertifiedAccuracyCounts counts)
    {
        Counts = counts;
        long n = counts.Rows;
        Rows = n;
        Accuracy = n == 0 ? 0 : (double)counts.Correct / n;
        AbstainRate = n == 0 ? 0 : (double)counts.Abstained / n;
        Curve = counts.Radii.Select((r, i) => new CertifiedAccuracyPoint(r, n == 0 ? 0 : (double)counts.Certified[i] / n)).ToArray();
    }

    /// <summary>The integer counts (add the counts of disjoint shards with <see cref="CertifiedAccuracyCounts.Sum"/>).</summary>
    public CertifiedAccuracyCounts Counts { get; }

    /// <summary>Rows evaluated.</summary>
    public long Rows { get; }

    /// <summary>Clean accuracy: the fraction of rows whose prediction is correct (an abstention is not).</summary>
    public double Accuracy { get; }

    /// <summary>Fraction of rows where the certifier abstained (0 for classifiers that always predict).</summary>
    public double AbstainRate { get; }

    /// <summary>The largest radius the certifier can give (randomized smoothing's σΦ⁻¹(α^(1/n))), or NaN when none was given.</summary>
    public double SaturationRadius => Counts.SaturationRadius;

    /// <summary>Certified accuracy at each radius, in the order given.</summary>
    public IReadOnlyList<CertifiedAccuracyPoint> Curve { get; }

    /// <summary>Certified accuracy at <paramref name="radius"/> (one of the evaluated radii, compared to 1e-9).</summary>
    /// <param name="radius">One of the evaluated radii.</param>
    public double At(double radius)
    {
        foreach (var p in Curve)
        {
            if (Math.Abs(p.Radius - radius) < 1e-9)
                return p.CertifiedAccuracy;
        }
        throw new ArgumentOutOfRangeException(nameof(radius), radius, $"Radius {radius} was not evaluated (radii: {string.Join(", ", Curve.Select(c => c.Radius))}).");
    }

    /// <summary>
    /// Cohen et al.'s high-probability certified accuracy for randomized smoothing: mean − α − sqrt(α(1 − α)·ln(1/ρ)/N) −
    /// ln(1/ρ)/(3N), a lower bound that holds with probability 1 − ρ over the noise.
    /// </summary>
    /// <param name="mean">Approximate certified accuracy (a point of <see cref="Curve"/>).</param>
    /// <param name="alpha">The certificates' α.</param>
    /// <param name="rho">Failure probability of the statement.</param>
    /// <param name="rows">N, the number of rows.</param>
    public static double HighProbabilityAccuracy(double mean, double alpha, double rho, long rows) =>
        mean - alpha - Math.Sqrt(alpha * (1 - alpha) * Math.Log(1 / rho) / rows) - Math.Log(1 / rho) / (3.0 * rows);

    /// <summary>
    /// The curve as a Markdown table (radius as a number and as a multiple of 1/255, certified accuracy in %), then the clean
    /// accuracy, the abstain rate when the certifier abstained, and the saturation radius when known.
    /// </summary>
    /// <param name="title">Title of the accuracy column (e.g. the method name).</param>
    public string ToTable(string title = "certified accuracy")
    {
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine(ci, $"| ε (×255) | ε | {title} |");
        sb.AppendLine("|---|---|---|");
        foreach (var p in Curve)
            sb.AppendLine(ci, $"| {p.Radius * 255:0.#} | {p.Radius:0.####} | {p.CertifiedAccuracy * 100:0.00}% |");
        sb.Append(ci, $"Clean accuracy: {Accuracy * 100:0.00}% on {Rows} rows");
        if (Counts.Abstained > 0)
            sb.Append(ci, $", abstain rate {AbstainRate * 100:0.00}%");
        if (double.IsFinite(SaturationRadius))
            sb.Append(ci, $", saturation radius {SaturationRadius:0.####}");
        sb.AppendLine(".");
        return sb.ToString();
    }
}
