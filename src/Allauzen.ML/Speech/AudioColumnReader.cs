using System.Globalization;
using Allauzen.ML.Data;

namespace Allauzen.ML.Speech;

/// <summary>
/// Reads the audio column of the speech featurizer, a batch at a time: checks its type (a WAV path, WAV bytes or
/// float samples with a sample rate), copies each row's value into a slot, and decodes a slot into mono samples at
/// their sample rate under the configured <see cref="AudioLimits"/>. Every error names the row and the column.
/// </summary>
internal sealed class AudioColumnReader
{
    private readonly SslFeaturizerOptions _o;
    private readonly AudioLimits _limits;
    private readonly AudioInputKind _kind;
    private readonly string?[] _paths;
    private readonly byte[]?[] _bytes;
    private readonly float[]?[] _samples;
    private readonly int[] _rates;
    private readonly long[] _rowIndex;
    private DataViewRow? _row;
    private ValueGetter<ReadOnlyMemory<char>>? _pathGetter;
    private ValueGetter<VBuffer<byte>>? _bytesGetter;
    private ValueGetter<VBuffer<float>>? _samplesGetter;
    private Func<double>? _rateGetter;
    private ReadOnlyMemory<char> _text;
    private VBuffer<byte> _byteBuffer;
    private VBuffer<float> _floatBuffer;

    /// <summary>A reader of <paramref name="capacity"/> slots for an audio column of kind <paramref name="kind"/>.</summary>
    public AudioColumnReader(SslFeaturizerOptions options, AudioLimits limits, AudioInputKind kind, int capacity)
    {
        _o = options;
        _limits = limits;
        _kind = kind;
        _paths = new string?[capacity];
        _bytes = new byte[]?[capacity];
        _samples = new float[]?[capacity];
        _rates = new int[capacity];
        _rowIndex = new long[capacity];
    }

    /// <summary>Returns the input kind of the audio column, or throws naming the column, the expected and the actual type.</summary>
    internal static AudioInputKind Check(DataViewSchema schema, SslFeaturizerOptions o)
    {
        var col = schema.GetColumnOrNull(o.InputColumnName) ?? throw SchemaChecks.NotFound(o.InputColumnName, "audio");
        var kind = KindOf(col.Type) ?? throw SchemaChecks.Mismatch(o.InputColumnName, "audio", ExpectedAudio, col.Type.ToString()!);
        if (kind == AudioInputKind.Samples && o.SampleRateColumnName is { } rateName)
        {
            var rate = schema.GetColumnOrNull(rateName) ?? throw SchemaChecks.NotFound(rateName, "sample rate");
            if (!IsRateType(rate.Type))
                throw SchemaChecks.Mismatch(rateName, "sample rate", "a numeric scalar (Single, Double, Int32, Int64)", rate.Type.ToString()!);
        }
        return kind;
    }

    internal const string ExpectedAudio = "Text (WAV file path), Vector<Byte> (WAV bytes) or Vector<Single> (samples)";

    internal static AudioInputKind? KindOf(DataViewType type) => type switch
    {
        TextDataViewType => AudioInputKind.Path,
        VectorDataViewType { ItemType: var t } when t == NumberDataViewType.Byte => AudioInputKind.WavBytes,
        VectorDataViewType { ItemType: var t } when t == NumberDataViewType.Single => AudioInputKind.Samples,
        _ => null,
    };

    internal static bool IsRateType(DataViewType t) =>
        t == NumberDataViewType.Single || t == NumberDataViewType.Double || t == NumberDataViewType.Int32 || t == NumberDataViewType.Int64;

    /// <summary>Binds the getters of the audio (and sample-rate) column of <paramref name="input"/>.</summary>
    public void Bind(DataViewRow input)
    {
        _row = input;
        var col = input.Schema[_o.InputColumnName];
        switch (_kind)
        {
            case AudioInputKind.Path:
                _pathGetter = input.GetGetter<ReadOnlyMemory<char>>(col);
                break;
            case AudioInputKind.WavBytes:
                _bytesGetter = input.GetGetter<VBuffer<byte>>(col);
                break;
            default:
                _samplesGetter = input.GetGetter<VBuffer<float>>(col);
                if (_o.SampleRateColumnName is { } rateName)
                    _rateGetter = RateGetter(input, input.Schema[rateName]);
                break;
        }
    }

    private static Func<double> RateGetter(DataViewRow row, DataViewSchema.Column c)
    {
        if (c.Type == NumberDataViewType.Single)
        {
            var g = row.GetGetter<float>(c);
            return () => { float v = 0; g(ref v); return v; };
        }
        if (c.Type == NumberDataViewType.Double)
        {
            var g = row.GetGetter<double>(c);
            return () => { double v = 0; g(ref v); return v; };
        }
        if (c.Type == NumberDataViewType.Int32)
        {
            var g = row.GetGetter<int>(c);
            return () => { int v = 0; g(ref v); return v; };
        }
        var g64 = row.GetGetter<long>(c);
        return () => { long v = 0; g64(ref v); return v; };
    }

    /// <summary>The row index of the value in <paramref name="slot"/>.</summary>
    public long RowIndex(int slot) => _rowIndex[slot];

    /// <summary>Copies the current row's audio (and sample rate) into <paramref name="slot"/>.</summary>
    /// <exception cref="InvalidDataException">The sample rate is not a positive whole number of Hz.</exception>
    public void Load(int slot)
    {
        _rowIndex[slot] = _row!.Position;
        switch (_kind)
        {
            case AudioInputKind.Path:
                _pathGetter!(ref _text);
                _paths[slot] = _text.ToString();
                break;
            case AudioInputKind.WavBytes:
                _bytesGetter!(ref _byteBuffer);
                _bytes[slot] = _byteBuffer.DenseValues().ToArray();
                break;
            default:
                _samplesGetter!(ref _floatBuffer);
                _samples[slot] = _floatBuffer.DenseValues().ToArray();
                if (_rateGetter is not null)
                {
                    double r = _rateGetter();
                    if (!(r >= 1 && r <= int.MaxValue) || r != Math.Floor(r))
                        throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                            $"Row {_rowIndex[slot]}, column '{_o.SampleRateColumnName}': invalid sample rate {r}; expected a positive whole number of Hz."));
                    _rates[slot] = (int)r;
                }
                else
                {
                    _rates[slot] = _o.SampleRate;
                }
                break;
        }
    }

    /// <summary>Decodes <paramref name="s"/>: its samples, their rate and a description of the source for messages.</summary>
    /// <exception cref="InvalidDataException">The audio is missing, malformed or over the limits (names the row and column).</exception>
    public (float[] Samples, int Rate, string Source) Decode(int s)
    {
        long row = _rowIndex[s];
        string column = _o.InputColumnName;
        try
        {
            switch (_kind)
            {
                case AudioInputKind.Path:
                    string path = _paths[s]!;
                    if (string.IsNullOrWhiteSpace(path))
                        throw new InvalidDataException("the WAV path is empty.");
                    if (!File.Exists(path))
                        throw new InvalidDataException($"'{path}': file not found.");
                    var a = WavReader.ReadFile(path, _limits);
                    return (a.Samples, a.SampleRate, $"'{path}'");
                case AudioInputKind.WavBytes:
                    var b = WavReader.Decode(_bytes[s]!, "WAV bytes", _limits);
                    return (b.Samples, b.SampleRate, "WAV bytes");
                default:
                    var x = _samples[s]!;
                    _limits.Check(x.Length, _rates[s]);
                    AudioLimits.RequireFinite(x);
                    return (x, _rates[s], "samples");
            }
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"SslFeaturizer: row {row}, column '{column}': {e.Message}", e);
        }
    }

    /// <summary>Drops the audio held in <paramref name="s"/> once it is scored.</summary>
    public void Release(int s)
    {
        _paths[s] = null;
        _bytes[s] = null;
        _samples[s] = null;
    }
}

/// <summary>What the audio column holds.</summary>
internal enum AudioInputKind
{
    /// <summary>Text: a WAV file path.</summary>
    Path,

    /// <summary>Vector&lt;Byte&gt;: the bytes of a WAV file.</summary>
    WavBytes,

    /// <summary>Vector&lt;Single&gt;: mono samples with a sample rate.</summary>
    Samples,
}
