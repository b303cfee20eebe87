using Allauzen.ML.Core;

namespace Allauzen.ML.Diachronic;

/// <summary>
/// Trains diachronic word embeddings over a dated corpus: one row per sentence or document with a token column
/// and an integer (or DateTime) time column, in any row order. <see cref="Fit"/> makes two passes over the data — the
/// time range, then the vocabulary (counts per slice, the union over slices with stable ids) with every sentence
/// bucketed by slice (in memory up to <see cref="DiachronicEmbeddingsOptions.MaxInMemoryBytes"/>, in a temporary file
/// beyond) — and trains
/// the chosen <see cref="DiachronicModel"/>. Create it with <c>ml.Transforms.Text.DiachronicEmbeddings(options)</c>.
/// </summary>
public sealed class DiachronicEmbeddingsEstimator : IEstimator<DiachronicEmbeddingsTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly DiachronicEmbeddingsOptions _options;

    internal DiachronicEmbeddingsEstimator(IHostEnvironment env, DiachronicEmbeddingsOptions options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _env = env;
        _options = options.Clone();
    }

    /// <summary>The options (a copy taken at construction).</summary>
    public DiachronicEmbeddingsOptions Options => _options;

    /// <summary>The input schema plus <c>OutputColumnName</c> (Vector&lt;Single, K&gt;) and the optional token-vectors column.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        DiachronicInput.CheckTokens(inputSchema, _options.TokensColumnName);
        DiachronicInput.CheckTime(inputSchema, _options.TimeColumnName);
        if (_options.OrderColumnName is { } order)
            DiachronicInput.CheckTime(inputSchema, order, "order");
        var added = new List<SchemaShape.Column>
        {
            SchemaShapes.Column(_options.OutputColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false),
        };
        if (_options.TokenEmbeddingsColumnName is { } tc)
            added.Add(SchemaShapes.Column(tc, SchemaShape.Column.VectorKind.VariableVector, NumberDataViewType.Single, false));
        return SchemaShapes.With(inputSchema, added);
    }

    /// <summary>Reads the corpus (two passes), checks memory, trains, and returns the fitted transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type (the message names it).</exception>
    /// <exception cref="InvalidDataException">A time before <c>SliceOrigin</c>, empty slices, or no data.</exception>
    /// <exception cref="InsufficientMemoryException">The configuration needs more memory than allowed (the message gives the bytes).</exception>
    public DiachronicEmbeddingsTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var o = _options;
        var corpus = ReadCorpus(input, o);
        CheckMemory(corpus.VocabularySize, o.Dimensions, corpus.SliceCount, o);
        var fit = Train(corpus, o);
        return new DiachronicEmbeddingsTransformer(_env, o, corpus.Words, corpus.SliceCounts, fit, corpus.Origin, corpus.Width);
    }

    internal static DiachronicFit Train(DiachronicCorpus corpus, DiachronicEmbeddingsOptions o) => o.Model == DiachronicModel.DynamicBernoulli
        ? DynamicBernoulliEngine.Fit(corpus, o)
        : SkipGramDiachronicTrainer.Fit(corpus, o);

    /// <summary>Bytes of model state the configuration needs during training.</summary>
    public static long RequiredBytes(DiachronicModel model, long vocabularySize, int dimensions, int slices) => model switch
    {
        DiachronicModel.DynamicBernoulli => DynamicBernoulliEngine.StateBytes(vocabularySize, dimensions, slices) + 4L * vocabularySize * dimensions * slices,
        DiachronicModel.AlignedSkipGram => 4L * vocabularySize * dimensions * (4 + 2L * slices),
        _ => 4L * vocabularySize * dimensions * (2 + 2L * slices),
    };

    internal static void CheckMemory(int v, int k, int slices, DiachronicEmbeddingsOptions o)
    {
        long need = RequiredBytes(o.Model, v, k, slices);
        long limit = o.MemoryLimitBytes > 0 ? o.MemoryLimitBytes : (long)(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes * 0.8);
        if (need > limit)
        {
            throw new InsufficientMemoryException(
                $"DiachronicEmbeddings ({o.Model}): T = {slices} slices × V = {v} words × K = {k} dimensions needs {need:N0} bytes of model state " +
                $"(float32 parameters{(o.Model == DiachronicModel.DynamicBernoulli ? ", gradients and Adam moments" : " and per-slice snapshots")}), " +
                $"but the limit is {limit:N0} bytes. Reduce Dimensions, raise MinCount or set MaxVocabularySize, use wider slices, or raise MemoryLimitBytes.");
        }
    }

    /// <summary>
    /// Pass 0 reads the time column (range, slice origin); pass 1 counts the vocabulary and buckets every sentence by
    /// slice, so the rows may come in any order and the streams do not depend on it.
    /// </summary>
    internal static DiachronicCorpus ReadCorpus(IDataView input, DiachronicEmbeddingsOptions o)
    {
        var schema = input.Schema;
        DiachronicInput.CheckTokens(schema, o.TokensColumnName);
        DiachronicInput.CheckTime(schema, o.TimeColumnName);
        if (o.OrderColumnName is { } orderName)
            DiachronicInput.CheckTime(schema, orderName, "order");
        var tokCol = schema[o.TokensColumnName];
        var timeCol = schema[o.TimeColumnName];
        DataViewSchema.Column? orderCol = o.OrderColumnName is null ? null : schema[o.OrderColumnName];

        long min = long.MaxValue, max = long.MinValue;
        long rows = 0;
        using (var cursor = input.GetRowCursor([timeCol]))
        {
            var time = DiachronicInput.TimeGetter(cursor, timeCol, o.Granularity);
            while (cursor.MoveNext())
            {
                long t = time();
                min = Math.Min(min, t);
                max = Math.Max(max, t);
                rows++;
            }
        }
        if (rows == 0)
            throw new InvalidDataException($"DiachronicEmbeddings: the training data has no rows (time column '{o.TimeColumnName}').");
        long origin = o.SliceOrigin ?? min;
        if (min < origin)
            throw new InvalidDataException($"Time column '{o.TimeColumnName}' has value {min}, before SliceOrigin = {origin}.");
        long sliceCount = (max - origin) / o.SliceWidth + 1;
        if (sliceCount > 100_000)
            throw new InvalidDataException($"Time column '{o.TimeColumnName}' spans {min}..{max}: {sliceCount} slices of width {o.SliceWidth}; use a larger SliceWidth.");
        int T = (int)sliceCount;

        // pass 1: vocabulary, and every sentence bucketed by slice (rows in any order; spilled to disk beyond MaxInMemoryBytes)
        o.Progress?.Report(new DiachronicProgress("vocabulary", -1, 0, 0, double.NaN));
        using var builder = new DiachronicCorpusBuilder(T, o.Seed, o.MaxInMemoryBytes);
        var list = new List<ReadOnlyMemory<char>>();
        using (var cursor = input.GetRowCursor(orderCol is { } oc ? [tokCol, timeCol, oc] : [tokCol, timeCol]))
        {
            var tokens = DiachronicInput.TokenSpansGetter(cursor, tokCol);
            var time = DiachronicInput.TimeGetter(cursor, timeCol, o.Granularity);
            var order = DiachronicInput.OrderGetter(cursor, orderCol);
            while (cursor.MoveNext())
            {
                o.CancellationToken.ThrowIfCancellationRequested();
                long t = time();
                if (t < min || t > max)
                    throw new InvalidDataException($"Time column '{o.TimeColumnName}' changed between two passes over the data (value {t} outside {min}..{max}); the IDataView must give the same rows on every cursor.");
                tokens(list);
                builder.Add((int)((t - origin) / o.SliceWidth), t, order(), list);
            }
        }
        o.Progress?.Report(new DiachronicProgress("corpus", -1, 0, 0, double.NaN));
        var corpus = builder.Build(origin, o.SliceWidth, o.MinCount, o.MaxVocabularySize, o.CancellationToken);
        if (corpus.VocabularySize == 0)
            throw new InvalidDataException($"DiachronicEmbeddings: no word of column '{o.TokensColumnName}' occurs at least MinCount = {o.MinCount} times.");
        var empty = Enumerable.Range(0, T).Where(t => corpus.Tokens[t].Length == 0).ToArray();
        if (empty.Length > 0 && !o.AllowEmptySlices)
        {
            string list2 = string.Join(", ", empty.Take(10).Select(t =>
                $"slice {t} (time {origin + (long)t * o.SliceWidth}..{origin + (long)(t + 1) * o.SliceWidth - 1})"));
            throw new InvalidDataException(
                $"Time column '{o.TimeColumnName}': {empty.Length} empty slice(s) without any in-vocabulary token: {list2}{(empty.Length > 10 ? ", ..." : "")}. " +
                "Use a larger SliceWidth, lower MinCount, or set AllowEmptySlices = true.");
        }
        return corpus;
    }
}
