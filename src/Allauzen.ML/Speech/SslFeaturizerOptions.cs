using System.Text.Json;
using System.Text.Json.Serialization;
using Allauzen.ML.Persistence;

namespace Allauzen.ML.Speech;

/// <summary>
/// Options of <c>ml.Transforms.Speech.SslFeaturizer</c>: a self-supervised speech encoder (wav2vec 2.0 such as the
/// LeBenchmark models, HuBERT, WavLM, or any ONNX model with a dynamic sample axis) run by ONNX Runtime on audio
/// files, WAV bytes or float samples, pooled to a fixed-size feature vector for ML.NET trainers.
/// </summary>
/// <remarks>
/// Model contract (our export recipe, see docs/components/speech.md): input <c>input_values</c> float32 [batch, samples] at the
/// model's rate (16 kHz), outputs <c>last_hidden_state</c> [batch, frames, hidden] and optionally
/// <c>hidden_states</c> [batch, layers, frames, hidden]; ONNX metadata keys <c>sampling_rate</c>,
/// <c>do_normalize</c>, <c>feat_extract_norm</c>, <c>frame_stride_samples</c>, <c>receptive_field_samples</c>
/// describe the pre-processing. Every value read from the model can be overridden here.
/// <para>A saved featurizer holds these options as JSON (<see cref="PayloadFormat.JsonOptions"/>): every setting
/// except the model source and the run-time hooks (<see cref="ModelPath"/>, <see cref="ModelBytes"/>,
/// <see cref="ModelStream"/>, <see cref="Progress"/>, <see cref="CancellationToken"/>, marked <c>[JsonIgnore]</c>),
/// with <see cref="Layers"/> written flat (<c>LayerPolicy</c>, <c>LayerIndex</c>, <c>LayerWeights</c>) and
/// <see cref="EmbedModel"/> last, the layout of the payloads saved since the featurizer's first version.</para>
/// </remarks>
public sealed class SslFeaturizerOptions
{
    /// <summary>Path of the ONNX model. Exactly one of <see cref="ModelPath"/>, <see cref="ModelBytes"/> and <see cref="ModelStream"/> is required.</summary>
    [JsonIgnore]
    public string? ModelPath { get; set; }

    /// <summary>The ONNX model as bytes (then the model is always embedded when saved).</summary>
    [JsonIgnore]
    public byte[]? ModelBytes { get; set; }

    /// <summary>A stream holding the ONNX model, read to its end when the estimator is created (then always embedded when saved).</summary>
    [JsonIgnore]
    public Stream? ModelStream { get; set; }

    /// <summary>
    /// True (default): <c>ml.Model.Save</c> embeds the ONNX bytes in the model zip (self-contained; ONNX files above
    /// 2 GB cannot be embedded). False: the zip stores <see cref="ModelPath"/> and the model's SHA-256; loading reads
    /// the file there and fails clearly if it is missing or changed. Only allowed with <see cref="ModelPath"/>.
    /// Loading such a model is off by default, because a model file would make the loader read a path it chooses:
    /// enable it with <c>AppContext.SetSwitch(SslFeaturizerOptions.AllowReferencedModelFilesSwitch, true)</c> (or the
    /// same switch in runtimeconfig.json). Even then only a regular file of at most 2 GiB is read (not a device, FIFO
    /// or folder), and a file that does not match the recorded hash is an error that prints no hash.
    /// </summary>
    [JsonPropertyOrder(1)]
    public bool EmbedModel { get; set; } = true;

    /// <summary>The <see cref="AppContext"/> switch that allows loading featurizers saved with <see cref="EmbedModel"/> = false
    /// (off by default): <c>Allauzen.ML.Speech.AllowReferencedModelFiles</c>.</summary>
    public const string AllowReferencedModelFilesSwitch = "Allauzen.ML.Speech.AllowReferencedModelFiles";

    /// <summary>
    /// The audio column (default <c>Audio</c>): a text column of WAV file paths, a <c>Vector&lt;Byte&gt;</c> of WAV file
    /// bytes, or a <c>Vector&lt;Single&gt;</c> of samples (mono, in [−1, 1]) whose rate is <see cref="SampleRateColumnName"/>
    /// or <see cref="SampleRate"/>.
    /// </summary>
    public string InputColumnName { get; set; } = "Audio";

    /// <summary>For float-sample input: a numeric column holding each row's sample rate in Hz (default none: <see cref="SampleRate"/>).</summary>
    public string? SampleRateColumnName { get; set; }

    /// <summary>For float-sample input without <see cref="SampleRateColumnName"/>: the rate of every row, in Hz (default 16000).</summary>
    public int SampleRate { get; set; } = 16000;

    /// <summary>Lowest accepted sample rate of a row, in Hz (default 1000). Applies to WAV headers, the
    /// <see cref="SampleRateColumnName"/> column and <see cref="SampleRate"/>; a row outside
    /// [<see cref="MinSampleRate"/>, <see cref="MaxSampleRate"/>] is an error naming the row and the file, raised
    /// from the header before anything is decoded or resampled (a 1 Hz header would otherwise be upsampled 16000-fold).</summary>
    public int MinSampleRate { get; set; } = 1000;

    /// <summary>Highest accepted sample rate of a row, in Hz (default 384000); see <see cref="MinSampleRate"/>.</summary>
    public int MaxSampleRate { get; set; } = 384000;

    /// <summary>Longest accepted audio of one row, in seconds (default 600 = 10 minutes). Checked from the WAV header
    /// (or the sample count) before anything is decoded or resampled; longer rows are an error naming the row and the
    /// file. Raise it for long recordings (memory grows with it: about 8 bytes per input sample plus 4 per model-rate sample).</summary>
    public double MaxAudioSeconds { get; set; } = 600;

    /// <summary>The output column (default <c>Features</c>): Vector&lt;Single, H&gt; (Mean, Max), Vector&lt;Single, 2H&gt;
    /// (MeanStd), or a variable-size vector of frames × H values (None).</summary>
    public string OutputColumnName { get; set; } = "Features";

    /// <summary>With <see cref="SslPooling.None"/>: the Int32 column holding the number of frames (default <c>FrameCount</c>).</summary>
    public string FrameCountColumnName { get; set; } = "FrameCount";

    /// <summary>Pooling over frames (default <see cref="SslPooling.Mean"/>).</summary>
    public SslPooling Pooling { get; set; } = SslPooling.Mean;

    /// <summary>Layer choice (default <see cref="SslLayers.Last"/>).</summary>
    [JsonIgnore]
    public SslLayers Layers
    {
        get => _layers ??= _readLayers is { } r ? SslLayers.From(r.Policy, r.Index, r.Weights) : null!;
        set => (_layers, _readLayers) = (value, null);
    }

    private SslLayers? _layers = SslLayers.Last;

    /// <summary>The flat form of <see cref="Layers"/> read from a payload, turned into <see cref="Layers"/> at first use.</summary>
    private (SslLayerPolicy Policy, int Index, float[]? Weights)? _readLayers;

    /// <summary>Persisted form of <see cref="Layers"/>: its policy.</summary>
    [JsonInclude]
    internal SslLayerPolicy LayerPolicy
    {
        get => Layers.Policy;
        set => ReadLayers(r => r with { Policy = value });
    }

    /// <summary>Persisted form of <see cref="Layers"/>: its index (−1 for <see cref="SslLayers.Last"/>, 0 unless
    /// <see cref="SslLayerPolicy.Layer"/>).</summary>
    [JsonInclude]
    internal int LayerIndex
    {
        get => Layers.Index;
        set => ReadLayers(r => r with { Index = value });
    }

    /// <summary>Persisted form of <see cref="Layers"/>: the weights of <see cref="SslLayerPolicy.WeightedSum"/>, else null.</summary>
    [JsonInclude]
    internal float[]? LayerWeights
    {
        get => Layers.Policy == SslLayerPolicy.WeightedSum ? [.. Layers.Weights] : null;
        set => ReadLayers(r => r with { Weights = value });
    }

    private void ReadLayers(Func<(SslLayerPolicy Policy, int Index, float[]? Weights), (SslLayerPolicy, int, float[]?)> update)
    {
        _readLayers = update(_readLayers ?? (SslLayerPolicy.Last, -1, null));
        _layers = null;
    }

    /// <summary>Name of the waveform input tensor (default: <c>input_values</c>, or the model's only float input).</summary>
    public string? InputTensorName { get; set; }

    /// <summary>Name of the [batch, frames, hidden] output (default: <c>last_hidden_state</c>, or the model's only output).</summary>
    public string? LastHiddenStateTensorName { get; set; }

    /// <summary>Name of the [batch, layers, frames, hidden] output (default: <c>hidden_states</c>, or the model's only 4-D output).</summary>
    public string? HiddenStatesTensorName { get; set; }

    /// <summary>Name of an int64 [batch] input with each row's valid sample count (default: <c>lengths</c> when the model has it).
    /// Only such a lengths-aware export of a layer-norm model can batch utterances of different lengths exactly.</summary>
    public string? LengthsTensorName { get; set; }

    /// <summary>Zero-mean unit-variance normalisation of each utterance, (x − mean)/√(var + 1e-7) over its samples
    /// (HuggingFace <c>do_normalize</c>). Null (default): the model's <c>do_normalize</c> metadata, false when absent.</summary>
    public bool? Normalize { get; set; }

    /// <summary>The model's sample rate in Hz. Null (default): the <c>sampling_rate</c> metadata, 16000 when absent.
    /// Audio at other rates is resampled (Kaiser-windowed sinc).</summary>
    public int? ModelSampleRate { get; set; }

    /// <summary>Factor applied to the [−1, 1] samples before normalisation (default 1; 32768 for models that expect int16-scale input).</summary>
    public float InputScale { get; set; } = 1f;

    /// <summary>Samples per output frame (null: <c>frame_stride_samples</c> metadata, else 320). Chunks start on this grid.</summary>
    public int? FrameStrideSamples { get; set; }

    /// <summary>Receptive field of one frame in samples (null: <c>receptive_field_samples</c> metadata, else 400). Shorter
    /// inputs are zero-padded to this length, with a warning in the ML.NET log.</summary>
    public int? ReceptiveFieldSamples { get; set; }

    /// <summary>Longer audio is encoded in chunks of this many seconds (default 30; 0 = never chunk). Attention cost
    /// grows with the square of the length, so chunking bounds memory on long files.</summary>
    public double ChunkSeconds { get; set; } = 30;

    /// <summary>Extra audio encoded on each side of a chunk and discarded afterwards (default 5 s), so that frames near
    /// chunk edges still see context. Chunks and context are aligned on the frame grid, so the stitched frames are
    /// exactly the frames of the whole file, computed with limited context.</summary>
    public double ContextSeconds { get; set; } = 5;

    /// <summary>Batch several utterances in one encoder call. Null (default): only when it is exact, that is, the model
    /// has a lengths input (<see cref="LengthsTensorName"/>) and a layer-norm feature encoder (<c>feat_extract_norm</c>
    /// not <c>group</c>). True forces it (an error when the model has no lengths input); false disables it.</summary>
    public bool? BatchUtterances { get; set; }

    /// <summary>Upper bound of padded samples in one batched encoder call (default 16000 × 120 = 2 min of audio).</summary>
    public int MaxBatchSamples { get; set; } = 16000 * 120;

    /// <summary>Rows read ahead and featurized per pass of the lazy view (default 16; progress is reported per pass).</summary>
    public int ScoringBatchSize { get; set; } = 16;

    /// <summary>CUDA device for ONNX Runtime (default null: CPU). Needs the GPU build of ONNX Runtime in the application.</summary>
    public int? GpuDeviceId { get; set; }

    /// <summary>When <see cref="GpuDeviceId"/> is set but CUDA cannot be used: true runs on the CPU (with a warning), false (default) throws.</summary>
    public bool FallbackToCpu { get; set; }

    /// <summary>ONNX Runtime intra-op threads (default 0: ONNX Runtime's choice, one per core).</summary>
    public int IntraOpNumThreads { get; set; }

    /// <summary>Receives progress after every scored batch of rows (not saved with the model).</summary>
    [JsonIgnore]
    public IProgress<SslFeaturizerProgress>? Progress { get; set; }

    /// <summary>Cancels featurization: the next batch (and a running encoder call) stops with an
    /// <see cref="OperationCanceledException"/> (not saved with the model).</summary>
    [JsonIgnore]
    public CancellationToken CancellationToken { get; set; }

    /// <summary>The per-row limits (rate range, duration).</summary>
    internal AudioLimits Limits => new(MinSampleRate, MaxSampleRate, MaxAudioSeconds);

    /// <summary>The configured receptive field, or wav2vec 2.0's 400 samples (used before the metadata is read).</summary>
    internal int ReceptiveField => ReceptiveFieldSamples ?? 400;

    /// <summary>
    /// The settings a featurizer keeps and saves: a copy through the payload JSON, so without the model source and
    /// the run-time hooks, exactly what a saved featurizer loads back.
    /// </summary>
    internal SslFeaturizerOptions PersistedCopy()
        => JsonSerializer.Deserialize<SslFeaturizerOptions>(JsonSerializer.SerializeToUtf8Bytes(this, PayloadFormat.JsonOptions), PayloadFormat.JsonOptions)!;
}
