namespace Allauzen.ML.Samples.Common;

/// <summary>
/// One sample's command line: the options the samples share (--data and --epochs where the sample has them,
/// --metrics-out and --output always) around the sample's own options, and the accessors its Run method reads them with.
/// </summary>
public sealed class SampleCommand
{
    private readonly string _name;
    private readonly Option<string>? _data;
    private readonly Option<int?>? _epochs;
    private readonly Option<string?> _metricsOut = SampleCli.MetricsOut();
    private readonly Option<string?> _output;

    /// <summary>
    /// The shared options of sample <paramref name="name"/>: --data with its default <paramref name="data"/> (digits or
    /// fashion-mnist; none when null), --epochs with the defaults described by <paramref name="epochs"/> (none when null),
    /// --metrics-out, --output.
    /// </summary>
    public SampleCommand(string name, string? data = null, string? epochs = null)
    {
        _name = name;
        _data = data is null ? null : SampleCli.Data(data);
        _epochs = epochs is null ? null : SampleCli.Epochs(epochs);
        _output = SampleCli.Output(name);
    }

    /// <summary>The sub-command: --data, --epochs, then <paramref name="options"/>, then --metrics-out and --output.</summary>
    public Command Create(string description, Func<ParseResult, int> run, params Option[] options)
    {
        Option[] shared = [.. new Option?[] { _data, _epochs }.OfType<Option>()];
        return SampleCli.Sample(_name, description, run, [.. shared, .. options, _metricsOut, _output]);
    }

    /// <summary>The --data value.</summary>
    public string Data(ParseResult args) => args.GetValue(_data ?? throw new InvalidOperationException($"Sample '{_name}' has no --data option."))!;

    /// <summary>The --epochs value, or null when absent (the sample picks its default).</summary>
    public int? Epochs(ParseResult args) => args.GetValue(_epochs ?? throw new InvalidOperationException($"Sample '{_name}' has no --epochs option."));

    /// <summary>The output folder (created): the --output value, else artifacts/&lt;sample&gt;-&lt;yyyyMMdd-HHmmss&gt;.</summary>
    public string OutputFolder(ParseResult args) => SampleCli.OutputFolder(args.GetValue(_output), _name);

    /// <summary>Prints the metrics JSON and writes it to the --metrics-out file when given.</summary>
    public void WriteMetrics(ParseResult args, IReadOnlyDictionary<string, object?> metrics) => MetricsFile.Write(args.GetValue(_metricsOut), metrics);
}
