using Allauzen.ML.Evaluation;
using Allauzen.ML.Persistence;

namespace Allauzen.ML.Plots;

/// <summary>PNG charts of certified accuracy against the L2 radius, for any certificate (Lipschitz classifiers, randomized smoothing).</summary>
public static class CertifiedAccuracyPlots
{
    /// <summary>
    /// Plots the certified accuracy of <paramref name="metrics"/> against the L2 radius ε (a step line), with its clean
    /// accuracy as a horizontal line and its saturation radius dashed when known, to a PNG written atomically (temporary
    /// file, then a rename).
    /// </summary>
    /// <param name="metrics">Metrics from <c>ml.MulticlassClassification.EvaluateCertified</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SavePlot(this CertifiedAccuracyMetrics metrics, string path, string title = "Certified accuracy", int width = 760, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        new Dictionary<string, CertifiedAccuracyMetrics> { ["certified"] = metrics }.SavePlot(path, title, width, height);
    }

    /// <summary>
    /// Plots several certified-accuracy curves against the L2 radius ε (a step line each, named by its key; with one curve,
    /// its clean accuracy as a horizontal line) and the largest known saturation radius dashed, to a PNG written atomically
    /// (temporary file, then a rename).
    /// </summary>
    /// <param name="curves">Metrics by legend name, from <c>ml.MulticlassClassification.EvaluateCertified</c>.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="title">Plot title.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SavePlot(this IReadOnlyDictionary<string, CertifiedAccuracyMetrics> curves, string path, string title = "Certified accuracy", int width = 760, int height = 420)
    {
        ArgumentNullException.ThrowIfNull(curves);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var plot = new ScottPlot.Plot();
        foreach (var (name, metrics) in curves)
        {
            var s = plot.Add.ScatterLine(metrics.Curve.Select(p => p.Radius).ToArray(), metrics.Curve.Select(p => p.CertifiedAccuracy).ToArray());
            s.LegendText = name;
            s.ConnectStyle = ScottPlot.ConnectStyle.StepHorizontal;
        }
        if (curves.Count == 1)
            plot.Add.HorizontalLine(curves.Values.Single().Accuracy).LegendText = "clean";
        double cap = curves.Values.Select(c => c.SaturationRadius).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
        if (double.IsFinite(cap))
        {
            var v = plot.Add.VerticalLine(cap);
            v.LinePattern = ScottPlot.LinePattern.Dashed;
            v.LegendText = "saturation radius";
        }
        plot.Axes.SetLimitsY(0, 1);
        Save(plot, path, width, height, title, "L2 radius ε", "certified accuracy");
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
