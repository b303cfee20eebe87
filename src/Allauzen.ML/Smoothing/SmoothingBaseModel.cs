using Allauzen.ML.Core;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;
using Microsoft.ML;
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
