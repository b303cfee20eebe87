using Allauzen.ML.Lipschitz;
using Allauzen.ML.Persistence;
using Allauzen.ML.Smoothing;

namespace Allauzen.ML.Plots;

/// <summary>PNG charts of certified accuracy against the L2 radius (Lipschitz classifiers and randomized smoothing).</summary>
public static class CertifiedAccuracyPlots
{
    /// <summary>
    /// Plots the certified accuracy of <paramref name="metrics"/> (in %) against the L2 radius ε, with the clean
    /// accuracy as a horizontal line, to a PNG written atomically (temporary file, then a rename).
    /// </summary>
    /// <param name="metrics">Metrics from <c>ml.MulticlassClassification.EvaluateCertified</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <param name="title">Plot title.</param>
    public static void SavePlot(this CertifiedAccuracyMetrics metrics, string path, int width = 640, int height = 420, string title = "Certified accuracy")
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var plot = new ScottPlot.Plot();
        var s = plot.Add.Scatter(metrics.Curve.Select(p => p.Radius).ToArray(), metrics.Curve.Select(p => p.CertifiedAccuracy * 100).ToArray());
        s.LegendText = "certified";
        plot.Add.HorizontalLine(metrics.Accuracy * 100).LegendText = "clean";
        plot.Axes.SetLimitsY(0, 100);
        Save(plot, path, width, height, title, "L2 radius ε", "accuracy (%)");
    }

    /// <summary>
    /// Plots several randomized-smoothing certified-accuracy curves (a step line each, and the saturation radius
    /// σΦ⁻¹(α^(1/n)) dashed) to a PNG written atomically (temporary file, then a rename).
    /// </summary>
    /// <param name="curves">Curves by legend name, from <c>RandomizedSmoothingEvaluator.Evaluate</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SavePlot(this IReadOnlyDictionary<string, CertifiedAccuracyCurve> curves, string path, string title = "Certified accuracy", int width = 760, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(curves);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var plot = new ScottPlot.Plot();
        foreach (var (name, curve) in curves)
        {
            var s = plot.Add.ScatterLine(curve.Points.Select(p => p.Radius).ToArray(), curve.Points.Select(p => p.CertifiedAccuracy).ToArray());
            s.LegendText = name;
            s.ConnectStyle = ScottPlot.ConnectStyle.StepHorizontal;
        }
        double cap = curves.Values.Select(c => c.SaturationRadius).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
        if (double.IsFinite(cap))
        {
            var v = plot.Add.VerticalLine(cap);
            v.LinePattern = ScottPlot.LinePattern.Dashed;
            v.LegendText = "σΦ⁻¹(α^(1/n))";
        }
        plot.Axes.SetLimitsY(0, 1);
        Save(plot, path, width, height, title, "L2 radius", "certified accuracy");
    }

    /// <summary>Titles, a legend outside the data area (right), and an atomic PNG write.</summary>
    internal static void Save(ScottPlot.Plot plot, string path, int width, int height, string title, string xLabel, string yLabel)
    {
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend(ScottPlot.Edge.Right);
        byte[] png = plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(png));
    }
}
