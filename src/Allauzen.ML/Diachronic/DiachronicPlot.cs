namespace Allauzen.ML.Diachronic;

/// <summary>PNG charts of drift trajectories (ScottPlot).</summary>
internal static class DiachronicPlot
{
    /// <summary>One line per word: x = slice start, y = cosine distance to the reference slice (NaN points skipped).</summary>
    public static byte[] Trajectories(IReadOnlyList<(string Word, double[] Drift)> series, double[] xs, string title, int width, int height)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (word, drift) in series)
        {
            var px = new List<double>();
            var py = new List<double>();
            for (int i = 0; i < drift.Length && i < xs.Length; i++)
            {
                if (double.IsFinite(drift[i]))
                {
                    px.Add(xs[i]);
                    py.Add(drift[i]);
                }
            }
            if (px.Count == 0)
                continue;
            var sc = plot.Add.Scatter(px.ToArray(), py.ToArray());
            sc.LegendText = word;
        }
        plot.Title(title);
        plot.XLabel("slice start");
        plot.YLabel("cosine distance");
        plot.ShowLegend();
        return plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png);
    }
}
