using System.Globalization;
using Allauzen.ML.Diachronic;

namespace Allauzen.ML.Plots;

/// <summary>PNG charts of diachronic embeddings: drift trajectories.</summary>
public static class DiachronicPlots
{
    /// <summary>
    /// Saves a PNG of the drift trajectories of <paramref name="words"/> (cosine distance to
    /// <paramref name="referenceSlice"/>, one line per word, x = slice start time labelled as an integer);
    /// unknown words are skipped. Written atomically (temporary file, then a rename).
    /// </summary>
    /// <param name="model">A fitted diachronic embeddings model.</param>
    /// <param name="path">The PNG file; its folder must exist.</param>
    /// <param name="words">The words to plot.</param>
    /// <param name="referenceSlice">The slice distances are measured from.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SaveDriftPlot(this DiachronicEmbeddingsTransformer model, string path, IEnumerable<string> words, int referenceSlice = 0, int width = 900, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(words);
        var known = model.Vocabulary.ToHashSet(StringComparer.Ordinal);
        var xs = Enumerable.Range(0, model.SliceCount).Select(t => (double)model.GetSliceStart(t)).ToArray();
        var plot = new ScottPlot.Plot();
        foreach (var word in words.Where(w => w is not null && known.Contains(w)))
        {
            var drift = model.GetTrajectory(word, referenceSlice);
            var points = Enumerable.Range(0, Math.Min(drift.Length, xs.Length)).Where(i => double.IsFinite(drift[i])).ToArray();
            if (points.Length == 0)
                continue;
            var sc = plot.Add.Scatter(points.Select(i => xs[i]).ToArray(), points.Select(i => drift[i]).ToArray());
            sc.LegendText = word;
        }
        // One tick per slice start, printed as an integer (a year is "1999", not "1,999").
        plot.Axes.Bottom.SetTicks(xs, xs.Select(x => x.ToString("0", CultureInfo.InvariantCulture)).ToArray());
        CertifiedAccuracyPlots.Save(plot, path, width, height, $"Drift from slice {referenceSlice} ({model.Model})", "slice start", "cosine distance");
    }
}
