using Allauzen.ML.Core;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using TensorElementDataType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Smoothing;

/// <summary>
/// The base classifier f of randomized smoothing: logits for a batch of noisy inputs. Two kinds: an ONNX
/// classifier run by ONNX Runtime (its bytes are kept for persistence) and an Allauzen network run by
/// TorchSharp.
/// </summary>
internal abstract class SmoothingBaseModel : IDisposable
{
    public abstract int FeatureCount { get; }

    public abstract int ClassCount { get; }

    public abstract LabelNames Classes { get; }

    /// <summary>Device on which the noise is drawn and the inputs are built.</summary>
    public abstract Device Device { get; }

    /// <summary>Whether the forward pass runs off the host (a CUDA device), leaving the CPU cores idle meanwhile.</summary>
    public abstract bool RunsOffHost { get; }

    /// <summary>
    /// The votes (argmax of the logits, lowest index on ties, NaN never wins) of <paramref name="x"/> [count, d] into
    /// <paramref name="votes"/>, and the logits into <paramref name="logits"/> when it is not null.
    /// </summary>
    public abstract void Classify(Tensor x, int count, long[] votes, float[]? logits);

    /// <summary>
    /// <see cref="Classify(Tensor, int, long[], float[])"/> of the <paramref name="count"/> rows of <paramref name="x"/> that start
    /// at element <paramref name="offset"/> (row-major, d values a row, on the host); the default wraps the array as a CPU
    /// tensor without copying it.
    /// </summary>
    public virtual void Classify(float[] x, int offset, int count, long[] votes, float[]? logits)
    {
        using var scope = torch.NewDisposeScope();
        var rows = torch.frombuffer(x, torch.float32).narrow(0, offset, (long)count * FeatureCount).view(count, FeatureCount).to(Device);
        Classify(rows, count, votes, logits);
    }

    /// <summary>Argmax of each row of <paramref name="logits"/> (count × K, row-major): lowest index on ties, NaN never wins.</summary>
    internal static void ArgMaxRows(ReadOnlySpan<float> logits, int count, int classes, long[] votes)
    {
        for (int i = 0; i < count; i++)
        {
            var row = logits.Slice(i * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++)
            {
                if (row[c] > row[best] || float.IsNaN(row[best]))
                    best = c;
            }
            votes[i] = best;
        }
    }

    /// <summary>Votes (and optionally logits) of a logits tensor [count, K] on any device: argmax on the device, one host copy.</summary>
    internal static void VotesOf(Tensor logitsTensor, int count, long[] votes, float[]? logits)
    {
        var z = logitsTensor.dtype == torch.float32 ? logitsTensor : logitsTensor.to(torch.float32);
        // NaN never wins (torch's argmax would prefer it); ties go to the lowest index, as torch documents.
        using var votesT = torch.nan_to_num(z, nan: double.NegativeInfinity).argmax(1).cpu();
        votesT.data<long>().CopyTo(votes, 0, 0);
        if (logits is not null)
        {
            using var host = z.cpu();
            host.data<float>().CopyTo(logits, 0, 0);
        }
    }

    public abstract void Save(ModelPayloadWriter writer);

    public abstract void Dispose();

    /// <summary>The exact first-layer noise shortcut for this model (<see cref="FirstLayerNoise"/>), or null; created on first use.</summary>
    public FirstLayerNoise? FirstLayer
    {
        get
        {
            lock (_firstLayerLock)
            {
                if (!_firstLayerCreated)
                {
                    _firstLayer = CreateFirstLayer();
                    _firstLayerCreated = true;
                }
                return _firstLayer;
            }
        }
    }

    private readonly Lock _firstLayerLock = new();
    private FirstLayerNoise? _firstLayer;
    private bool _firstLayerCreated;

    /// <summary>The shortcut for this model, or null when its first layer does not allow it.</summary>
    private protected abstract FirstLayerNoise? CreateFirstLayer();

    /// <summary>Disposes the shortcut if it was created.</summary>
    private protected void DisposeFirstLayer()
    {
        lock (_firstLayerLock)
        {
            _firstLayer?.Dispose();
            _firstLayer = null;
        }
    }

    public static SmoothingBaseModel Create(IHostEnvironment env, RandomizedSmoothingOptions options, int featureCount)
    {
        if (options.BaseModelOnnxPath is { } path)
        {
            var context = OnnxDevice.Of(env);
            var gpu = new OnnxDevice(options.GpuDeviceId ?? context.GpuDeviceId, options.FallbackToCpu ?? context.FallbackToCpu);
            return new OnnxBaseModel(File.ReadAllBytes(path), path, options.OnnxInputName, options.OnnxOutputName, options.BaseModelOutputsProbabilities,
                featureCount, gpu, Warner(env));
        }
        var model = FindLogitsModel(options.BaseModel!);
        CheckDevice(options.Device, options.GpuDeviceId, model.Device);
        return new TorchBaseModel(model, featureCount, options.FeatureColumnName);
    }

    /// <summary>The ONNX device settings of a session: CUDA device (null: CPU) and the fallback rule.</summary>
    internal readonly record struct OnnxDevice(int? GpuDeviceId, bool FallbackToCpu)
    {
        /// <summary>The loading context's settings (a loaded certifier keeps none of its own).</summary>
        public static OnnxDevice Of(IHostEnvironment env)
        {
            var (gpu, fallback) = OnnxSessions.ContextDevice(env);
            return new(gpu, fallback);
        }
    }

    private static Action<string> Warner(IHostEnvironment env) => message =>
    {
        using var ch = env.Register("RandomizedSmoothing").Start("RandomizedSmoothing");
        ch.Warning(MessageSensitivity.None, message);
    };

    /// <summary>
    /// <see cref="RandomizedSmoothingOptions.Device"/> for an Allauzen network: "auto" takes the device its parameters
    /// live on; any other value must resolve to that device (the network is never moved).
    /// </summary>
    internal static void CheckDevice(string? device, int? gpuDeviceId, Device modelDevice)
    {
        if ((device ?? "auto").Trim().Equals("auto", StringComparison.OrdinalIgnoreCase))
            return;
        string wanted = TorchDevice.Resolve(device, gpuDeviceId);
        string actual = modelDevice.type == DeviceType.CPU ? "cpu" : $"cuda:{modelDevice.index}";
        if (wanted != actual)
            throw new ArgumentOutOfRangeException(nameof(RandomizedSmoothingOptions.Device), device,
                $"Device = '{device}' resolves to {wanted}, but the base model's parameters are on {actual}; smoothing runs the network where it lives. " +
                "Use Device = \"auto\", or train the base model on that device.");
    }

    /// <summary>
    /// Reads the base model back: an embedded ONNX classifier, or the payload of an Allauzen network classifier (a
    /// component whose transformer is an <see cref="ILogitsModel"/>, checked before its payload is read). Anything that
    /// does not fit the stored feature count fails with an <see cref="InvalidDataException"/> naming the entry.
    /// </summary>
    public static SmoothingBaseModel Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        string kind = payload.ReadString("base.kind");
        int d = payload.ReadInt32("base.features", 1, int.MaxValue);
        if (kind == "onnx")
        {
            var names = payload.ReadStrings("base.onnxNames");
            payload.Require(names.Length == 2, "base.onnxNames", "the ONNX input and output names", $"are {names.Length} names, expected 2");
            string probabilities = payload.ReadString("base.probabilities");
            payload.Require(probabilities is "true" or "false", "base.probabilities", "the flag", $"'{probabilities}' is not true or false");
            try
            {
                return new OnnxBaseModel(payload.ReadBytes("base.onnx"), $"{payload.Source} (embedded ONNX)", names[0], names[1], probabilities == "true", d,
                    OnnxDevice.Of(env), Warner(env));
            }
            catch (ArgumentException ex)
            {
                throw payload.Invalid("base.onnx", "the embedded ONNX classifier", $"does not fit: {ex.Message.Split('\n')[0]}", ex);
            }
        }
        payload.Require(kind == "allauzen", "base.kind", "the base model kind", $"'{kind}' is neither 'onnx' nor 'allauzen'");
        string signature = payload.ReadString("base.signature");
        var loader = AllauzenLoaders.TryGet(signature);
        payload.Require(loader is not null && typeof(ILogitsModel).IsAssignableFrom(loader.TransformerType), "base.signature", "the base model",
            $"'{signature}' is not the signature of an Allauzen network classifier");
        var inner = new ModelPayloadReader(payload.ReadBytes("base.payload"), $"{payload.Source} (base model)", loader!.ComponentName, loader.Signature);
        var model = (ILogitsModel)loader.Load(env, inner);
        if (model.FeatureCount != d)
        {
            (model as IDisposable)?.Dispose();
            throw payload.Invalid("base.features", "the feature count", $"is {d} but the base model takes {model.FeatureCount} features");
        }
        return new TorchBaseModel(model, d, "Features");
    }

    /// <summary>The one <see cref="ILogitsModel"/> in <paramref name="model"/> (itself or inside a chain).</summary>
    internal static ILogitsModel FindLogitsModel(ITransformer model)
    {
        if (model is ILogitsModel lm)
            return lm;
        if (model is IEnumerable<ITransformer> chain)
        {
            var found = chain.SelectMany(Flatten).OfType<ILogitsModel>().ToArray();
            if (found.Length == 1)
                return found[0];
            throw new ArgumentOutOfRangeException(nameof(RandomizedSmoothingOptions.BaseModel), model.GetType().Name,
                $"BaseModel: the chain holds {found.Length} Allauzen network classifiers; pass the classifier itself (e.g. the MlpTransformer).");
        }
        throw new ArgumentOutOfRangeException(nameof(RandomizedSmoothingOptions.BaseModel), model.GetType().Name,
            $"BaseModel: {model.GetType().Name} is not an Allauzen network classifier (such as MlpTransformer); export it to ONNX and use BaseModelOnnxPath.");
    }

    private static IEnumerable<ITransformer> Flatten(ITransformer t) =>
        t is IEnumerable<ITransformer> c ? c.SelectMany(Flatten) : [t];
}

/// <summary>An Allauzen TorchSharp classifier.</summary>
internal sealed class TorchBaseModel : SmoothingBaseModel
{
    private readonly ILogitsModel _model;

    public TorchBaseModel(ILogitsModel model, int featureCount, string featureColumn)
    {
        TorchRuntime.EnsureInitialized();
        _model = model;
        if (model.FeatureCount != featureCount)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"Schema mismatch for feature column '{featureColumn}': the base model expects Vector<Single, {model.FeatureCount}>, the data has Vector<Single, {featureCount}>.");
    }

    public override int FeatureCount => _model.FeatureCount;

    public override int ClassCount => _model.NumberOfClasses;

    public override LabelNames Classes => _model.Classes;

    public override Device Device => _model.Device;

    public override bool RunsOffHost => _model.Device.type != DeviceType.CPU;

    public ILogitsModel Model => _model;

    public override void Classify(Tensor x, int count, long[] votes, float[]? logits)
    {
        using var scope = torch.NewDisposeScope();
        VotesOf(_model.ForwardLogits(x), count, votes, logits);
    }

    private protected override FirstLayerNoise? CreateFirstLayer() => FirstLayerNoise.TryCreate(_model);

    public override void Save(ModelPayloadWriter writer)
    {
        var inner = (IAllauzenTransformer)_model;
        writer.WriteString("base.kind", "allauzen");
        writer.WriteInt64s("base.features", [FeatureCount]);
        writer.WriteString("base.signature", inner.LoaderSignature);
        writer.WriteString("base.component", inner.ComponentName);
        writer.WriteBytes("base.payload", ModelPayloadWriter.Serialize(inner));
    }

    public override void Dispose() => DisposeFirstLayer();
}

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
