using System.Globalization;
using System.Text;
using Allauzen.ML.Data;
using Microsoft.ML.Data;

namespace Allauzen.ML.Lipschitz;

/// <summary>One point of the certified-accuracy curve.</summary>
/// <param name="Radius">The L2 radius ε.</param>
/// <param name="CertifiedAccuracy">Fraction of rows correctly classified with a certified radius &gt; ε.</param>
public readonly record struct CertifiedAccuracyPoint(double Radius, double CertifiedAccuracy);

/// <summary>
/// Certified accuracy of a scored data set: clean accuracy and, for each radius ε, the fraction of rows that are correct
/// <b>and</b> certified (radius &gt; ε). Create it with <c>ml.MulticlassClassification.EvaluateCertified(scored)</c>.
/// </summary>
public sealed class CertifiedAccuracyMetrics
{
    /// <summary>The radii used by the papers on inputs in [0, 1]: 0, 36/255, 72/255, 108/255 and 255/255.</summary>
    public static IReadOnlyList<double> DefaultRadii { get; } = [0, 36 / 255.0, 72 / 255.0, 108 / 255.0, 1.0];

    private CertifiedAccuracyMetrics(long rows, double accuracy, IReadOnlyList<CertifiedAccuracyPoint> curve)
    {
        Rows = rows;
        Accuracy = accuracy;
        Curve = curve;
    }

    /// <summary>Rows evaluated.</summary>
    public long Rows { get; }

    /// <summary>Clean accuracy (fraction of correct predictions).</summary>
    public double Accuracy { get; }

    /// <summary>Certified accuracy at each radius, in the order given.</summary>
    public IReadOnlyList<CertifiedAccuracyPoint> Curve { get; }

    /// <summary>Certified accuracy at <paramref name="radius"/> (one of the evaluated radii, compared to 1e-9).</summary>
    public double At(double radius) =>
        Curve.FirstOrDefault(p => Math.Abs(p.Radius - radius) < 1e-9) is { Radius: var r } p && Math.Abs(r - radius) < 1e-9
            ? p.CertifiedAccuracy
            : throw new ArgumentOutOfRangeException(nameof(radius), radius, $"Radius {radius} was not evaluated (radii: {string.Join(", ", Curve.Select(c => c.Radius))}).");

    internal static CertifiedAccuracyMetrics Compute(IDataView scored, string label, string predicted, string radius, IReadOnlyList<double> radii)
    {
        ArgumentNullException.ThrowIfNull(scored);
        ArgumentNullException.ThrowIfNull(radii);
        foreach (var r in radii)
        {
            if (!(r >= 0 && double.IsFinite(r)))
                throw new ArgumentOutOfRangeException(nameof(radii), r, "Every radius must be a non-negative finite number.");
        }
        SchemaChecks.KeyLabel(scored.Schema, label);
        SchemaChecks.KeyLabel(scored.Schema, predicted);
        var rc = scored.Schema.GetColumnOrNull(radius)
            ?? throw new ArgumentOutOfRangeException(nameof(scored), $"Radius column '{radius}' was not found (expected Single).");
        if (rc.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(scored), $"Radius column '{radius}': expected Single, found {rc.Type}.");
        var lc = scored.Schema[label];
        var pc = scored.Schema[predicted];
        using var cursor = scored.GetRowCursor([lc, pc, rc]);
        var gl = cursor.GetGetter<uint>(lc);
        var gp = cursor.GetGetter<uint>(pc);
        var gr = cursor.GetGetter<float>(rc);
        long rows = 0, correct = 0;
        var certified = new long[radii.Count];
        uint l = 0, p = 0;
        float rad = 0;
        while (cursor.MoveNext())
        {
            gl(ref l);
            gp(ref p);
            gr(ref rad);
            rows++;
            if (l == 0 || l != p)
                continue;
            correct++;
            for (int i = 0; i < radii.Count; i++)
            {
                if (rad > radii[i])
                    certified[i]++;
            }
        }
        if (rows == 0)
            throw new InvalidOperationException("The scored data has no rows.");
        return new CertifiedAccuracyMetrics(rows, (double)correct / rows,
            radii.Select((r, i) => new CertifiedAccuracyPoint(r, (double)certified[i] / rows)).ToArray());
    }

    /// <summary>The curve as a Markdown table (radius as a fraction of 255 and as a number, certified accuracy in %).</summary>
    public string ToTable()
    {
        var sb = new StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        sb.AppendLine("| ε (×255) | ε | certified accuracy |");
        sb.AppendLine("|---|---|---|");
        foreach (var p in Curve)
            sb.AppendLine(ci, $"| {p.Radius * 255:0.#} | {p.Radius:0.####} | {p.CertifiedAccuracy * 100:0.00}% |");
        sb.AppendLine(ci, $"Clean accuracy: {Accuracy * 100:0.00}% on {Rows} rows.");
        return sb.ToString();
    }
}
