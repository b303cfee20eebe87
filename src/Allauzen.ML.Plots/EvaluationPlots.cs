using System.Globalization;
using Allauzen.ML.Evaluation;

namespace Allauzen.ML.Plots;

/// <summary>
/// PNG charts of the evaluation component: discrete precision–recall curves, precision/recall/density/coverage bars and
/// membership-audit ROC curves with the low false-positive region on a log axis.
/// </summary>
public static class EvaluationPlots
{
    /// <summary>
    /// Plots a discrete precision–recall curve (precision α_λ against recall β_λ, ordered by λ, the λ = 1 point marked) to
    /// a PNG written atomically (temporary file, then a rename).
    /// </summary>
    /// <param name="curve">Points from <c>DiscretePrCurve.Compute</c> or <c>DiscretePrCurve.FromColumns</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="name">Legend name of the curve.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SavePrCurvePlot(this IReadOnlyList<(double Lambda, double Precision, double Recall)> curve, string path,
        string name = "model", string title = "Precision–recall curve", int width = 640, int height = 460)
    {
        ArgumentNullException.ThrowIfNull(curve);
        ArgumentNullException.ThrowIfNull(name);
        new Dictionary<string, IReadOnlyList<(double Lambda, double Precision, double Recall)>> { [name] = curve }
            .SavePrCurvePlot(path, title, width, height);
    }

    /// <summary>
    /// Plots several discrete precision–recall curves (precision α_λ against recall β_λ, each ordered by λ, with its λ = 1
    /// point marked when present) to a PNG written atomically (temporary file, then a rename).
    /// </summary>
    /// <param name="curves">Curves by legend name, from <c>DiscretePrCurve.Compute</c> or <c>DiscretePrCurve.FromColumns</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SavePrCurvePlot(this IReadOnlyDictionary<string, IReadOnlyList<(double Lambda, double Precision, double Recall)>> curves,
        string path, string title = "Precision–recall curves", int width = 760, int height = 460)
    {
        ArgumentNullException.ThrowIfNull(curves);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var plot = new ScottPlot.Plot();
        int index = 0;
        foreach (var (name, curve) in curves)
        {
            ArgumentNullException.ThrowIfNull(curve);
            var sorted = curve.Where(p => double.IsFinite(p.Precision) && double.IsFinite(p.Recall)).OrderBy(p => p.Lambda).ToArray();
            var color = plot.Add.Palette.GetColor(index++);
            var s = plot.Add.Scatter(sorted.Select(p => p.Recall).ToArray(), sorted.Select(p => p.Precision).ToArray());
            s.LegendText = name;
            s.Color = color;
            s.MarkerSize = 4;
            foreach (var p in sorted.Where(p => p.Lambda == 1))
            {
                var one = plot.Add.Marker(p.Recall, p.Precision);
                one.MarkerStyle.Shape = ScottPlot.MarkerShape.OpenCircle;
                one.MarkerStyle.Size = 12;
                one.Color = color;
                one.LegendText = $"{name}, λ = 1";
            }
        }
        plot.Axes.SetLimits(0, 1.02, 0, 1.02);
        CertifiedAccuracyPlots.Save(plot, path, width, height, title, "recall β(λ)", "precision α(λ)");
    }

    /// <summary>
    /// Plots precision, recall, density and coverage as a bar chart to a PNG written atomically (temporary file, then a
    /// rename). Density is unbounded above; the y axis stretches to fit it.
    /// </summary>
    /// <param name="metrics">Metrics from <c>ml.Data.EvaluateGenerative</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="name">Legend name of the result.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SavePlot(this GenerativeMetrics metrics, string path, string name = "generated",
        string title = "Precision, recall, density, coverage", int width = 640, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(name);
        new Dictionary<string, GenerativeMetrics> { [name] = metrics }.SavePlot(path, title, width, height);
    }

    /// <summary>
    /// Plots precision, recall, density and coverage of several results side by side (one group per metric, one bar
    /// colour per result, a dashed line at 1) to a PNG written atomically (temporary file, then a rename).
    /// </summary>
    /// <param name="results">Metrics by legend name, from <c>ml.Data.EvaluateGenerative</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SavePlot(this IReadOnlyDictionary<string, GenerativeMetrics> results, string path,
        string title = "Precision, recall, density, coverage", int width = 860, int height = 440)
    {
        ArgumentNullException.ThrowIfNull(results);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var plot = new ScottPlot.Plot();
        string[] groups = ["precision", "recall", "density", "coverage"];
        int count = Math.Max(1, results.Count);
        double width1 = 0.8 / count;
        int index = 0;
        double top = 1;
        foreach (var (name, m) in results)
        {
            ArgumentNullException.ThrowIfNull(m);
            double[] values = [m.Precision, m.Recall, m.Density, m.Coverage];
            double[] positions = [.. Enumerable.Range(0, groups.Length).Select(g => g - 0.4 + width1 * (index + 0.5))];
            var bars = plot.Add.Bars(positions, values);
            bars.LegendText = name;
            bars.Color = plot.Add.Palette.GetColor(index);
            foreach (var bar in bars.Bars)
                bar.Size = width1 * 0.9;
            top = Math.Max(top, values.Where(double.IsFinite).DefaultIfEmpty(0).Max());
            index++;
        }
        var one = plot.Add.HorizontalLine(1);
        one.LinePattern = ScottPlot.LinePattern.Dashed;
        one.Color = ScottPlot.Colors.Gray;
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, groups.Length).Select(g => (double)g)], groups);
        plot.Axes.SetLimits(-0.6, groups.Length - 0.4, 0, top * 1.08);
        CertifiedAccuracyPlots.Save(plot, path, width, height, title, "", "value");
    }

    /// <summary>
    /// Plots the ROC curve of a membership audit (TPR against FPR) with FPR on a log axis, so that the low false-positive
    /// region where attacks matter is visible, and the chance diagonal; a PNG written atomically (temporary file, then a
    /// rename). FPR = 0 is drawn at the left edge of the axis.
    /// </summary>
    /// <param name="audit">An audit from <c>ml.Data.AuditMembership</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="name">Legend name of the attack or model.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SaveRocPlot(this MembershipAuditResult audit, string path, string name = "attack",
        string title = "Membership-inference ROC", int width = 640, int height = 460)
    {
        ArgumentNullException.ThrowIfNull(audit);
        ArgumentNullException.ThrowIfNull(name);
        new Dictionary<string, MembershipAuditResult> { [name] = audit }.SaveRocPlot(path, title, width, height);
    }

    /// <summary>
    /// Plots the ROC curves of several membership audits (TPR against FPR, the legend giving each AUC) with FPR on a log
    /// axis and the chance diagonal; a PNG written atomically (temporary file, then a rename). The axis starts at the
    /// decade below the smallest positive FPR (at most 10⁻³); FPR = 0 is drawn at that left edge.
    /// </summary>
    /// <param name="audits">Audits by legend name, from <c>ml.Data.AuditMembership</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SaveRocPlot(this IReadOnlyDictionary<string, MembershipAuditResult> audits, string path,
        string title = "Membership-inference ROC", int width = 760, int height = 460)
    {
        ArgumentNullException.ThrowIfNull(audits);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        double minPositive = audits.Values.SelectMany(a => a?.Roc ?? []).Select(p => p.Fpr).Where(f => f > 0).DefaultIfEmpty(1).Min();
        int lowDecade = (int)Math.Floor(Math.Log10(Math.Min(1e-3, minPositive)) + 1e-9);
        double floor = Math.Pow(10, lowDecade);
        var plot = new ScottPlot.Plot();
        int index = 0;
        foreach (var (name, audit) in audits)
        {
            ArgumentNullException.ThrowIfNull(audit);
            var roc = audit.Roc;
            var s = plot.Add.ScatterLine(roc.Select(p => Math.Log10(Math.Max(p.Fpr, floor))).ToArray(), roc.Select(p => p.Tpr).ToArray());
            s.LegendText = string.Create(CultureInfo.InvariantCulture, $"{name} (AUC {audit.Auc:0.000})");
            s.Color = plot.Add.Palette.GetColor(index++);
            s.LineWidth = 2;
        }
        var diagonalX = Enumerable.Range(0, 101).Select(i => lowDecade * (1 - i / 100.0)).ToArray();
        var chance = plot.Add.ScatterLine(diagonalX, diagonalX.Select(x => Math.Pow(10, x)).ToArray());
        chance.LinePattern = ScottPlot.LinePattern.Dashed;
        chance.Color = ScottPlot.Colors.Gray;
        chance.LegendText = "chance (TPR = FPR)";
        var decades = Enumerable.Range(lowDecade, -lowDecade + 1).ToArray();
        plot.Axes.Bottom.SetTicks([.. decades.Select(d => (double)d)],
            [.. decades.Select(d => Math.Pow(10, d).ToString(d >= -4 ? "0.####" : "0E0", CultureInfo.InvariantCulture))]);
        plot.Axes.SetLimits(lowDecade, 0, 0, 1.02);
        CertifiedAccuracyPlots.Save(plot, path, width, height, title, "false-positive rate (log scale)", "true-positive rate");
    }
}
