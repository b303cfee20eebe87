using System.Text.Json;
using Allauzen.ML.Persistence;

namespace Allauzen.ML.Samples.Common;

/// <summary>Writes the --metrics-out JSON object (atomically: temp file then rename).</summary>
public static class MetricsFile
{
    public static void Write(string? path, IReadOnlyDictionary<string, object?> metrics)
    {
        var json = JsonSerializer.Serialize(metrics, new JsonSerializerOptions { WriteIndented = true });
        Console.WriteLine(json);
        if (path is null)
            return;
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir))
            Directory.CreateDirectory(dir);
        var tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(tmp, json);
        File.Move(tmp, path, overwrite: true);
        SampleCli.Wrote(path, "metrics");
    }
}
