using System.CommandLine.Parsing;

namespace Allauzen.ML.Samples.Common;

/// <summary>A bad command-line value found while running a sample: exit code 2 and one line, no stack trace.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The samples' command line (System.CommandLine): one sub-command per sample, typed options with their defaults
/// shown by --help, unknown options and bad values rejected with exit code 2 and a one-line error.
/// </summary>
public static class SampleCli
{
    private static readonly string RunStamp = DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);

    /// <summary>Parses <paramref name="args"/> against the samples and runs the chosen one.</summary>
    public static int Invoke(string[] args, params Command[] samples)
    {
        var root = new RootCommand("Allauzen.ML samples: dotnet run --project src/Allauzen.ML.Samples -c Release -- <sample> [options]");
        foreach (var sample in samples)
            root.Add(sample);
        root.SetAction(r =>
        {
            r.InvocationConfiguration.Output.WriteLine("usage: <sample> [options]; <sample> --help lists a sample's options.");
            return 0;
        });
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            Console.Error.WriteLine($"error: {string.Join(" ", result.Errors.Select(e => e.Message))} (see --help)");
            return 2;
        }
        try
        {
            return result.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    /// <summary>A sample: a sub-command with its options and the method that runs it.</summary>
    public static Command Sample(string name, string description, Func<ParseResult, int> run, params Option[] options)
    {
        var command = new Command(name, description);
        foreach (var option in options)
            command.Add(option);
        command.SetAction(run);
        return command;
    }

    /// <summary>A child-process entry point of a sample: runnable, hidden from the sample list.</summary>
    public static Command Child(string name, string description, Func<ParseResult, int> run, params Option[] options)
    {
        var command = Sample(name, description, run, options);
        command.Hidden = true;
        return command;
    }

    /// <summary>An option with a default value (shown by --help).</summary>
    public static Option<T> Option<T>(string name, T defaultValue, string description) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue };

    /// <summary>An optional text option (null when absent).</summary>
    public static Option<string?> Text(string name, string description) => new(name) { Description = description };

    /// <summary>A text option restricted to <paramref name="values"/>.</summary>
    public static Option<string> Choice(string name, string defaultValue, string description, params string[] values)
    {
        var option = Option(name, defaultValue, description);
        option.AcceptOnlyFromAmong(values);
        return option;
    }

    /// <summary>An integer option with a default, at least <paramref name="min"/>.</summary>
    public static Option<int> Int(string name, int defaultValue, string description, int min = 1) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue, CustomParser = r => ParseInt(r, name, min) ?? 0 };

    /// <summary>An optional integer option (null when absent: the sample picks a default), at least <paramref name="min"/>.</summary>
    public static Option<int?> OptionalInt(string name, string description, int min = 1) =>
        new(name) { Description = description, CustomParser = r => ParseInt(r, name, min) };

    /// <summary>A real-valued option with a default, at least <paramref name="min"/>.</summary>
    public static Option<double> Real(string name, double defaultValue, string description, double min = 0) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue, CustomParser = r => ParseReal(r, name, min) ?? 0 };

    /// <summary>An optional real-valued option (null when absent), at least <paramref name="min"/>.</summary>
    public static Option<double?> OptionalReal(string name, string description, double min = 0) =>
        new(name) { Description = description, CustomParser = r => ParseReal(r, name, min) };

    /// <summary>--epochs: the number of training epochs (at least 1); the default depends on the sample and the data.</summary>
    public static Option<int?> Epochs(string defaults) => OptionalInt("--epochs", $"training epochs (default: {defaults})");

    /// <summary>--data: digits (shipped) or fashion-mnist (Debian package; digits when absent).</summary>
    public static Option<string> Data(string defaultValue) =>
        Choice("--data", defaultValue, "data set: digits (shipped) or fashion-mnist (apt-get install dataset-fashion-mnist; digits when absent)", "digits", "fashion-mnist");

    /// <summary>--metrics-out: the metrics JSON file.</summary>
    public static Option<string?> MetricsOut() => Text("--metrics-out", "write the metrics as JSON to this file");

    /// <summary>--output: the folder for models, exports and plots.</summary>
    public static Option<string?> Output(string sample) =>
        Text("--output", $"folder for models, ONNX exports and plots (default: artifacts/{sample}-<yyyyMMdd-HHmmss>)");

    /// <summary>The output folder (created): the --output value, else artifacts/&lt;sample&gt;-&lt;yyyyMMdd-HHmmss&gt;.</summary>
    public static string OutputFolder(string? output, string sample)
    {
        string folder = output ?? Path.Combine("artifacts", $"{sample}-{RunStamp}");
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>Prints the path of a file the sample wrote.</summary>
    public static void Wrote(string path, string? what = null) =>
        Console.WriteLine(what is null ? $"wrote {path}" : $"wrote {path} ({what})");

    /// <summary>A comma-separated list of integers (at least 1 each), e.g. --depth 2,10.</summary>
    public static int[] IntList(string value, string option) =>
        [.. value.Split(',').Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1
            ? v : throw new UsageException($"Invalid value '{value}' for option '{option}': expected integers >= 1 separated by commas."))];

    private static int? ParseInt(ArgumentResult r, string name, int min)
    {
        string token = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
        if (int.TryParse(token, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min)
            return v;
        r.AddError($"Invalid value '{token}' for option '{name}': expected an integer >= {min}.");
        return null;
    }

    private static double? ParseReal(ArgumentResult r, string name, double min)
    {
        string token = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
        if (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && v >= min)
            return v;
        r.AddError(string.Create(CultureInfo.InvariantCulture, $"Invalid value '{token}' for option '{name}': expected a number >= {min}."));
        return null;
    }
}
