using Microsoft.ML.OnnxRuntime;

namespace Allauzen.ML.Speech;

/// <summary>A frames × hidden matrix, frame-major.</summary>
internal readonly record struct FrameMatrix(float[] Data, int Frames, int Hidden);

/// <summary>
/// One ONNX Runtime session on a speech encoder: resolves the tensor names and the output layout
/// ([batch, hidden], [batch, frames, hidden] or [batch, layers, frames, hidden]) from the model, reads its metadata,
/// and runs utterances one at a time or as a right-padded batch with a lengths input, reducing the layers of each
/// frame with fixed weights.
/// </summary>
internal sealed class SslEncoder : IDisposable
{
    private readonly InferenceSession _session;
    private readonly float[] _layerWeights;
    private readonly int _oneHotLayer;
    private readonly string[] _outputNames;

    private SslEncoder(InferenceSession session, SslFeaturizerOptions o, string provider)
    {
        _session = session;
        ExecutionProvider = provider;
        Metadata = session.ModelMetadata.CustomMetadataMap.ToDictionary(kv => kv.Key, kv => kv.Value);
        var inputs = session.InputMetadata;
        var outputs = session.OutputMetadata;
        string Describe(IReadOnlyDictionary<string, NodeMetadata> m) =>
            string.Join(", ", m.Select(kv => $"{kv.Key} {kv.Value.ElementType.Name}[{string.Join(",", kv.Value.Dimensions)}]"));

        // Waveform input: the configured name, input_values, or the only float input.
        InputName = o.InputTensorName
            ?? (inputs.ContainsKey("input_values") ? "input_values"
                : inputs.Where(kv => kv.Value.ElementType == typeof(float)).Select(kv => kv.Key).SingleOrDefault())
            ?? throw Bad("InputTensorName", $"the model has no 'input_values' input and not exactly one float input; its inputs are: {Describe(inputs)}");
        if (!inputs.TryGetValue(InputName, out var inMeta))
            throw Bad("InputTensorName", $"the model has no input '{InputName}'; its inputs are: {Describe(inputs)}");
        if (inMeta.ElementType != typeof(float) || inMeta.Dimensions.Length != 2)
            throw Bad("InputTensorName", $"input '{InputName}' must be float [batch, samples]; it is {inMeta.ElementType.Name}[{string.Join(",", inMeta.Dimensions)}]");
        if (inMeta.Dimensions[1] > 0)
            throw Bad("InputTensorName", $"input '{InputName}' has a fixed sample axis of {inMeta.Dimensions[1]}; the featurizer needs a dynamic sample axis (export with dynamic_axes)");
        MaxBatch = inMeta.Dimensions[0] > 0 ? inMeta.Dimensions[0] : int.MaxValue;

        LengthsName = o.LengthsTensorName ?? (inputs.ContainsKey("lengths") ? "lengths" : null);
        if (LengthsName is not null && (!inputs.TryGetValue(LengthsName, out var lm) || lm.ElementType != typeof(long)))
            throw Bad("LengthsTensorName", $"the model has no int64 input '{LengthsName}'; its inputs are: {Describe(inputs)}");
        var others = inputs.Keys.Where(k => k != InputName && k != LengthsName).ToArray();
        if (others.Length > 0)
            throw Bad("InputTensorName", $"the model has inputs the featurizer cannot feed ({string.Join(", ", others)}); its inputs are: {Describe(inputs)}");
        FrameLengthsName = outputs.ContainsKey("frame_lengths") ? "frame_lengths" : null;

        // Output: last hidden state for Last, all layers otherwise.
        var floatOutputs = outputs.Where(kv => kv.Value.ElementType == typeof(float)).ToArray();
        bool wantLayers = o.Layers.Policy != SslLayerPolicy.Last;
        string? name;
        if (wantLayers)
        {
            name = o.HiddenStatesTensorName
                ?? (outputs.ContainsKey("hidden_states") ? "hidden_states"
                    : floatOutputs.Where(kv => kv.Value.Dimensions.Length == 4).Select(kv => kv.Key).SingleOrDefault());
            if (name is null)
                throw Bad("Layers", $"Layers = {o.Layers} needs an all-layers output [batch, layers, frames, hidden] ('hidden_states'); the model's outputs are: {Describe(outputs)}. Use SslLayers.Last or export hidden_states");
        }
        else
        {
            name = o.LastHiddenStateTensorName
                ?? (outputs.ContainsKey("last_hidden_state") ? "last_hidden_state"
                    : o.HiddenStatesTensorName ?? (outputs.ContainsKey("hidden_states") ? "hidden_states"
                    : floatOutputs.Length == 1 ? floatOutputs[0].Key : null))
                ?? throw Bad("LastHiddenStateTensorName", $"the model has no 'last_hidden_state' output and not exactly one float output; its outputs are: {Describe(outputs)}");
        }
        if (!outputs.TryGetValue(name, out var outMeta))
            throw Bad(wantLayers ? "HiddenStatesTensorName" : "LastHiddenStateTensorName", $"the model has no output '{name}'; its outputs are: {Describe(outputs)}");
        if (outMeta.ElementType != typeof(float) || outMeta.Dimensions.Length is < 2 or > 4)
            throw Bad(wantLayers ? "HiddenStatesTensorName" : "LastHiddenStateTensorName",
                $"output '{name}' must be float [batch, hidden], [batch, frames, hidden] or [batch, layers, frames, hidden]; it is {outMeta.ElementType.Name}[{string.Join(",", outMeta.Dimensions)}]");
        if (wantLayers && outMeta.Dimensions.Length != 4)
            throw Bad("HiddenStatesTensorName", $"Layers = {o.Layers} needs a 4-D output [batch, layers, frames, hidden]; '{name}' is [{string.Join(",", outMeta.Dimensions)}]");
        OutputName = name;
        OutputRank = outMeta.Dimensions.Length;
        _outputNames = FrameLengthsName is not null && LengthsName is not null ? [OutputName, FrameLengthsName] : [OutputName];

        int hidden = outMeta.Dimensions[^1];
        int layers = OutputRank == 4 ? outMeta.Dimensions[1] : 1;
        if (hidden <= 0 || layers <= 0)
        {
            // Dynamic hidden or layer axis: one probe run reads them.
            var probe = RunRaw([new float[Math.Max(o.ReceptiveField, 1) * 4]], null, CancellationToken.None);
            (hidden, layers) = (probe.Hidden, probe.Layers);
        }
        HiddenSize = hidden;
        LayerCount = layers;

        // Layer weights (one-hot for Last / Layer(i), so those copy values exactly).
        _layerWeights = new float[LayerCount];
        _oneHotLayer = -1;
        switch (o.Layers.Policy)
        {
            case SslLayerPolicy.Last:
                _oneHotLayer = LayerCount - 1;
                break;
            case SslLayerPolicy.Layer:
                int i = o.Layers.Index < 0 ? LayerCount + o.Layers.Index : o.Layers.Index;
                if (i < 0 || i >= LayerCount)
                    throw Bad("Layers", $"Layer({o.Layers.Index}) is outside the model's {LayerCount} layers in '{OutputName}' (valid: 0..{LayerCount - 1}, or −{LayerCount}..−1)");
                _oneHotLayer = i;
                break;
            case SslLayerPolicy.Average:
                Array.Fill(_layerWeights, 1f / LayerCount);
                break;
            case SslLayerPolicy.WeightedSum:
                if (o.Layers.Weights.Count != LayerCount)
                    throw Bad("Layers", $"WeightedSum has {o.Layers.Weights.Count} weights but '{OutputName}' has {LayerCount} layers");
                for (int l = 0; l < LayerCount; l++)
                    _layerWeights[l] = o.Layers.Weights[l];
                break;
        }
        if (_oneHotLayer >= 0)
            _layerWeights[_oneHotLayer] = 1f;
    }

    /// <summary>The waveform input.</summary>
    public string InputName { get; }

    /// <summary>The lengths input (int64 [batch]), when the model has one.</summary>
    public string? LengthsName { get; }

    /// <summary>The frame-lengths output (int64 [batch]), when the model has one.</summary>
    public string? FrameLengthsName { get; }

    /// <summary>The output read.</summary>
    public string OutputName { get; }

    /// <summary>Rank of <see cref="OutputName"/> (2, 3 or 4).</summary>
    public int OutputRank { get; }

    /// <summary>Hidden size H (last axis of the output).</summary>
    public int HiddenSize { get; }

    /// <summary>Layers in the output (axis 1 of a 4-D output; 1 otherwise).</summary>
    public int LayerCount { get; }

    /// <summary>Largest batch the input accepts (1 for a fixed batch axis of 1).</summary>
    public int MaxBatch { get; }

    /// <summary>The model's custom metadata (ONNX <c>metadata_props</c>).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>"CPU" or "CUDA:n".</summary>
    public string ExecutionProvider { get; }

    /// <summary>Opens a session on the model <paramref name="bytes"/> (or the file <paramref name="path"/>) with the options' threads and device.</summary>
    public static SslEncoder Create(byte[]? bytes, string? path, SslFeaturizerOptions o, Action<string> warn)
    {
        InferenceSession Open(SessionOptions so) => bytes is not null ? new InferenceSession(bytes, so) : new InferenceSession(path!, so);
        Exception BadModel(OnnxRuntimeException e) =>
            new InvalidDataException($"SslFeaturizer: ONNX Runtime cannot load the model {(path is null ? "bytes" : $"'{path}'")} ({e.Message}).", e);

        var (session, provider) = Allauzen.ML.Onnx.OnnxSessions.Open("SslFeaturizer", () => SessionOptions(o), Open, BadModel, o.GpuDeviceId, o.FallbackToCpu, warn);
        try
        {
            return new SslEncoder(session, o, provider);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static SessionOptions SessionOptions(SslFeaturizerOptions o) => new()
    {
        IntraOpNumThreads = o.IntraOpNumThreads,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };

    /// <summary>
    /// Encodes <paramref name="items"/> (waveforms at the model rate) and returns one layer-reduced frame matrix each.
    /// <paramref name="batched"/>: one right-zero-padded batch with the lengths input, valid frames from the model's
    /// frame_lengths output (or the frame formula); otherwise a single utterance (batch of 1).
    /// </summary>
    public FrameMatrix[] Run(IReadOnlyList<float[]> items, bool batched, int stride, int receptiveField, CancellationToken ct)
    {
        var raw = RunRaw(items, batched ? items.Select(x => (long)x.Length).ToArray() : null, ct);
        var result = new FrameMatrix[items.Count];
        int h = raw.Hidden, t = raw.Frames, l = raw.Layers;
        for (int b = 0; b < items.Count; b++)
        {
            int frames = t;
            if (batched)
            {
                frames = raw.FrameLengths is { } fl ? (int)fl[b] : FramePlan.Frames(items[b].Length, stride, receptiveField);
                frames = Math.Clamp(frames, 0, t);
            }
            var m = new float[frames * h];
            var src = raw.Data.AsSpan();
            if (_oneHotLayer >= 0)
            {
                int offset = ((b * l + _oneHotLayer) * t) * h;
                src.Slice(offset, frames * h).CopyTo(m);
            }
            else
            {
                for (int layer = 0; layer < l; layer++)
                {
                    float w = _layerWeights[layer];
                    var s = src.Slice(((b * l + layer) * t) * h, frames * h);
                    for (int k = 0; k < m.Length; k++)
                        m[k] += w * s[k];
                }
            }
            result[b] = new FrameMatrix(m, frames, h);
        }
        return result;
    }

    private sealed record RawOutput(float[] Data, int Layers, int Frames, int Hidden, long[]? FrameLengths);

    private RawOutput RunRaw(IReadOnlyList<float[]> items, long[]? lengths, CancellationToken ct)
    {
        int batch = items.Count;
        int maxLen = items.Max(x => x.Length);
        float[] input;
        if (batch == 1)
        {
            input = items[0];
        }
        else
        {
            input = new float[(long)batch * maxLen];
            for (int b = 0; b < batch; b++)
                items[b].CopyTo(input, (long)b * maxLen);
        }
        var names = new List<string> { InputName };
        using var values = new DisposableValues();
        values.Add(OrtValue.CreateTensorValueFromMemory(input, [batch, maxLen]));
        if (LengthsName is not null)
        {
            names.Add(LengthsName);
            values.Add(OrtValue.CreateTensorValueFromMemory(lengths ?? [maxLen], [batch]));
        }
        using var runOptions = new RunOptions();
        using var registration = ct.CanBeCanceled ? ct.Register(() => runOptions.Terminate = true) : default;
        IDisposableReadOnlyCollection<OrtValue> outputs;
        try
        {
            outputs = _session.Run(runOptions, names, values.Items, _outputNames);
        }
        catch (OnnxRuntimeException) when (ct.IsCancellationRequested)
        {
            throw new OperationCanceledException("SslFeaturizer: featurization was cancelled.", ct);
        }
        using (outputs)
        {
            var o = outputs[0];
            var shape = o.GetTensorTypeAndShape().Shape;
            var data = o.GetTensorDataAsSpan<float>().ToArray();
            int layers = shape.Length == 4 ? (int)shape[1] : 1;
            int frames = shape.Length >= 3 ? (int)shape[^2] : 1;
            int hidden = (int)shape[^1];
            if (shape[0] != batch)
                throw new InvalidDataException($"SslFeaturizer: output '{OutputName}' has batch size {shape[0]} for {batch} input row(s).");
            if (hidden != HiddenSize && HiddenSize > 0)
                throw new InvalidDataException($"SslFeaturizer: output '{OutputName}' has hidden size {hidden}, expected {HiddenSize}.");
            long[]? fl = outputs.Count > 1 ? outputs[1].GetTensorDataAsSpan<long>().ToArray() : null;
            return new RawOutput(data, layers, frames, hidden, fl);
        }
    }

    public void Dispose() => _session.Dispose();

    private static ArgumentOutOfRangeException Bad(string option, string message) =>
        new(option, $"SslFeaturizer ({option}): {message}.");

    private sealed class DisposableValues : IDisposable
    {
        public List<OrtValue> Items { get; } = [];

        public void Add(OrtValue v) => Items.Add(v);

        public void Dispose()
        {
            foreach (var v in Items)
                v.Dispose();
        }
    }
}
