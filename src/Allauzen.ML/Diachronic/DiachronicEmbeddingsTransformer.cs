using System.Globalization;
using System.Text;
using Allauzen.ML.Core;
using Allauzen.ML.Persistence;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Diachronic.DiachronicEmbeddingsTransformer), Allauzen.ML.Diachronic.DiachronicEmbeddingsTransformer.Signature, "DiachronicEmbeddings")]

namespace Allauzen.ML.Diachronic;

/// <summary>
/// Trained diachronic embeddings: one vector per (word, slice). As a transformer it maps each row's
/// (tokens, time) to the mean of the tokens' vectors in the row's slice (<c>OutputColumnName</c>, and optionally
/// every token's vector); as a model object it answers drift rankings, per-slice neighbours, trajectories,
/// word2vec-format exports and drift plots. It is a lookup table, so it has no ONNX export
/// (<c>ExportToOnnx</c> fails with a clear error).
/// </summary>
/// <remarks>
/// Slices are numbered 0..<see cref="SliceCount"/>−1; slice s covers time values
/// [<see cref="SliceOrigin"/> + s·<see cref="SliceWidth"/>, <see cref="SliceOrigin"/> + (s+1)·<see cref="SliceWidth"/>).
/// A word has a vector in a slice when the model defines one: always for the dynamic Bernoulli model (the prior
/// interpolates slices where the word is absent), from the first slice where it occurs for the incremental model
/// (every slice with whole-corpus initialisation), and only in slices where it occurs for the aligned model.
/// </remarks>
public sealed class DiachronicEmbeddingsTransformer : AllauzenTransformerBase, IAllauzenTransformer
{
    internal const string Signature = "ALZ-DIAC";
    private const int Version = 1;
    private readonly string[] _words;
    private readonly Dictionary<string, int> _ids;
    private readonly long[][] _counts;
    private readonly float[][] _vectors;
    private readonly bool[][] _defined;
    private readonly float[][] _norms;
    private readonly DataViewSchema.DetachedColumn[] _added;
    private readonly PersistedSettings _settings;

    internal DiachronicEmbeddingsTransformer(IHostEnvironment env, DiachronicEmbeddingsOptions o, string[] words, long[][] counts,
        DiachronicFit fit, long origin, int width)
        : this(env, new PersistedSettings(o.Model, o.TokensColumnName, o.TimeColumnName, o.OutputColumnName, o.TokenEmbeddingsColumnName,
            o.Dimensions, origin, width, o.Granularity, fit.WordsPerSecond, fit.EffectiveWordsPerSecond, o.MinCount),
            words, counts, fit.Vectors, fit.Defined)
    {
    }

    private DiachronicEmbeddingsTransformer(IHostEnvironment env, PersistedSettings s, string[] words, long[][] counts, float[][] vectors, bool[][] defined)
        : base(env, "Allauzen.DiachronicEmbeddings")
    {
        _settings = s;
        _words = words;
        _counts = counts;
        _vectors = vectors;
        _defined = defined;
        _ids = new Dictionary<string, int>(words.Length, StringComparer.Ordinal);
        for (int i = 0; i < words.Length; i++)
            _ids[words[i]] = i;
        int k = s.Dimensions;
        _norms = new float[vectors.Length][];
        for (int t = 0; t < vectors.Length; t++)
        {
            _norms[t] = new float[words.Length];
            for (int w = 0; w < words.Length; w++)
            {
                double n = 0;
                foreach (float x in vectors[t].AsSpan(w * k, k))
                    n += (double)x * x;
                _norms[t][w] = (float)Math.Sqrt(n);
            }
        }
        var added = new List<DataViewSchema.DetachedColumn>
        {
            new(s.OutputColumn, new VectorDataViewType(NumberDataViewType.Single, k)),
        };
        if (s.TokenEmbeddingsColumn is { } tc)
            added.Add(new(tc, new VectorDataViewType(NumberDataViewType.Single)));
        _added = added.ToArray();
    }

    internal sealed record PersistedSettings(DiachronicModel Model, string TokensColumn, string TimeColumn, string OutputColumn,
        string? TokenEmbeddingsColumn, int Dimensions, long Origin, int Width, TimeGranularity Granularity,
        double WordsPerSecond, double EffectiveWordsPerSecond, int MinCount);

    /// <summary>The model that produced the vectors.</summary>
    public DiachronicModel Model => _settings.Model;

    /// <summary>Embedding size K.</summary>
    public int Dimensions => _settings.Dimensions;

    /// <summary>Number of slices T.</summary>
    public int SliceCount => _vectors.Length;

    /// <summary>Time value where slice 0 starts.</summary>
    public long SliceOrigin => _settings.Origin;

    /// <summary>Width of a slice in time units.</summary>
    public int SliceWidth => _settings.Width;

    /// <summary>The vocabulary, in id order (stable: words of earlier slices first).</summary>
    public IReadOnlyList<string> Vocabulary => _words;

    /// <summary>Skip-gram training speed (raw corpus words × epochs per second, all phases); 0 for the dynamic model.</summary>
    public double WordsPerSecond => _settings.WordsPerSecond;

    /// <summary>Skip-gram words per second after subsampling; 0 for the dynamic model.</summary>
    public double EffectiveWordsPerSecond => _settings.EffectiveWordsPerSecond;

    /// <summary>The slice of a time value, or null when it lies outside the trained range.</summary>
    public int? GetSlice(long time)
    {
        if (time < SliceOrigin)
            return null;
        ulong s = unchecked((ulong)time - (ulong)SliceOrigin) / (ulong)SliceWidth; // exact even when time − origin overflows a long
        return s < (ulong)SliceCount ? (int)s : null;
    }

    /// <summary>The first time value of a slice.</summary>
    public long GetSliceStart(int slice) => SliceOrigin + (long)slice * SliceWidth;

    /// <summary>Occurrences of <paramref name="word"/> in <paramref name="slice"/> in the training data (0 for an unknown word or slice).</summary>
    public long GetCount(string word, int slice) =>
        word is not null && _ids.TryGetValue(word, out int id) && slice >= 0 && slice < SliceCount ? _counts[slice][id] : 0;

    /// <summary>
    /// The vector of <paramref name="word"/> in <paramref name="slice"/> (a copy), or <b>null</b> when the word is not in
    /// the vocabulary, the slice is not in 0..<see cref="SliceCount"/>−1, or the model has no vector for the word in that slice.
    /// </summary>
    public float[]? GetVector(string word, int slice)
    {
        if (word is null || slice < 0 || slice >= SliceCount || !_ids.TryGetValue(word, out int id) || !_defined[slice][id])
            return null;
        return _vectors[slice].AsSpan(id * Dimensions, Dimensions).ToArray();
    }

    /// <summary>
    /// The drift measure of <see cref="GetDriftRanking(int, int, int)"/>: <see cref="DriftMeasure.ScaledSquaredEuclidean"/> for
    /// <see cref="DiachronicModel.DynamicBernoulli"/> (Rudolph &amp; Blei's <c>detect_drift</c>, the squared Euclidean
    /// distance — the ρ_t share the context vectors α, so their coordinates are comparable — divided by the fourth root of
    /// the word's evidence in the two slices, since Adam's noise moves frequent words further), and
    /// <see cref="DriftMeasure.Cosine"/> for the skip-gram models (Kim, Hamilton).
    /// </summary>
    public DriftMeasure DefaultDriftMeasure => Model == DiachronicModel.DynamicBernoulli ? DriftMeasure.ScaledSquaredEuclidean : DriftMeasure.Cosine;

    /// <summary>
    /// Words ranked by decreasing drift under <see cref="DefaultDriftMeasure"/> between <paramref name="fromSlice"/> and
    /// <paramref name="toSlice"/>, restricted to words with at least <paramref name="minCount"/> occurrences in every slice
    /// from <paramref name="fromSlice"/> to <paramref name="toSlice"/> and a vector in both.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A slice is outside 0..<see cref="SliceCount"/>−1.</exception>
    public IReadOnlyList<(string Word, double Drift)> GetDriftRanking(int fromSlice, int toSlice, int minCount) =>
        GetDriftRanking(fromSlice, toSlice, minCount, DefaultDriftMeasure);

    /// <summary>As <see cref="GetDriftRanking(int, int, int)"/> with a chosen <see cref="DriftMeasure"/>.</summary>
    public IReadOnlyList<(string Word, double Drift)> GetDriftRanking(int fromSlice, int toSlice, int minCount, DriftMeasure measure)
    {
        CheckSlice(fromSlice, nameof(fromSlice));
        CheckSlice(toSlice, nameof(toSlice));
        int lo = Math.Min(fromSlice, toSlice), hi = Math.Max(fromSlice, toSlice);
        var result = new List<(string, double)>();
        for (int w = 0; w < _words.Length; w++)
        {
            bool ok = true;
            for (int t = lo; t <= hi && ok; t++)
                ok = _counts[t][w] >= minCount && (t != fromSlice && t != toSlice || _defined[t][w]);
            if (!ok)
                continue;
            double d = measure switch
            {
                DriftMeasure.SquaredEuclidean => SquaredDistance(w, fromSlice, toSlice),
                DriftMeasure.ScaledSquaredEuclidean => SquaredDistance(w, fromSlice, toSlice) / Math.Pow(Evidence(w, fromSlice, toSlice), 0.25),
                DriftMeasure.CosinePath => PathDistance(w, lo, hi),
                _ => 1 - Cosine(w, fromSlice, w, toSlice),
            };
            if (!double.IsNaN(d))
                result.Add((_words[w], d));
        }
        return result.OrderByDescending(x => x.Item2).ThenBy(x => x.Item1, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The <paramref name="count"/> nearest words of <paramref name="word"/> within <paramref name="slice"/> by cosine
    /// similarity (candidates: words with a vector in that slice and at least <paramref name="minCount"/> occurrences in it).
    /// Empty when the word has no vector there (unknown word or slice included).
    /// </summary>
    public IReadOnlyList<(string Word, double Similarity)> GetNearestNeighbors(string word, int slice, int count = 10, int minCount = 1)
    {
        if (word is null || slice < 0 || slice >= SliceCount || !_ids.TryGetValue(word, out int id) || !_defined[slice][id] || count <= 0)
            return [];
        var result = new List<(string, double)>();
        for (int w = 0; w < _words.Length; w++)
        {
            if (w == id || !_defined[slice][w] || _counts[slice][w] < minCount)
                continue;
            result.Add((_words[w], Cosine(id, slice, w, slice)));
        }
        return result.Where(x => !double.IsNaN(x.Item2)).OrderByDescending(x => x.Item2).ThenBy(x => x.Item1, StringComparer.Ordinal).Take(count).ToList();
    }

    /// <summary>
    /// The trajectory of <paramref name="word"/>: for every slice, the cosine distance of its vector to its vector in
    /// <paramref name="referenceSlice"/> (NaN where it has no vector). Empty for an unknown word.
    /// </summary>
    public double[] GetTrajectory(string word, int referenceSlice = 0)
    {
        CheckSlice(referenceSlice, nameof(referenceSlice));
        if (word is null || !_ids.TryGetValue(word, out int id))
            return [];
        var r = new double[SliceCount];
        for (int t = 0; t < SliceCount; t++)
            r[t] = _defined[t][id] && _defined[referenceSlice][id] ? 1 - Cosine(id, referenceSlice, id, t) : double.NaN;
        return r;
    }

    /// <summary>
    /// Writes the vectors of <paramref name="slice"/> in word2vec text format (header "count K", then "word v1 … vK"),
    /// the words that have a vector there and at least <paramref name="minCount"/> occurrences in it, most frequent first.
    /// Loadable by gensim's <c>KeyedVectors.load_word2vec_format(path)</c>. The file is written atomically.
    /// </summary>
    public void ExportWord2Vec(int slice, string path, int minCount = 1)
    {
        CheckSlice(slice, nameof(slice));
        ArgumentException.ThrowIfNullOrEmpty(path);
        int k = Dimensions;
        var ids = Enumerable.Range(0, _words.Length).Where(w => _defined[slice][w] && _counts[slice][w] >= minCount)
            .OrderByDescending(w => _counts[slice][w]).ThenBy(w => w).ToArray();
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
            writer.Write(ids.Length.ToString(CultureInfo.InvariantCulture));
            writer.Write(' ');
            writer.Write(k.ToString(CultureInfo.InvariantCulture));
            writer.Write('\n');
            foreach (int w in ids)
            {
                writer.Write(_words[w]);
                var row = _vectors[slice].AsSpan(w * k, k);
                foreach (float x in row)
                {
                    writer.Write(' ');
                    writer.Write(x.ToString("R", CultureInfo.InvariantCulture));
                }
                writer.Write('\n');
            }
        });
    }

    private void CheckSlice(int slice, string name)
    {
        if (slice < 0 || slice >= SliceCount)
            throw new ArgumentOutOfRangeException(name, slice, $"Slice {slice} does not exist: the model has slices 0..{SliceCount - 1}.");
    }

    private double Cosine(int a, int ta, int b, int tb)
    {
        int k = Dimensions;
        float na = _norms[ta][a], nb = _norms[tb][b];
        if (na == 0 || nb == 0)
            return double.NaN;
        var x = _vectors[ta].AsSpan(a * k, k);
        var y = _vectors[tb].AsSpan(b * k, k);
        double dot = 0;
        for (int i = 0; i < k; i++)
            dot += (double)x[i] * y[i];
        return dot / ((double)na * nb);
    }

    private double SquaredDistance(int w, int ta, int tb)
    {
        int k = Dimensions;
        var x = _vectors[ta].AsSpan(w * k, k);
        var y = _vectors[tb].AsSpan(w * k, k);
        double s = 0;
        for (int i = 0; i < k; i++)
            s += (double)(x[i] - y[i]) * (x[i] - y[i]);
        return s;
    }

    /// <summary>H = n_a·n_b / (n_a + n_b), at least 1: half the harmonic mean of the word's counts in slices a and b.</summary>
    private double Evidence(int w, int ta, int tb)
    {
        double na = _counts[ta][w], nb = _counts[tb][w];
        return na + nb > 0 ? Math.Max(1, na * nb / (na + nb)) : 1;
    }

    private double PathDistance(int w, int lo, int hi)
    {
        double s = 0;
        int prev = -1;
        for (int t = lo; t <= hi; t++)
        {
            if (!_defined[t][w])
                continue;
            if (prev >= 0)
                s += 1 - Cosine(w, prev, w, t);
            prev = t;
        }
        return s;
    }

    // ---- IDataView plumbing ----

    internal override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

    internal override IReadOnlyList<string> InputColumnNames => [_settings.TokensColumn, _settings.TimeColumn];

    internal override void CheckInputSchema(DataViewSchema inputSchema)
    {
        DiachronicInput.CheckTokens(inputSchema, _settings.TokensColumn);
        DiachronicInput.CheckTime(inputSchema, _settings.TimeColumn);
    }

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) => new Scorer(this, inputSchema, capacity);

    private sealed class Scorer(DiachronicEmbeddingsTransformer parent, DataViewSchema schema, int capacity) : BatchScorer(capacity)
    {
        private readonly List<string>[] _tokens = Enumerable.Range(0, capacity).Select(_ => new List<string>()).ToArray();
        private readonly long[] _times = new long[capacity];
        private readonly float[][] _mean = Enumerable.Range(0, capacity).Select(_ => new float[parent.Dimensions]).ToArray();
        private readonly float[][] _perToken = new float[capacity][];
        private Action<List<string>>? _getTokens;
        private Func<long>? _getTime;

        public override void Bind(DataViewRow input)
        {
            _getTokens = DiachronicInput.TokensGetter(input, schema[parent._settings.TokensColumn]);
            _getTime = DiachronicInput.TimeGetter(input, schema[parent._settings.TimeColumn], parent._settings.Granularity);
        }

        public override void Load(int slot)
        {
            _getTokens!(_tokens[slot]);
            _times[slot] = _getTime!();
        }

        public override void Score(int count)
        {
            int k = parent.Dimensions;
            bool perToken = parent._settings.TokenEmbeddingsColumn is not null;
            for (int r = 0; r < count; r++)
            {
                var mean = _mean[r];
                Array.Clear(mean);
                var toks = _tokens[r];
                float[]? pt = perToken ? new float[toks.Count * k] : null;
                int? slice = parent.GetSlice(_times[r]);
                int n = 0;
                if (slice is int s)
                {
                    var vec = parent._vectors[s];
                    for (int i = 0; i < toks.Count; i++)
                    {
                        if (!parent._ids.TryGetValue(toks[i], out int id) || !parent._defined[s][id])
                            continue;
                        var row = vec.AsSpan(id * k, k);
                        for (int j = 0; j < k; j++)
                            mean[j] += row[j];
                        if (pt is not null)
                            row.CopyTo(pt.AsSpan(i * k, k));
                        n++;
                    }
                }
                if (n > 1)
                {
                    for (int j = 0; j < k; j++)
                        mean[j] /= n;
                }
                _perToken[r] = pt ?? [];
            }
        }

        public override Delegate GetGetter(int addedColumn, Func<int> slot)
        {
            if (addedColumn == 0)
            {
                return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
                {
                    var src = _mean[slot()];
                    var editor = VBufferEditor.Create(ref dst, src.Length);
                    src.CopyTo(editor.Values);
                    dst = editor.Commit();
                });
            }
            return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
            {
                var src = _perToken[slot()];
                var editor = VBufferEditor.Create(ref dst, src.Length);
                src.CopyTo(editor.Values);
                dst = editor.Commit();
            });
        }
    }

    // ---- persistence ----

    string IAllauzenTransformer.ComponentName => "DiachronicEmbeddings";

    string IAllauzenTransformer.LoaderSignature => Signature;

    int IAllauzenTransformer.PayloadVersion => Version;

    void IAllauzenTransformer.SavePayload(ModelPayloadWriter writer)
    {
        int T = SliceCount, v = _words.Length, k = Dimensions;
        writer.WriteJson("settings", _settings);
        writer.WriteStrings("words", _words);
        var counts = new long[(long)T * v];
        var defined = new byte[(long)T * v];
        var vectors = new float[(long)T * v * k];
        for (int t = 0; t < T; t++)
        {
            _counts[t].CopyTo(counts, (long)t * v);
            for (int w = 0; w < v; w++)
                defined[(long)t * v + w] = _defined[t][w] ? (byte)1 : (byte)0;
            _vectors[t].CopyTo(vectors, (long)t * v * k);
        }
        writer.WriteInt64s("counts", counts);
        writer.WriteBytes("defined", defined);
        writer.WriteTensor("vectors", vectors, [T, v, k]);
    }

    /// <summary>
    /// Rebuilds a transformer from its payload (registered in <see cref="AllauzenLoaders"/>). The settings are checked with
    /// <see cref="DiachronicEmbeddingsOptions"/>' rules, and the slice count, vocabulary and dimensions against the stored
    /// tensors (T × V × K values, T × V counts and flags, all in the file) before anything is sized by them.
    /// </summary>
    internal static DiachronicEmbeddingsTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        var s = payload.ReadJson<PersistedSettings>("settings");
        payload.ValidateSettings("settings", () => new DiachronicEmbeddingsOptions
        {
            Model = s.Model, TokensColumnName = s.TokensColumn, TimeColumnName = s.TimeColumn, OutputColumnName = s.OutputColumn,
            TokenEmbeddingsColumnName = s.TokenEmbeddingsColumn, Dimensions = s.Dimensions, SliceWidth = s.Width,
            Granularity = s.Granularity, MinCount = s.MinCount,
        }.Validate());
        payload.Require(s.TokenEmbeddingsColumn is null || s.TokenEmbeddingsColumn.Length > 0, "settings", nameof(s.TokenEmbeddingsColumn), "is empty");
        payload.Require(double.IsFinite(s.WordsPerSecond) && s.WordsPerSecond >= 0 && double.IsFinite(s.EffectiveWordsPerSecond) && s.EffectiveWordsPerSecond >= 0,
            "settings", nameof(s.WordsPerSecond), "must be finite and non-negative");

        var shape = payload.TensorShape("vectors");
        payload.Require(shape.Length == 3 && shape[0] >= 1 && shape[1] >= 1 && shape[2] == s.Dimensions, "vectors", "the shape",
            $"[{string.Join(", ", shape)}] is not [slices ≥ 1, words ≥ 1, K = {s.Dimensions}]");
        // Every slice holds V × K stored values, so T and V are bounded by the file's size.
        int T = (int)shape[0], v = (int)shape[1], k = s.Dimensions;
        payload.Require(s.Origin <= long.MaxValue - (long)T * s.Width, "settings", nameof(s.Origin), $"{s.Origin} + {T} slices of {s.Width} overflows");
        var words = payload.ReadStrings("words");
        payload.Require(words.Length == v, "words", "the vocabulary size", $"is {words.Length} but the vectors have {v} words");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var word in words)
            payload.Require(seen.Add(word), "words", "the vocabulary", $"holds '{word}' twice");
        var counts = payload.ReadInt64s("counts");
        payload.Require(counts.LongLength == (long)T * v && counts.All(n => n >= 0), "counts", "the counts",
            $"must be {T} × {v} non-negative values (found {counts.Length})");
        var defined = payload.ReadBytes("defined");
        payload.Require(defined.LongLength == (long)T * v && defined.All(b => b <= 1), "defined", "the flags",
            $"must be {T} × {v} values 0 or 1 (found {defined.Length})");
        var vectors = payload.ReadTensor("vectors", shape);

        var c = new long[T][];
        var d = new bool[T][];
        var vec = new float[T][];
        for (int t = 0; t < T; t++)
        {
            c[t] = counts.AsSpan(t * v, v).ToArray();
            d[t] = defined.AsSpan(t * v, v).ToArray().Select(b => b != 0).ToArray();
            vec[t] = vectors.AsSpan(t * v * k, v * k).ToArray();
        }
        return new DiachronicEmbeddingsTransformer(env, s, words, c, vec, d);
    }
}
