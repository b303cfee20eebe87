using System.Diagnostics;
using Allauzen.ML.Torch;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Smoothing;

/// <summary>The sufficient statistics of one row: vote counts of both samples and the simplex-map moments.</summary>
internal sealed class RowStatistics(int classes, int maps)
{
    public ulong Seed;
    public readonly long[] Selection = new long[classes];
    public readonly long[] Estimation = new long[classes];
    public readonly double[] MapMean = new double[maps * classes];
    public readonly double[] MapM2 = new double[maps * classes];
    public long MapCount;

    public void Reset(ulong seed)
    {
        Seed = seed;
        Array.Clear(Selection);
        Array.Clear(Estimation);
        Array.Clear(MapMean);
        Array.Clear(MapM2);
        MapCount = 0;
    }

    public SimplexMapStatistics[] MapStatistics(IReadOnlyList<SimplexMap> maps)
    {
        int k = Selection.Length;
        var result = new SimplexMapStatistics[maps.Count];
        for (int m = 0; m < maps.Count; m++)
        {
            var sums = new double[k];
            var squares = new double[k];
            for (int c = 0; c < k; c++)
            {
                sums[c] = MapMean[m * k + c] * MapCount;
                squares[c] = MapM2[m * k + c];
            }
            result[m] = new SimplexMapStatistics(maps[m], MapCount, sums, squares);
        }
        return result;
    }
}

/// <summary>
/// SAMPLE of Cohen et al., batched: for each row, n0 selection and n estimation noisy copies x + σ·ε are
/// pushed through the base model in forward passes of at most BatchSize samples (chunks of several rows are
/// packed together when n is small), votes are counted in int64 and simplex-map moments are merged with
/// Welford's update in float64. Memory is O(BatchSize·(d + K)) whatever n is.
/// </summary>
/// <remarks>
/// Noise is reproducible and independent of batching: a row's seed is derived from (Seed, row key) or, without a
/// key column, (Seed, row id), and each
/// chunk of BatchSize samples of each phase (0 = selection, 1 = estimation) gets its own generator seeded
/// from (row seed, phase, chunk index). Selection and estimation noise are therefore independent.
/// </remarks>
internal sealed class SmoothingSampler(SmoothingBaseModel model, double sigma, int selectionSamples, int estimationSamples,
    int batchSize, IReadOnlyList<SimplexMap> maps)
{
    private long _rowsDone;
    private long _samplesDone;
    private readonly Stopwatch _clock = new();

    public SmoothingBaseModel Model => model;

    public IReadOnlyList<SimplexMap> Maps => maps;

    /// <summary>The seed of a row, from the options' seed and the row id (position-dependent: no RowKeyColumnName).</summary>
    public static ulong RowSeed(int seed, DataViewRowId id) =>
        SplitMix64.Mix(SplitMix64.Mix((ulong)(uint)seed ^ 0x5DEECE66DUL) ^ SplitMix64.Mix(id.Low) ^ (SplitMix64.Mix(id.High) * 31));

    /// <summary>
    /// The seed of a row from the options' seed and the stable hash of its key (<see cref="RandomizedSmoothingOptions.RowKeyColumnName"/>):
    /// a function of (seed, key) only, so a row gets the same noise in any shard, order or process.
    /// </summary>
    public static ulong RowSeed(int seed, ulong keyHash) =>
        SplitMix64.Mix(SplitMix64.Mix((ulong)(uint)seed ^ 0x5DEECE66DUL) ^ SplitMix64.Mix(keyHash ^ 0x526F774B6579UL));

    private static ulong ChunkSeed(ulong rowSeed, int phase, long chunk) => SplitMix64.Mix(rowSeed ^ SplitMix64.Mix((ulong)(phase + 1) * 0x9E3779B97F4A7C15UL + (ulong)chunk));

    private readonly record struct Piece(int Row, int Phase, long Chunk, int Length);

    /// <summary>
    /// Whether the exact first-layer shortcut (<see cref="FirstLayerNoise"/>) may be used for Allauzen networks
    /// that allow it (default true; tests turn it off to compare with the direct path).
    /// </summary>
    internal bool UseFirstLayerShortcut { get; set; } = true;

    /// <summary>Samples <paramref name="rows"/> rows of <paramref name="features"/> (rows × d) into <paramref name="stats"/>.</summary>
    public void Sample(float[] features, int rows, RowStatistics[] stats, IProgress<SmoothingProgress>? progress, CancellationToken token)
    {
        TorchRuntime.EnsureInitialized();
        int d = model.FeatureCount, k = model.ClassCount;
        var device = model.Device;
        var shortcut = UseFirstLayerShortcut && model is TorchBaseModel tm ? tm.FirstLayer : null;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var inputs = torch.tensor(features, [features.Length / d, d]).narrow(0, 0, rows).to(device);
        // Direct path: noise of dimension d added to the input. Shortcut: noise of dimension h mixed by Lᵀ and
        // added to the noiseless first-layer output (see FirstLayerNoise).
        var centres = shortcut is null ? inputs : shortcut.Project(inputs);
        int width = shortcut?.Width ?? d;
        // A forward pass never needs more rows than the longer phase has samples (one chunk per phase then, as before):
        // a BatchSize far above n0 and n (e.g. read from a tampered file) cannot size the noise buffer.
        int capacity = Math.Min(batchSize, Math.Max(selectionSamples, estimationSamples));
        var noise = torch.empty([capacity, width], torch.float32, device);
        var votes = new long[capacity];
        var logits = maps.Count > 0 ? new float[capacity * k] : null;
        var pending = new List<Piece>();
        int pendingCount = 0;
        var z = new double[k];
        var h = new double[k];
        var order = new int[k];
        _clock.Start();

        void Flush()
        {
            if (pendingCount == 0)
                return;
            token.ThrowIfCancellationRequested();
            using var inner = torch.NewDisposeScope();
            int offset = 0;
            foreach (var p in pending)
            {
                using var gen = new torch.Generator(ChunkSeed(stats[p.Row].Seed, p.Phase, p.Chunk), device);
                noise.narrow(0, offset, p.Length).normal_(0.0, sigma, gen);
                offset += p.Length;
            }
            var x = noise.narrow(0, 0, pendingCount);
            if (shortcut is not null)
                x = shortcut.Mix(x);
            offset = 0;
            foreach (var p in pending)
            {
                x.narrow(0, offset, p.Length).add_(centres.narrow(0, p.Row, 1));
                offset += p.Length;
            }
            if (shortcut is not null)
                SmoothingBaseModel.VotesOf(shortcut.Rest(x), pendingCount, votes, logits);
            else
                model.Classify(x, pendingCount, votes, logits);
            offset = 0;
            foreach (var p in pending)
            {
                var s = stats[p.Row];
                var counts = p.Phase == 0 ? s.Selection : s.Estimation;
                for (int i = 0; i < p.Length; i++)
                    counts[votes[offset + i]]++;
                if (p.Phase == 1 && logits is not null)
                {
                    for (int i = 0; i < p.Length; i++)
                        AccumulateMaps(s, logits.AsSpan((offset + i) * k, k), z, h, order);
                }
                offset += p.Length;
            }
            _samplesDone += pendingCount;
            pending.Clear();
            pendingCount = 0;
            progress?.Report(new SmoothingProgress(_rowsDone, _samplesDone, _clock.Elapsed));
        }

        for (int r = 0; r < rows; r++)
        {
            for (int phase = 0; phase < 2; phase++)
            {
                long total = phase == 0 ? selectionSamples : estimationSamples;
                for (long chunk = 0; chunk * capacity < total; chunk++)
                {
                    int len = (int)Math.Min(capacity, total - chunk * capacity);
                    if (pendingCount + len > capacity)
                        Flush();
                    pending.Add(new Piece(r, phase, chunk, len));
                    pendingCount += len;
                }
            }
            _rowsDone++;
        }
        Flush();
        _clock.Stop();
    }

    private void AccumulateMaps(RowStatistics s, ReadOnlySpan<float> logits, double[] z, double[] h, int[] order)
    {
        int k = z.Length;
        for (int c = 0; c < k; c++)
            z[c] = logits[c];
        SimplexMaps.SortDescending(z, order);
        long n = ++s.MapCount;
        double inv = 1.0 / n;
        for (int m = 0; m < maps.Count; m++)
        {
            var map = maps[m];
            if (map.Kind == SimplexMapKind.Softmax)
                SimplexMaps.Softmax(z, map.T, h);
            else
                SimplexMaps.Sparsemax(z, map.T, order, h);
            int baseIndex = m * k;
            for (int c = 0; c < k; c++)
            {
                double delta = h[c] - s.MapMean[baseIndex + c];
                s.MapMean[baseIndex + c] += delta * inv;
                s.MapM2[baseIndex + c] += delta * (h[c] - s.MapMean[baseIndex + c]);
            }
        }
    }
}
