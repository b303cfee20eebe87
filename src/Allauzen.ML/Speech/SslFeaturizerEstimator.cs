using Allauzen.ML.Core;
using Allauzen.ML.Data;

namespace Allauzen.ML.Speech;

/// <summary>
/// The estimator of <c>ml.Transforms.Speech.SslFeaturizer</c>. It does not train: <see cref="Fit"/> checks the
/// input schema and opens the ONNX encoder.
/// </summary>
public sealed class SslFeaturizerEstimator : IEstimator<SslFeaturizerTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly SslFeaturizerOptions _settings;
    private readonly byte[]? _modelBytes;
    private readonly string? _modelPath;
    private readonly IProgress<SslFeaturizerProgress>? _progress;
    private readonly CancellationToken _cancellationToken;

    internal SslFeaturizerEstimator(IHostEnvironment env, SslFeaturizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        _env = env;
        int sources = (options.ModelPath is null ? 0 : 1) + (options.ModelBytes is null ? 0 : 1) + (options.ModelStream is null ? 0 : 1);
        if (sources != 1)
            throw new ArgumentOutOfRangeException(nameof(options.ModelPath),
                $"SslFeaturizer: set exactly one of ModelPath, ModelBytes and ModelStream (got {sources}).");
        if (options.ModelPath is { } path)
        {
            if (string.IsNullOrWhiteSpace(path) || !File.Exists(path))
                throw new ArgumentOutOfRangeException(nameof(options.ModelPath), path, $"SslFeaturizer (ModelPath): the ONNX file '{path}' does not exist.");
            _modelPath = Path.GetFullPath(path);
        }
        else
        {
            if (!options.EmbedModel)
                throw new ArgumentOutOfRangeException(nameof(options.EmbedModel),
                    "SslFeaturizer (EmbedModel): EmbedModel = false stores the model path, so it needs ModelPath, not ModelBytes or ModelStream.");
            if (options.ModelBytes is { } bytes)
            {
                _modelBytes = (byte[])bytes.Clone();
            }
            else
            {
                using var ms = new MemoryStream();
                options.ModelStream!.CopyTo(ms);
                _modelBytes = ms.ToArray();
            }
            if (_modelBytes.Length == 0)
                throw new ArgumentOutOfRangeException(options.ModelBytes is null ? nameof(options.ModelStream) : nameof(options.ModelBytes),
                    "SslFeaturizer: the model is empty (0 bytes).");
        }
        Require(!string.IsNullOrWhiteSpace(options.InputColumnName), nameof(options.InputColumnName), "must name the audio column");
        Require(!string.IsNullOrWhiteSpace(options.OutputColumnName), nameof(options.OutputColumnName), "must name the features column");
        Require(options.Pooling != SslPooling.None || !string.IsNullOrWhiteSpace(options.FrameCountColumnName), nameof(options.FrameCountColumnName), "must name the frame-count column when Pooling = None");
        Require(options.Pooling != SslPooling.None || options.FrameCountColumnName != options.OutputColumnName, nameof(options.FrameCountColumnName), "must differ from OutputColumnName");
        Require(Enum.IsDefined(options.Pooling), nameof(options.Pooling), $"{options.Pooling} is not a pooling");
        Require(options.Layers is not null, nameof(options.Layers), "must be set (SslLayers.Last, Layer(i), Average or WeightedSum(w))");
        Require(options.MinSampleRate >= 1, nameof(options.MinSampleRate), $"must be a positive rate in Hz (got {options.MinSampleRate})");
        Require(options.MaxSampleRate >= options.MinSampleRate, nameof(options.MaxSampleRate), $"must be ≥ MinSampleRate {options.MinSampleRate} Hz (got {options.MaxSampleRate})");
        Require(double.IsFinite(options.MaxAudioSeconds) && options.MaxAudioSeconds > 0, nameof(options.MaxAudioSeconds), $"must be a positive number of seconds (got {options.MaxAudioSeconds})");
        Require(options.SampleRate >= 1, nameof(options.SampleRate), $"must be a positive rate in Hz (got {options.SampleRate})");
        Require(options.SampleRateColumnName is not null || (options.SampleRate >= options.MinSampleRate && options.SampleRate <= options.MaxSampleRate),
            nameof(options.SampleRate), $"must be in [MinSampleRate, MaxSampleRate] = [{options.MinSampleRate}, {options.MaxSampleRate}] Hz (got {options.SampleRate})");
        Require(options.ModelSampleRate is null or >= 1, nameof(options.ModelSampleRate), $"must be a positive rate in Hz (got {options.ModelSampleRate})");
        Require(float.IsFinite(options.InputScale) && options.InputScale != 0, nameof(options.InputScale), $"must be finite and non-zero (got {options.InputScale})");
        Require(options.FrameStrideSamples is null or >= 1, nameof(options.FrameStrideSamples), $"must be at least 1 (got {options.FrameStrideSamples})");
        Require(options.ReceptiveFieldSamples is null or >= 1, nameof(options.ReceptiveFieldSamples), $"must be at least 1 (got {options.ReceptiveFieldSamples})");
        Require(double.IsFinite(options.ChunkSeconds) && options.ChunkSeconds >= 0, nameof(options.ChunkSeconds), $"must be ≥ 0 seconds (0 = no chunking; got {options.ChunkSeconds})");
        Require(double.IsFinite(options.ContextSeconds) && options.ContextSeconds >= 0, nameof(options.ContextSeconds), $"must be ≥ 0 seconds (got {options.ContextSeconds})");
        Require(options.MaxBatchSamples >= 1, nameof(options.MaxBatchSamples), $"must be at least 1 (got {options.MaxBatchSamples})");
        Require(options.ScoringBatchSize >= 1, nameof(options.ScoringBatchSize), $"must be at least 1 (got {options.ScoringBatchSize})");
        Require(options.GpuDeviceId is null or >= 0, nameof(options.GpuDeviceId), $"must be a device index ≥ 0 (got {options.GpuDeviceId})");
        Require(options.IntraOpNumThreads >= 0, nameof(options.IntraOpNumThreads), $"must be ≥ 0 (0 = ONNX Runtime's default; got {options.IntraOpNumThreads})");
        _settings = options.PersistedCopy();
        _progress = options.Progress;
        _cancellationToken = options.CancellationToken;
    }

    private static void Require(bool condition, string option, string message)
    {
        if (!condition)
            throw new ArgumentOutOfRangeException(option, $"SslFeaturizer ({option}): {message}.");
    }

    /// <summary>Checks the audio column and opens the encoder; nothing is learned from the data.</summary>
    public SslFeaturizerTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        AudioColumnReader.Check(input.Schema, _settings);
        return new SslFeaturizerTransformer(_env, _settings, _modelBytes, _modelPath)
        {
            Progress = _progress,
            CancellationToken = _cancellationToken,
        };
    }

    /// <summary>The input shape plus the features column (a known-size vector when pooled, else a variable vector and the frame count).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        string name = _settings.InputColumnName;
        if (!SchemaChecks.TryFind(inputSchema, name, out var col))
            throw SchemaChecks.NotFound(name, "audio");
        bool ok = col.Kind == SchemaShape.Column.VectorKind.Scalar
            ? col.ItemType is TextDataViewType
            : col.ItemType == NumberDataViewType.Byte || col.ItemType == NumberDataViewType.Single;
        if (!ok || col.IsKey)
            throw SchemaChecks.Mismatch(name, "audio", AudioColumnReader.ExpectedAudio,
                col.Kind == SchemaShape.Column.VectorKind.Scalar ? col.ItemType.ToString()! : $"Vector<{col.ItemType}>");
        if (col.Kind != SchemaShape.Column.VectorKind.Scalar && col.ItemType == NumberDataViewType.Single && _settings.SampleRateColumnName is { } rate)
        {
            if (!SchemaChecks.TryFind(inputSchema, rate, out var rc))
                throw SchemaChecks.NotFound(rate, "sample rate");
            if (rc.Kind != SchemaShape.Column.VectorKind.Scalar || rc.IsKey || !AudioColumnReader.IsRateType(rc.ItemType))
                throw SchemaChecks.Mismatch(rate, "sample rate", "a numeric scalar (Single, Double, Int32, Int64)", rc.ItemType.ToString()!);
        }
        var added = new List<SchemaShape.Column>();
        if (_settings.Pooling == SslPooling.None)
        {
            added.Add(SchemaShapes.Column(_settings.OutputColumnName, SchemaShape.Column.VectorKind.VariableVector, NumberDataViewType.Single, false));
            added.Add(SchemaShapes.Column(_settings.FrameCountColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Int32, false));
        }
        else
        {
            added.Add(SchemaShapes.Column(_settings.OutputColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false));
        }
        return SchemaShapes.With(inputSchema, added);
    }
}
