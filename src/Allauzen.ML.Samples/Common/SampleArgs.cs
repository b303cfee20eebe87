using System.Globalization;

namespace Allauzen.ML.Samples.Common;

/// <summary>The samples' shared command line: --data, --epochs, --metrics-out, --output, plus free key/values.</summary>
public sealed class SampleArgs
{
    public const string UsageSource = "SampleArgs";

    private readonly Dictionary<string, string> _values = new(StringComparer.OrdinalIgnoreCase);

    public string Data => Get("data") ?? "digits";

    public int? Epochs => Get("epochs") is string s ? int.Parse(s, CultureInfo.InvariantCulture) : null;

    public string? MetricsOut => Get("metrics-out");

    /// <summary>Folder for models and exports (default: a folder under the system temp directory).</summary>
    public string Output => Get("output") ?? Path.Combine(Path.GetTempPath(), "allauzen-samples");

    public string? Get(string key) => _values.GetValueOrDefault(key);

    public static SampleArgs Parse(string[] args)
    {
        var a = new SampleArgs();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"Unexpected argument '{args[i]}': options are --name value.") { Source = UsageSource };
            a._values[args[i][2..]] = args[++i];
        }
        return a;
    }
}
