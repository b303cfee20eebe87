namespace Allauzen.ML.Diachronic;

/// <summary>The trained per-slice vectors of any diachronic model.</summary>
/// <param name="Vectors">[slice] row-major V×K.</param>
/// <param name="Defined">[slice][word]: the word has a vector in that slice.</param>
/// <param name="WordsPerSecond">Skip-gram raw words/s over the whole fit (0 for the dynamic model).</param>
/// <param name="EffectiveWordsPerSecond">Skip-gram words/s after subsampling.</param>
internal sealed record DiachronicFit(float[][] Vectors, bool[][] Defined, double WordsPerSecond, double EffectiveWordsPerSecond);

/// <summary>Incremental (Kim et al. 2014) and independent + Procrustes-aligned (Hamilton et al. 2016) skip-gram.</summary>
internal static class SkipGramDiachronicTrainer
{
    public static DiachronicFit Fit(DiachronicCorpus corpus, DiachronicEmbeddingsOptions o, Action<SkipGramEngine, int, bool>? hook = null)
    {
        int v = corpus.VocabularySize, k = o.Dimensions, T = corpus.SliceCount;
        ulong seed = (ulong)o.Seed;
        var engine = new SkipGramEngine(v, k);
        var stats = default(SkipGramStats);
        var cancel = o.CancellationToken;
        SkipGramEngine? whole = null;
        if (o.Initialization == DiachronicInitialization.WholeCorpus)
        {
            engine.InitRows(0, v, seed);
            var (tok, ends) = corpus.Whole();
            stats += engine.Train(tok, ends, corpus.TotalCounts, o.InitEpochs, o.LearningRate, o.MinLearningRate, o.Window,
                o.Negatives, o.Subsampling, o.Threads, SkipGramEngine.Hash(seed, 0xA11, 0),
                (f, wps) => o.Progress?.Report(new DiachronicProgress("init", -1, f, wps, double.NaN)), cancel);
            if (o.Model == DiachronicModel.AlignedSkipGram)
            {
                whole = new SkipGramEngine(v, k);
                whole.CopyFrom(engine);
            }
        }
        var vectors = new float[T][];
        var defined = new bool[T][];
        var active = new bool[v];
        if (whole is not null || (o.Model == DiachronicModel.IncrementalSkipGram && o.Initialization == DiachronicInitialization.WholeCorpus))
            Array.Fill(active, true);
        for (int t = 0; t < T; t++)
        {
            cancel.ThrowIfCancellationRequested();
            bool independent = o.Model == DiachronicModel.AlignedSkipGram && o.Initialization != DiachronicInitialization.PreviousSlice;
            if (independent)
            {
                if (whole is not null)
                {
                    engine.CopyFrom(whole);
                }
                else
                {
                    engine.InitRows(0, v, SkipGramEngine.Hash(seed, 0x51, (ulong)t));
                    Array.Clear(active);
                }
            }
            for (int w = 0; w < v; w++)
            {
                if (!active[w] && corpus.SliceCounts[t][w] > 0)
                {
                    engine.InitRows(w, w + 1, seed);
                    active[w] = true;
                }
            }
            hook?.Invoke(engine, t, true);
            int slice = t;
            stats += engine.Train(corpus.Tokens[t], corpus.SentenceEnds[t], corpus.SliceCounts[t], o.Epochs, o.LearningRate,
                o.MinLearningRate, o.Window, o.Negatives, o.Subsampling, o.Threads, SkipGramEngine.Hash(seed, 0x5, (ulong)t),
                (f, wps) => o.Progress?.Report(new DiachronicProgress("slice", slice, f, wps, double.NaN)), cancel);
            vectors[t] = (float[])engine.Syn0.Clone();
            defined[t] = o.Model == DiachronicModel.AlignedSkipGram
                ? corpus.SliceCounts[t].Select(c => c > 0).ToArray()
                : (bool[])active.Clone();
            hook?.Invoke(engine, t, false);
        }
        if (o.Model == DiachronicModel.AlignedSkipGram)
            AlignChain(vectors, defined, corpus, k, o.AlignmentMinCount);
        return new DiachronicFit(vectors, defined, stats.RawWordsPerSecond, stats.EffectiveWordsPerSecond);
    }

    /// <summary>
    /// Chain alignment: rows L2-normalised (no mean-centring), slice t rotated onto aligned slice t−1 with the
    /// Procrustes rotation fitted on the words defined in both slices with at least <paramref name="minCount"/>
    /// occurrences in each (all shared words when fewer than K qualify).
    /// </summary>
    internal static void AlignChain(float[][] vectors, bool[][] defined, DiachronicCorpus corpus, int k, int minCount)
    {
        int v = corpus.VocabularySize;
        for (int t = 0; t < vectors.Length; t++)
            Procrustes.NormalizeRows(vectors[t], v, k);
        for (int t = 1; t < vectors.Length; t++)
        {
            var shared = Enumerable.Range(0, v).Where(w => defined[t][w] && defined[t - 1][w]
                && corpus.SliceCounts[t][w] >= minCount && corpus.SliceCounts[t - 1][w] >= minCount).ToArray();
            if (shared.Length < k)
                shared = Enumerable.Range(0, v).Where(w => defined[t][w] && defined[t - 1][w]).ToArray();
            if (shared.Length == 0)
                continue;
            var x = new double[shared.Length * k];
            var y = new double[shared.Length * k];
            for (int i = 0; i < shared.Length; i++)
            {
                for (int j = 0; j < k; j++)
                {
                    x[i * k + j] = vectors[t][shared[i] * k + j];
                    y[i * k + j] = vectors[t - 1][shared[i] * k + j];
                }
            }
            var q = Procrustes.Solve(x, y, shared.Length, k);
            vectors[t] = Procrustes.Apply(vectors[t], v, k, q);
        }
    }
}
