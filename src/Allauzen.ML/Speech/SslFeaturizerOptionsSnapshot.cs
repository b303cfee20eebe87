using System.Text.Json.Serialization;

namespace Allauzen.ML.Speech;

/// <summary>
/// The persisted settings of a featurizer: <see cref="SslFeaturizerOptions"/> without the model source and the
/// run-time hooks (progress, cancellation). Serialized as JSON in the model payload.
/// </summary>
internal sealed class SslFeaturizerOptionsSnapshot
{
    public string InputColumnName = "Audio";
    public string? SampleRateColumnName;
    public int SampleRate = 16000;
    public int MinSampleRate = 1000;
    public int MaxSampleRate = 384000;
    public double MaxAudioSeconds = 600;
    public string OutputColumnName = "Features";
    public string FrameCountColumnName = "FrameCount";
    public SslPooling Pooling = SslPooling.Mean;
    public SslLayerPolicy LayerPolicy = SslLayerPolicy.Last;
    public int LayerIndex = -1;
    public float[]? LayerWeights;
    public string? InputTensorName;
    public string? LastHiddenStateTensorName;
    public string? HiddenStatesTensorName;
    public string? LengthsTensorName;
    public bool? Normalize;
    public int? ModelSampleRate;
    public float InputScale = 1f;
    public int? FrameStrideSamples;
    public int? ReceptiveFieldSamples;
    public double ChunkSeconds = 30;
    public double ContextSeconds = 5;
    public bool? BatchUtterances;
    public int MaxBatchSamples = 16000 * 120;
    public int ScoringBatchSize = 16;
    public int? GpuDeviceId;
    public bool FallbackToCpu;
    public int IntraOpNumThreads;
    public bool EmbedModel = true;

    [JsonIgnore]
    public SslLayers Layers => SslLayers.From(LayerPolicy, LayerIndex, LayerWeights);

    /// <summary>The per-row limits (rate range, duration).</summary>
    [JsonIgnore]
    public AudioLimits Limits => new(MinSampleRate, MaxSampleRate, MaxAudioSeconds);

    /// <summary>The configured receptive field, or wav2vec 2.0's 400 samples (used before the metadata is read).</summary>
    [JsonIgnore]
    public int ReceptiveField => ReceptiveFieldSamples ?? 400;

    public static SslFeaturizerOptionsSnapshot From(SslFeaturizerOptions o) => new()
    {
        InputColumnName = o.InputColumnName,
        SampleRateColumnName = o.SampleRateColumnName,
        SampleRate = o.SampleRate,
        MinSampleRate = o.MinSampleRate,
        MaxSampleRate = o.MaxSampleRate,
        MaxAudioSeconds = o.MaxAudioSeconds,
        OutputColumnName = o.OutputColumnName,
        FrameCountColumnName = o.FrameCountColumnName,
        Pooling = o.Pooling,
        LayerPolicy = o.Layers.Policy,
        LayerIndex = o.Layers.Index,
        LayerWeights = o.Layers.Policy == SslLayerPolicy.WeightedSum ? o.Layers.Weights.ToArray() : null,
        InputTensorName = o.InputTensorName,
        LastHiddenStateTensorName = o.LastHiddenStateTensorName,
        HiddenStatesTensorName = o.HiddenStatesTensorName,
        LengthsTensorName = o.LengthsTensorName,
        Normalize = o.Normalize,
        ModelSampleRate = o.ModelSampleRate,
        InputScale = o.InputScale,
        FrameStrideSamples = o.FrameStrideSamples,
        ReceptiveFieldSamples = o.ReceptiveFieldSamples,
        ChunkSeconds = o.ChunkSeconds,
        ContextSeconds = o.ContextSeconds,
        BatchUtterances = o.BatchUtterances,
        MaxBatchSamples = o.MaxBatchSamples,
        ScoringBatchSize = o.ScoringBatchSize,
        GpuDeviceId = o.GpuDeviceId,
        FallbackToCpu = o.FallbackToCpu,
        IntraOpNumThreads = o.IntraOpNumThreads,
        EmbedModel = o.EmbedModel,
    };
}
