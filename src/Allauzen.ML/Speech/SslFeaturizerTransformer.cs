using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Allauzen.ML.Core;
using Allauzen.ML.Persistence;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Speech.SslFeaturizerTransformer), Allauzen.ML.Speech.SslFeaturizerTransformer.Signature, "SslFeaturizer")]

namespace Allauzen.ML.Speech;

/// <summary>
/// Speech SSL features: decodes each row's audio (WAV path, WAV bytes or float samples), resamples it to the model
/// rate, normalises it as the model expects, runs the ONNX encoder (in chunks for long audio, batched only where
/// that is exact), selects or mixes layers and pools the frames. Appends the output column (and, without pooling,
/// the frame count). Saves with <c>ml.Model.Save</c>; it has no ONNX export (it is itself an ONNX model plus an
/// audio front end), so <c>ml.Model.ExportToOnnx</c> on a pipeline containing it fails with a clear error.
/// </summary>
public sealed class SslFeaturizerTransformer : AllauzenTransformerBase, IAllauzenTransformer
{
    internal const string Signature = "ALZ-SSLF";
    private const int Version = 1;
    private const int MaxPaddingWarnings = 10;

    /// <summary>Largest model file read from a path: 2 GiB, the size limit of an ONNX (protobuf) file.</summary>
    internal const long MaxModelFileBytes = int.MaxValue;

    private readonly SslFeaturizerOptions _o;
    private readonly byte[]? _modelBytes;
    private readonly string? _modelPath;
    private readonly string _modelSha256;
    private SslEncoder? _encoder;
    private readonly AudioFrontEnd _frontEnd;
    private readonly AudioLimits _limits;
    private readonly int _chunkFrames;
    private readonly int _contextFrames;
    private readonly object _statsGate = new();
    private long _rows;
    private double _audioSeconds;
    private long _elapsedTicks;
    private int _paddingWarnings;

    internal SslFeaturizerTransformer(IHostEnvironment env, SslFeaturizerOptions options, byte[]? modelBytes,
        string? modelPath, string? expectedSha256 = null)
        : base(env, "Allauzen.SslFeaturizer")
    {
        _o = options;
        _modelPath = modelPath is null ? null : Path.GetFullPath(modelPath);
        _modelBytes = modelBytes;
        _modelSha256 = modelBytes is not null ? Convert.ToHexStringLower(SHA256.HashData(modelBytes)) : HashFile(_modelPath!);
        // No hash in the message: the file may not be an ONNX model at all, and its digest is nobody's business.
        if (expectedSha256 is not null && !string.Equals(expectedSha256, _modelSha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException(
                $"SslFeaturizer: the model file '{_modelPath}' does not match the hash recorded in the model (it has changed since the featurizer was saved). " +
                "Restore the original file, or re-create the featurizer and save it again.");
        ScoringBatchSize = options.ScoringBatchSize;
        _limits = options.Limits;
        _encoder = SslEncoder.Create(modelBytes, modelBytes is null ? _modelPath : null, options, Warn);
        try
        {
            var meta = _encoder.Metadata;
            ModelSampleRate = options.ModelSampleRate ?? MetaInt(meta, "sampling_rate") ?? 16000;
            Normalize = options.Normalize ?? MetaBool(meta, "do_normalize") ?? false;
            FrameStrideSamples = options.FrameStrideSamples ?? MetaInt(meta, "frame_stride_samples") ?? 320;
            ReceptiveFieldSamples = options.ReceptiveFieldSamples ?? MetaInt(meta, "receptive_field_samples") ?? 400;
            bool groupNorm = meta.TryGetValue("feat_extract_norm", out var norm) && norm.Trim().Equals("group", StringComparison.OrdinalIgnoreCase);
            if (options.BatchUtterances == true && _encoder.LengthsName is null)
                throw new ArgumentOutOfRangeException(nameof(SslFeaturizerOptions.BatchUtterances),
                    "SslFeaturizer (BatchUtterances): batching needs a model with a lengths input (int64 [batch], see LengthsTensorName); " +
                    "without it zero padding changes the features. Leave BatchUtterances null to batch only where it is exact.");
            BatchesUtterances = options.BatchUtterances ?? (_encoder.LengthsName is not null && !groupNorm && _encoder.MaxBatch > 1);
            _frontEnd = new AudioFrontEnd(ModelSampleRate, options.InputScale, Normalize, ReceptiveFieldSamples,
                (long)Math.Ceiling(Math.Min(options.MaxAudioSeconds * ModelSampleRate, Array.MaxLength)) + 1);
            _chunkFrames = options.ChunkSeconds <= 0 ? 0 : Math.Max(1, (int)Math.Round(options.ChunkSeconds * ModelSampleRate / FrameStrideSamples));
            _contextFrames = (int)Math.Round(options.ContextSeconds * ModelSampleRate / FrameStrideSamples);
            OutputSize = options.Pooling == SslPooling.MeanStd ? 2 * _encoder.HiddenSize : _encoder.HiddenSize;
            var added = new List<DataViewSchema.DetachedColumn>
            {
                new(options.OutputColumnName, options.Pooling == SslPooling.None
                    ? new VectorDataViewType(NumberDataViewType.Single)
                    : new VectorDataViewType(NumberDataViewType.Single, OutputSize)),
            };
            if (options.Pooling == SslPooling.None)
                added.Add(new(options.FrameCountColumnName, NumberDataViewType.Int32));
            AddedColumnsList = added;
        }
        catch
        {
            _encoder.Dispose();
            throw;
        }
    }

    /// <summary>The audio column.</summary>
    public string InputColumnName => _o.InputColumnName;

    /// <summary>The features column.</summary>
    public string OutputColumnName => _o.OutputColumnName;

    /// <summary>Pooling over frames.</summary>
    public SslPooling Pooling => _o.Pooling;

    /// <summary>Layer choice.</summary>
    public SslLayers Layers => _o.Layers;

    /// <summary>Hidden size H of the encoder output.</summary>
    public int HiddenSize => Encoder.HiddenSize;

    /// <summary>Layers in the encoder output read (L+1 for <c>hidden_states</c> of an L-layer wav2vec2; 1 for <c>last_hidden_state</c>).</summary>
    public int LayerCount => Encoder.LayerCount;

    /// <summary>Size of a pooled feature vector: H, or 2H for <see cref="SslPooling.MeanStd"/>.</summary>
    public int OutputSize { get; }

    /// <summary>The model's sample rate; other rates are resampled to it.</summary>
    public int ModelSampleRate { get; }

    /// <summary>Whether utterances are normalised (option, else the model's <c>do_normalize</c> metadata).</summary>
    public bool Normalize { get; }

    /// <summary>Samples per frame (the chunk grid).</summary>
    public int FrameStrideSamples { get; }

    /// <summary>Receptive field of a frame; shorter inputs are zero-padded to it.</summary>
    public int ReceptiveFieldSamples { get; }

    /// <summary>True when several utterances share an encoder call (lengths-aware layer-norm models).</summary>
    public bool BatchesUtterances { get; }

    /// <summary>"CPU" or "CUDA:n".</summary>
    public string ExecutionProvider => Encoder.ExecutionProvider;

    /// <summary>The encoder's ONNX metadata (<c>metadata_props</c>).</summary>
    public IReadOnlyDictionary<string, string> ModelMetadata => Encoder.Metadata;

    /// <summary>Whether <c>ml.Model.Save</c> embeds the ONNX bytes (else it stores the model path and checksum).</summary>
    public bool EmbedsModel => _o.EmbedModel || _modelPath is null;

    /// <summary>Receives progress after every scored batch of rows (not saved).</summary>
    public IProgress<SslFeaturizerProgress>? Progress { get; set; }

    /// <summary>Cancels featurization (not saved).</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Rows, audio seconds and time featurized so far by this transformer.</summary>
    public SslFeaturizerProgress Statistics
    {
        get
        {
            lock (_statsGate)
                return new SslFeaturizerProgress(_rows, _audioSeconds, TimeSpan.FromTicks(_elapsedTicks));
        }
    }

    internal SslFeaturizerOptions Settings => _o;

    private SslEncoder Encoder => _encoder ?? throw new ObjectDisposedException(nameof(SslFeaturizerTransformer));

    private IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumnsList { get; }

    internal override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => AddedColumnsList;

    internal override IReadOnlyList<string> InputColumnNames =>
        _o.SampleRateColumnName is { } r ? [_o.InputColumnName, r] : [_o.InputColumnName];

    string IAllauzenTransformer.ComponentName => "SslFeaturizer";

    string IAllauzenTransformer.LoaderSignature => Signature;

    int IAllauzenTransformer.PayloadVersion => Version;

    internal override void CheckInputSchema(DataViewSchema inputSchema) => AudioColumnReader.Check(inputSchema, _o);

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) =>
        new Scorer(this, AudioColumnReader.Check(inputSchema, _o), capacity);

    // ------------------------------------------------------------------ featurization

    /// <summary>Encodes prepared waveforms (model rate, normalised, padded) into frame matrices, chunking and batching as configured.</summary>
    internal FrameMatrix[] EncodeFrames(IReadOnlyList<float[]> waves, CancellationToken ct)
    {
        var encoder = Encoder;
        int stride = FrameStrideSamples, rf = ReceptiveFieldSamples;
        var plans = waves.Select(w => FramePlan.Windows(w.Length, stride, rf, _chunkFrames, _contextFrames)).ToArray();
        var items = new List<(int Row, int Window, float[] Samples)>();
        for (int r = 0; r < waves.Count; r++)
        {
            for (int k = 0; k < plans[r].Count; k++)
            {
                var win = plans[r][k];
                items.Add((r, k, plans[r].Count == 1 ? waves[r] : waves[r].AsSpan(win.Start, win.Length).ToArray()));
            }
        }
        var outputs = new FrameMatrix[items.Count];
        if (BatchesUtterances && items.Count > 1)
        {
            var order = Enumerable.Range(0, items.Count).OrderBy(i => items[i].Samples.Length).ToArray();
            int pos = 0;
            while (pos < order.Length)
            {
                int end = pos + 1;
                while (end < order.Length && end - pos < encoder.MaxBatch
                    && (long)(end - pos + 1) * items[order[end]].Samples.Length <= _o.MaxBatchSamples)
                    end++;
                ct.ThrowIfCancellationRequested();
                var batch = order[pos..end];
                var res = encoder.Run(batch.Select(i => items[i].Samples).ToArray(), batched: batch.Length > 1, stride, rf, ct);
                for (int j = 0; j < batch.Length; j++)
                    outputs[batch[j]] = res[j];
                pos = end;
            }
        }
        else
        {
            for (int i = 0; i < items.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                outputs[i] = encoder.Run([items[i].Samples], batched: false, stride, rf, ct)[0];
            }
        }

        // Stitch the chunks of each row on the frame grid.
        var result = new FrameMatrix[waves.Count];
        int h = encoder.HiddenSize;
        int next = 0;
        for (int r = 0; r < waves.Count; r++)
        {
            var plan = plans[r];
            if (plan.Count == 1)
            {
                result[r] = outputs[next++];
                continue;
            }
            int total = FramePlan.Frames(waves[r].Length, stride, rf);
            var data = new float[(long)total * h];
            foreach (var win in plan)
            {
                var m = outputs[next++];
                int expected = FramePlan.Frames(win.Length, stride, rf);
                if (m.Frames != expected)
                    throw new InvalidOperationException(
                        $"SslFeaturizer: a chunk of {win.Length} samples gave {m.Frames} frames, but the frame grid (stride {stride}, receptive field {rf}) " +
                        $"predicts {expected}. Set FrameStrideSamples and ReceptiveFieldSamples to the model's values, or ChunkSeconds = 0 to disable chunking.");
                Array.Copy(m.Data, (long)win.KeepFrom * h, data, (long)win.FirstFrame * h, (long)win.KeepCount * h);
            }
            result[r] = new FrameMatrix(data, total, h);
        }
        return result;
    }

    /// <summary>Pools a frame matrix into <paramref name="output"/> (length <see cref="OutputSize"/>).</summary>
    internal static void Pool(FrameMatrix m, SslPooling pooling, Span<float> output)
    {
        int h = m.Hidden, t = m.Frames;
        var x = m.Data;
        switch (pooling)
        {
            case SslPooling.Max:
                for (int j = 0; j < h; j++)
                {
                    float best = float.NegativeInfinity;
                    for (int f = 0; f < t; f++)
                        best = Math.Max(best, x[f * h + j]);
                    output[j] = best;
                }
                break;
            default:
                var mean = new double[h];
                for (int f = 0; f < t; f++)
                {
                    for (int j = 0; j < h; j++)
                        mean[j] += x[f * h + j];
                }
                for (int j = 0; j < h; j++)
                {
                    mean[j] /= t;
                    output[j] = (float)mean[j];
                }
                if (pooling == SslPooling.MeanStd)
                {
                    var ss = new double[h];
                    for (int f = 0; f < t; f++)
                    {
                        for (int j = 0; j < h; j++)
                        {
                            double d = x[f * h + j] - mean[j];
                            ss[j] += d * d;
                        }
                    }
                    for (int j = 0; j < h; j++)
                        output[h + j] = (float)Math.Sqrt(ss[j] / t);
                }
                break;
        }
    }

    private void Warn(string message)
    {
        using var ch = Host.Start("SslFeaturizer");
        ch.Warning(MessageSensitivity.None, "{0}", message);
    }

    private void WarnPadded(long row, string source, int valid)
    {
        int n = Interlocked.Increment(ref _paddingWarnings);
        if (n > MaxPaddingWarnings)
            return;
        Warn(string.Create(CultureInfo.InvariantCulture,
            $"SslFeaturizer: row {row} ({source}) has {valid} samples at {ModelSampleRate} Hz, fewer than the receptive field of {ReceptiveFieldSamples}; " +
            $"zero-padded to {ReceptiveFieldSamples} samples (1 frame).{(n == MaxPaddingWarnings ? " Further padding warnings are not shown." : "")}"));
    }

    private void Record(int rows, double seconds, long ticks)
    {
        SslFeaturizerProgress p;
        lock (_statsGate)
        {
            _rows += rows;
            _audioSeconds += seconds;
            _elapsedTicks += ticks;
            p = new SslFeaturizerProgress(_rows, _audioSeconds, TimeSpan.FromTicks(_elapsedTicks));
        }
        Progress?.Report(p);
    }

    // ------------------------------------------------------------------ persistence

    void IAllauzenTransformer.SavePayload(ModelPayloadWriter writer)
    {
        writer.WriteJson("options", _o);
        writer.WriteString("modelSha256", _modelSha256);
        if (EmbedsModel)
        {
            byte[] bytes = _modelBytes ?? File.ReadAllBytes(_modelPath!);
            if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != _modelSha256)
                throw new InvalidOperationException(
                    $"SslFeaturizer: the model file '{_modelPath}' has changed since the featurizer was created (it does not match the hash recorded then); re-create the featurizer.");
            writer.WriteBytes("model", bytes);
        }
        else
        {
            writer.WriteString("modelPath", _modelPath!);
        }
    }

    /// <summary>Rebuilds a featurizer from its payload (registered in <see cref="AllauzenLoaders"/>).</summary>
    internal static SslFeaturizerTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        var o = payload.ReadJson<SslFeaturizerOptions>("options");
        string sha = payload.ReadString("modelSha256");
        if (payload.Contains("model"))
            return new SslFeaturizerTransformer(env, o, payload.ReadBytes("model"), null, sha);
        string path = payload.ReadString("modelPath");
        if (!AppContext.TryGetSwitch(SslFeaturizerOptions.AllowReferencedModelFilesSwitch, out bool allowed) || !allowed)
        {
            throw new InvalidDataException(
                $"SslFeaturizer model '{payload.Source}' references the ONNX file '{path}' instead of embedding it (saved with EmbedModel = false). " +
                $"Reading a file named by a model file is off by default; if you trust this model, enable it with " +
                $"AppContext.SetSwitch(\"{SslFeaturizerOptions.AllowReferencedModelFilesSwitch}\", true) before loading, " +
                "or save the featurizer with EmbedModel = true.");
        }
        if (!Path.IsPathFullyQualified(path))
            throw new InvalidDataException($"SslFeaturizer model '{payload.Source}' references the ONNX file '{path}', which is not an absolute path.");
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new FileNotFoundException(
                $"SslFeaturizer model '{payload.Source}' references the ONNX file '{path}', which does not exist. Put the model there, " +
                "or save the featurizer with EmbedModel = true to make the model file self-contained.", path);
        return new SslFeaturizerTransformer(env, o, null, path, sha);
    }

    /// <summary>The SHA-256 of a model file, after checking that it is a regular file of at most <see cref="MaxModelFileBytes"/>
    /// (a device such as <c>/dev/zero</c> would be read forever, a FIFO would block).</summary>
    private static string HashFile(string path)
    {
        UnixFile.RequireRegularFile(path, MaxModelFileBytes, "SslFeaturizer: the ONNX model file");
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static int? MetaInt(IReadOnlyDictionary<string, string> meta, string key) =>
        meta.TryGetValue(key, out var v) && int.TryParse(v.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) && i > 0 ? i : null;

    private static bool? MetaBool(IReadOnlyDictionary<string, string> meta, string key) =>
        meta.TryGetValue(key, out var v) ? v.Trim().ToLowerInvariant() switch { "true" or "1" or "yes" => true, "false" or "0" or "no" => false, _ => null } : null;

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _encoder?.Dispose();
            _encoder = null;
        }
        base.Dispose(disposing);
    }

    // ------------------------------------------------------------------ scorer

    /// <summary>Reads a batch of audio (<see cref="AudioColumnReader"/>), encodes and pools it, and serves the added columns.</summary>
    private sealed class Scorer(SslFeaturizerTransformer t, AudioInputKind kind, int capacity) : BatchScorer(capacity)
    {
        private readonly AudioColumnReader _audio = new(t._o, t._limits, kind, capacity);
        private readonly float[][] _features = new float[capacity][];
        private readonly int[] _frames = new int[capacity];

        public override void Bind(DataViewRow input) => _audio.Bind(input);

        public override void Load(int slot) => _audio.Load(slot);

        public override void Score(int count)
        {
            var ct = t.CancellationToken;
            ct.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            var waves = new float[count][];
            double seconds = 0;
            for (int s = 0; s < count; s++)
            {
                var (samples, rate, source) = _audio.Decode(s);
                waves[s] = t._frontEnd.Prepare(samples, rate, out int valid);
                if (valid < t.ReceptiveFieldSamples)
                    t.WarnPadded(_audio.RowIndex(s), source, valid);
                seconds += (double)valid / t.ModelSampleRate;
            }
            var frames = t.EncodeFrames(waves, ct);
            for (int s = 0; s < count; s++)
            {
                var m = frames[s];
                _frames[s] = m.Frames;
                if (t._o.Pooling == SslPooling.None)
                {
                    _features[s] = m.Data;
                }
                else
                {
                    if (_features[s] is not { } f || f.Length != t.OutputSize)
                        _features[s] = new float[t.OutputSize];
                    Pool(m, t._o.Pooling, _features[s]);
                }
                _audio.Release(s);
            }
            t.Record(count, seconds, sw.Elapsed.Ticks);
        }

        public override Delegate GetGetter(int addedColumn, Func<int> slot)
        {
            if (addedColumn == 0)
            {
                return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
                {
                    var src = _features[slot()];
                    var editor = VBufferEditor.Create(ref dst, src.Length);
                    src.AsSpan().CopyTo(editor.Values);
                    dst = editor.Commit();
                });
            }
            return (ValueGetter<int>)((ref int dst) => dst = _frames[slot()]);
        }
    }
}
