using Allauzen.ML.Core;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;
using Microsoft.ML.OnnxRuntime;
using TensorElementDataType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Smoothing;

/// <summary>An ONNX classifier run by ONNX Runtime; inputs are copied from the noise tensor.</summary>
internal sealed class OnnxBaseModel : SmoothingBaseModel
{
    private readonly byte[] _bytes;
    private readonly InferenceSession _session;
    private readonly string _input;
    private readonly string _output;
    private readonly bool _probabilities;
    private readonly int _features;
    private readonly int _classes;
    private readonly OnnxDevice _device;
    private float[] _buffer = [];
    private float[] _logits = [];
    private Tensor? _bufferTensor;

    public OnnxBaseModel(byte[] bytes, string source, string? inputName, string? outputName, bool probabilities, int featureCount,
        OnnxDevice device = default, Action<string>? warn = null)
    {
        _bytes = bytes;
        _device = device;
        _probabilities = probabilities;
        _features = featureCount;
        (_session, ExecutionProvider) = OnnxSessions.Open("RandomizedSmoothing", NewSessionOptions, so => new InferenceSession(bytes, so),
            e => new InvalidDataException($"BaseModelOnnxPath: '{source}' is not a valid ONNX model: {e.Message}", e),
            device.GpuDeviceId, device.FallbackToCpu, warn ?? (_ => { }));
        _input = inputName ?? _session.InputMetadata.Keys.First();
        _output = outputName ?? _session.OutputMetadata.Keys.First();
        if (!_session.InputMetadata.TryGetValue(_input, out var inMeta))
            throw new ArgumentOutOfRangeException(nameof(RandomizedSmoothingOptions.OnnxInputName), _input,
                $"ONNX model '{source}' has no input '{_input}'; inputs: {string.Join(", ", _session.InputMetadata.Keys)}.");
        if (!_session.OutputMetadata.TryGetValue(_output, out var outMeta))
            throw new ArgumentOutOfRangeException(nameof(RandomizedSmoothingOptions.OnnxOutputName), _output,
                $"ONNX model '{source}' has no output '{_output}'; outputs: {string.Join(", ", _session.OutputMetadata.Keys)}.");
        var inDims = inMeta.Dimensions;
        if (inMeta.ElementDataType != TensorElementDataType.Float || inDims.Length != 2 || inDims[0] > 0 || (inDims[1] > 0 && inDims[1] != featureCount))
            throw new ArgumentOutOfRangeException("inputSchema",
                $"ONNX input tensor '{_input}' of '{source}': expected float [N, {featureCount}] with a free batch dimension N (the feature column has {featureCount} values), got {inMeta.ElementDataType} {Shape(inDims)}.");
        var outDims = outMeta.Dimensions;
        if (outMeta.ElementDataType != TensorElementDataType.Float || outDims.Length != 2 || outDims[0] > 0 || outDims[1] == 1)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"ONNX output tensor '{_output}' of '{source}': expected float [N, K] (one score per class, K ≥ 2), got {outMeta.ElementDataType} {Shape(outDims)}.");
        _classes = outDims[1] > 0 ? outDims[1] : ProbeClasses();
        if (_classes < 2)
            throw new ArgumentOutOfRangeException("inputSchema", $"ONNX output tensor '{_output}' of '{source}': expected [N, K] with K ≥ 2, got K = {_classes}.");
        Classes = LabelNames.Default(_classes);
        TorchRuntime.EnsureInitialized();
    }

    public override int FeatureCount => _features;

    public override int ClassCount => _classes;

    public override LabelNames Classes { get; }

    /// <summary>How ONNX Runtime's intra-op threads wait, in the certifier's sessions created from now on.</summary>
    internal enum SpinPolicy
    {
        /// <summary>They sleep whenever idle (<c>session.intra_op.allow_spinning = 0</c>): between two forward passes the
        /// sampler draws noise on every core, and spinning threads compete for them; pays only on a loaded machine.</summary>
        Never,
        /// <summary>They spin between the parallel sections of a pass and sleep once it returns (<c>session.force_spinning_stop</c>).</summary>
        DuringRun,
        /// <summary>ONNX Runtime's default (the default here): they also spin for a while after a pass returns.</summary>
        OrtDefault,
    }

    /// <summary>The wait policy of new sessions (<see cref="SpinPolicy.OrtDefault"/>; measurements switch it).</summary>
    internal static SpinPolicy Spinning { get; set; } = SpinPolicy.OrtDefault;

    private static SessionOptions NewSessionOptions()
    {
        var options = new SessionOptions();
        if (Spinning == SpinPolicy.Never)
            options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        else if (Spinning == SpinPolicy.DuringRun)
            options.AddSessionConfigEntry("session.force_spinning_stop", "1");
        return options;
    }

    /// <summary>"CPU" or "CUDA:n": the ONNX Runtime provider that runs the base model.</summary>
    public string ExecutionProvider { get; }

    public override Device Device => torch.CPU;

    public override bool RunsOffHost => ExecutionProvider != "CPU";

    public override void Classify(Tensor x, int count, long[] votes, float[]? logits)
    {
        if (_buffer.Length < count * _features)
        {
            _bufferTensor?.Dispose();
            _buffer = new float[count * _features];
            // Shares _buffer's memory: copy_ is one native memcpy (the accessor's CopyTo goes element by element).
            _bufferTensor = torch.frombuffer(_buffer, torch.float32).DetachFromDisposeScope();
        }
        _bufferTensor!.narrow(0, 0, (long)count * _features).view(count, _features).copy_(x);
        Classify(_buffer, 0, count, votes, logits);
    }

    /// <summary>Runs the session on the host rows directly (no copy).</summary>
    public override void Classify(float[] x, int offset, int count, long[] votes, float[]? logits)
    {
        if (_logits.Length < count * _classes)
            _logits = new float[count * _classes];
        Run(x, offset, count, _logits);
        ArgMaxRows(_logits, count, _classes, votes);
        if (logits is not null)
            Array.Copy(_logits, logits, count * _classes);
    }

    private void Run(float[] input, int offset, int count, float[] logits)
    {
        var data = new Memory<float>(input, offset, count * _features);
        using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data, [count, _features]);
        Run(_session, _input, _output, value, count, _classes, _probabilities, logits);
    }

    /// <summary>
    /// Runs <paramref name="session"/> on <paramref name="value"/> ([count, ·]) and writes its output [count, classes] into
    /// <paramref name="logits"/>, as logits: log(max(p, 1e-30)) of probabilities when <paramref name="probabilities"/>.
    /// </summary>
    private static void Run(InferenceSession session, string input, string output, OrtValue value, int count, int classes, bool probabilities,
        float[] logits)
    {
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [input], [value], [output]);
        var span = results[0].GetTensorDataAsSpan<float>();
        if (span.Length != count * classes)
            throw new InvalidOperationException($"ONNX output tensor '{output}' returned {span.Length} values for {count} rows; expected [{count}, {classes}].");
        span.CopyTo(logits);
        if (probabilities)
        {
            for (int i = 0; i < count * classes; i++)
                logits[i] = MathF.Log(Math.Max(logits[i], 1e-30f));
        }
    }

    /// <summary>The serialized model.</summary>
    internal byte[] Bytes => _bytes;

    /// <summary>The input tensor's name.</summary>
    internal string InputName => _input;

    /// <summary>The output tensor's name.</summary>
    internal string OutputName => _output;

    /// <summary>The model's output (logits or probabilities, as it gives them) for rows x [N, d] (float32, CPU), as a CPU tensor.</summary>
    internal Tensor RawOutputs(Tensor x)
    {
        int count = (int)x.shape[0];
        var input = x.contiguous().data<float>().ToArray();
        var output = new float[count * _classes];
        using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(input), [count, _features]);
        Run(_session, _input, _output, value, count, _classes, probabilities: false, output);
        return torch.tensor(output, [count, _classes]);
    }

    private protected override FirstLayerNoise? CreateFirstLayer() => FirstLayerNoise.TryCreate(this);

    /// <summary>
    /// Whether the rest of a split model (first-layer shortcut) runs on the calling thread (one intra-op thread) or on ONNX
    /// Runtime's pool, for shortcuts created from now on. Null (default): on the calling thread when the rest holds at most
    /// h² parameters (less work per sample than the mixing product); measurements force either.
    /// </summary>
    internal static bool? RestOnCallingThread { get; set; }

    /// <summary>
    /// A session on the rest of a split model, on the same execution provider as the base model's, or null when ONNX Runtime
    /// does not accept it (the caller keeps the direct path).
    /// </summary>
    internal FirstLayerNoise.IRest? OpenRest(OnnxFirstLayerSplit split)
    {
        // A rest that does less work per sample than the shortcut's h × h mixing product (e.g. an MLP's last layer) runs on
        // the calling thread: a pool's threads would only wake up, or spin, beside the noise and the mixing product.
        bool small = RestOnCallingThread ?? split.RestParameters <= (long)split.Width * split.Width;
        SessionOptions Options()
        {
            var options = NewSessionOptions();
            if (small)
                options.IntraOpNumThreads = 1;
            return options;
        }
        try
        {
            var (session, _) = OnnxSessions.Open("RandomizedSmoothing", Options, so => new InferenceSession(split.Rest, so),
                e => new InvalidDataException(e.Message, e), ExecutionProvider == "CPU" ? null : _device.GpuDeviceId, fallbackToCpu: true, _ => { });
            return new OnnxRest(session, split.RestInput, _output, split.Width, _classes, _probabilities);
        }
        catch (Exception e) when (e is InvalidDataException or InvalidOperationException or OnnxRuntimeException or ArgumentException)
        {
            return null; // ONNX Runtime does not accept the rest: keep the direct path
        }
    }

    /// <summary>The rest of a split ONNX classifier in its own session: first-layer outputs [N, h] → the classifier's output.</summary>
    private sealed class OnnxRest(InferenceSession session, string input, string output, int width, int classes, bool probabilities)
        : FirstLayerNoise.IRest
    {
        private float[] _logits = [];
        private float[] _rows = [];
        private Tensor? _rowsTensor;

        /// <summary>Runs the session on the rows of y (copied by one native memcpy into a buffer ONNX Runtime reads in place).</summary>
        private void Run(Tensor y, int count, bool transform, float[] into)
        {
            if (_rows.Length < count * width)
            {
                _rowsTensor?.Dispose();
                _rows = GC.AllocateUninitializedArray<float>(count * width, pinned: true);
                _rowsTensor = torch.frombuffer(_rows, torch.float32).DetachFromDisposeScope();
            }
            _rowsTensor!.narrow(0, 0, (long)count * width).view(count, width).copy_(y);
            using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, new Memory<float>(_rows, 0, count * width), [count, width]);
            OnnxBaseModel.Run(session, input, output, value, count, classes, transform && probabilities, into);
        }

        public Tensor Output(Tensor y)
        {
            int count = (int)y.shape[0];
            var raw = new float[count * classes];
            Run(y, count, transform: false, raw);
            return torch.tensor(raw, [count, classes]);
        }

        public void Classify(Tensor y, int count, long[] votes, float[]? logits)
        {
            if (_logits.Length < count * classes)
                _logits = new float[count * classes];
            Run(y, count, transform: true, _logits);
            ArgMaxRows(_logits, count, classes, votes);
            if (logits is not null)
                Array.Copy(_logits, logits, count * classes);
        }

        public void Dispose()
        {
            _rowsTensor?.Dispose();
            session.Dispose();
        }
    }

    private int ProbeClasses()
    {
        var zeros = new float[_features];
        var data = new Memory<float>(zeros);
        using var value = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data, [1, _features]);
        using var runOptions = new RunOptions();
        using var results = _session.Run(runOptions, [_input], [value], [_output]);
        var shape = results[0].GetTensorTypeAndShape().Shape;
        return shape.Length == 2 ? (int)shape[1] : -1;
    }

    private static string Shape(int[] dims) => "[" + string.Join(", ", dims.Select(d => d > 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : "N")) + "]";

    public override void Save(ModelPayloadWriter writer)
    {
        writer.WriteString("base.kind", "onnx");
        writer.WriteInt64s("base.features", [_features]);
        writer.WriteStrings("base.onnxNames", [_input, _output]);
        writer.WriteString("base.probabilities", _probabilities ? "true" : "false");
        writer.WriteBytes("base.onnx", _bytes);
    }

    public override void Dispose()
    {
        DisposeFirstLayer();
        _bufferTensor?.Dispose();
        _session.Dispose();
    }
}
