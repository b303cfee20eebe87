using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Allauzen.ML.Core;
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
/// key column, (Seed, row id), and the noise of sample i of phase p (0 = selection, 1 = estimation) is the counter-based
/// normal stream (row seed, i, p) of <see cref="GaussianNoise"/>: a function of (Seed, row key, phase, i) only, so it does
/// not depend on how rows are split, ordered or packed, on BatchSize, on the vector width of the CPU, or on the device
/// (noise is drawn on the host). Selection and estimation noise are independent streams.
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

    /// <summary>
    /// The noisy copy number <paramref name="sample"/> (0-based) of phase <paramref name="phase"/> of the row with seed
    /// <paramref name="rowSeed"/>: centre + σ·ε (or σ·ε when <paramref name="centre"/> is empty), ε the normal stream
    /// (key = row seed, stream = sample, domain = phase) of <see cref="GaussianNoise"/>.
    /// </summary>
    internal static void DrawSample(Span<float> destination, ulong rowSeed, int phase, long sample, float sigma, ReadOnlySpan<float> centre) =>
        GaussianNoise.Fill(destination, rowSeed, (ulong)sample, (uint)phase, sigma, centre);

    /// <summary>Samples First, ..., First + Length − 1 of phase Phase of row Row: one contiguous run of a forward batch.</summary>
    private readonly record struct Piece(int Row, int Phase, long First, int Length);

    /// <summary>
    /// Whether the exact first-layer shortcut (<see cref="FirstLayerNoise"/>) may be used for base models that allow it,
    /// Allauzen networks and ONNX classifiers alike (default true; tests turn it off to compare with the direct path).
    /// </summary>
    internal bool UseFirstLayerShortcut { get; set; } = true;

    /// <summary>Samples <paramref name="rows"/> rows of <paramref name="features"/> (rows × d) into <paramref name="stats"/>.</summary>
    /// <remarks>
    /// The rows' samples, row by row and selection before estimation, are cut into forward batches of exactly
    /// BatchSize samples (the last one shorter), whatever the row and phase boundaries: each sample's noise and vote
    /// depend on (row, phase, index) only, so the packing changes no count. With <see cref="OverlapNoise"/>, the noise
    /// of the next batch is drawn on a worker thread into a second buffer while the base model runs the current one.
    /// </remarks>
    public void Sample(float[] features, int rows, RowStatistics[] stats, IProgress<SmoothingProgress>? progress, CancellationToken token)
    {
        TorchRuntime.EnsureInitialized();
        int d = model.FeatureCount, k = model.ClassCount;
        var device = model.Device;
        var shortcut = UseFirstLayerShortcut ? model.FirstLayer : null;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        // Direct path: x + σε drawn straight into the forward pass's input buffer. Shortcut: noise of dimension h
        // (σz), mixed by Lᵀ and added to the noiseless first-layer output (see FirstLayerNoise).
        var centres = shortcut is null ? null : shortcut.Project(torch.tensor(features, [features.Length / d, d]).narrow(0, 0, rows).to(device));
        int width = shortcut?.Width ?? d;
        long perRow = (long)selectionSamples + estimationSamples, total = rows * perRow;
        if (total == 0)
            return;
        // A forward pass never needs more rows than the longer phase has samples: a BatchSize far above n0 and n (e.g.
        // read from a tampered file) cannot size the noise buffer.
        int capacity = (int)Math.Min(Math.Min(batchSize, Math.Max(selectionSamples, estimationSamples)), total);
        bool overlap = (OverlapNoise ?? model.RunsOffHost) && total > capacity;
        var hosts = new float[overlap ? 2 : 1][];
        var starts = new int[hosts.Length];
        var hostTensors = new Tensor[hosts.Length];
        var plans = new List<Piece>[hosts.Length];
        for (int i = 0; i < hosts.Length; i++)
        {
            (hosts[i], starts[i]) = AlignedBuffer((long)capacity * width);
            // Shares the buffer's memory (no copy on the CPU); a CUDA model gets one host-to-device copy per forward pass.
            hostTensors[i] = torch.frombuffer(hosts[i], torch.float32).narrow(0, starts[i], (long)capacity * width).view(capacity, width);
            plans[i] = [];
        }
        float scale = (float)sigma;
        var votes = new long[capacity];
        var logits = maps.Count > 0 ? new float[capacity * k] : null;
        var z = new double[k];
        var h = new double[k];
        var order = new int[k];
        var noiseCentres = shortcut is null ? features : null;
        long batches = (total + capacity - 1) / capacity;
        _clock.Start();

        void Plan(long batch, List<Piece> into) =>
            PlanBatch(batch * capacity, (int)Math.Min(capacity, total - batch * capacity), perRow, selectionSamples, into);

        Task? next = null;
        try
        {
            Plan(0, plans[0]);
            DrawPending(plans[0], hosts[0], starts[0], width, noiseCentres, d, stats, scale, ParallelNoise);
            for (long b = 0; b < batches; b++)
            {
                token.ThrowIfCancellationRequested();
                int cur = (int)(b % hosts.Length);
                long t0 = Stopwatch.GetTimestamp();
                if (next is not null)
                {
                    next.GetAwaiter().GetResult();
                    next = null;
                }
                if (overlap && b + 1 < batches)
                {
                    var (nextPlan, nextHost, nextStart) = (plans[1 - cur], hosts[1 - cur], starts[1 - cur]);
                    Plan(b + 1, nextPlan);
                    next = Task.Run(() => DrawPending(nextPlan, nextHost, nextStart, width, noiseCentres, d, stats, scale, parallel: false));
                }
                var pending = plans[cur];
                int count = pending.Sum(p => p.Length);
                long t1 = Stopwatch.GetTimestamp();
                using (torch.NewDisposeScope())
                {
                    if (shortcut is null && device.type == DeviceType.CPU)
                        model.Classify(hosts[cur], starts[cur], count, votes, logits);
                    else
                    {
                        var x = hostTensors[cur].narrow(0, 0, count).to(device);
                        if (shortcut is null)
                            model.Classify(x, count, votes, logits);
                        else
                        {
                            x = shortcut.Mix(x);
                            int at = 0;
                            foreach (var p in pending)
                            {
                                x.narrow(0, at, p.Length).add_(centres!.narrow(0, p.Row, 1), KeptScalars.One);
                                at += p.Length;
                            }
                            shortcut.Classify(x, count, votes, logits);
                        }
                    }
                }
                long t2 = Stopwatch.GetTimestamp();
                int offset = 0;
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
                long t3 = Stopwatch.GetTimestamp();
                if (!overlap && b + 1 < batches)
                {
                    Plan(b + 1, plans[0]);
                    DrawPending(plans[0], hosts[0], starts[0], width, noiseCentres, d, stats, scale, ParallelNoise);
                }
                Profile.Add(t1 - t0 + Stopwatch.GetTimestamp() - t3, t2 - t1, t3 - t2);
                long done = Math.Min(total, (b + 1) * capacity);
                _samplesDone += count;
                _rowsDone += (int)(done / perRow) - (int)((done - count) / perRow);
                progress?.Report(new SmoothingProgress(_rowsDone, _samplesDone, _clock.Elapsed));
            }
        }
        finally
        {
            // A failed forward pass must not leave a worker writing into the buffers.
            try
            {
                next?.Wait();
            }
            catch (AggregateException)
            {
            }
            _clock.Stop();
        }
    }

    /// <summary>
    /// A pinned array of at least <paramref name="length"/> floats and the index at which a 64-byte aligned run of that
    /// length starts: libtorch's kernels (e.g. its convolutions) take slower paths on the 8-byte aligned data of a plain
    /// .NET array (measured: a CNN's forward pass about 10 % slower).
    /// </summary>
    private static unsafe (float[] Array, int Start) AlignedBuffer(long length)
    {
        var array = GC.AllocateUninitializedArray<float>(checked((int)(length + 16)), pinned: true);
        Array.Clear(array);
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (array, (int)((64 - address % 64) % 64 / sizeof(float)));
    }

    /// <summary>The pieces of the samples start, ..., start + count − 1 of the rows' sequence (row by row, n0 selection then n estimation samples each).</summary>
    private static void PlanBatch(long start, int count, long perRow, int selection, List<Piece> into)
    {
        into.Clear();
        for (long g = start, end = start + count; g < end;)
        {
            int row = (int)(g / perRow);
            long w = g - row * perRow;
            int phase = w < selection ? 0 : 1;
            long phaseEnd = phase == 0 ? selection : perRow;
            int length = (int)Math.Min(end - g, phaseEnd - w);
            into.Add(new Piece(row, phase, phase == 0 ? w : w - selection, length));
            g += length;
        }
    }

    /// <summary>Wall time spent drawing noise (or waiting for it), in the forward pass and counting votes, summed over every sampler (measurements).</summary>
    internal static class Profile
    {
        private static long s_draw, s_forward, s_count, s_batches;

        public static void Add(long draw, long forward, long count)
        {
            Interlocked.Add(ref s_draw, draw);
            Interlocked.Add(ref s_forward, forward);
            Interlocked.Add(ref s_count, count);
            Interlocked.Increment(ref s_batches);
        }

        /// <summary>Milliseconds drawing, in the forward pass, counting, and the number of forward batches since the last reset.</summary>
        public static (double Draw, double Forward, double Count, long Batches) Read() =>
            (Stopwatch.GetElapsedTime(0, s_draw).TotalMilliseconds, Stopwatch.GetElapsedTime(0, s_forward).TotalMilliseconds,
                Stopwatch.GetElapsedTime(0, s_count).TotalMilliseconds, s_batches);

        public static void Reset() => s_draw = s_forward = s_count = s_batches = 0;
    }

    /// <summary>Whether the noise of a forward batch is drawn on all cores (default) or on the calling thread (measurements).</summary>
    internal static bool ParallelNoise { get; set; } = true;

    /// <summary>
    /// Whether the next batch's noise is drawn on a worker thread while the base model runs the current batch (double
    /// buffering). Null (default): when the base model runs off the host (CUDA), which leaves the cores idle during a
    /// forward pass; a CPU model keeps every core busy in its forward pass, so its noise is drawn on all cores between
    /// passes instead. Tests and measurements force either; the noise and the counts are the same.
    /// </summary>
    internal static bool? OverlapNoise { get; set; }

    /// <summary>Samples of noise drawn per parallel work item (~200 KB of float32 at d = 784).</summary>
    private const int SamplesPerItem = 64;

    /// <summary>
    /// Draws the noise of every piece into <paramref name="host"/> (sample-major, <paramref name="width"/> values a
    /// sample), with the rows of <paramref name="features"/> added when it is not null (direct path). With
    /// <paramref name="parallel"/>, work items of <see cref="SamplesPerItem"/> samples run on all cores: each sample's
    /// noise depends on (row seed, phase, index) only, so the result is the same in any order.
    /// </summary>
    private static void DrawPending(List<Piece> pending, float[] host, int start, int width, float[]? features, int d, RowStatistics[] stats,
        float sigma, bool parallel)
    {
        var items = new List<(int Piece, int From, int To, int Offset)>();
        int offset = 0;
        for (int p = 0; p < pending.Count; p++)
        {
            for (int from = 0; from < pending[p].Length; from += SamplesPerItem)
                items.Add((p, from, Math.Min(pending[p].Length, from + SamplesPerItem), offset + from));
            offset += pending[p].Length;
        }
        void Draw(int item)
        {
            var (pi, from, to, at) = items[item];
            var p = pending[pi];
            var centre = features is null ? default : new ReadOnlySpan<float>(features, p.Row * d, d);
            for (int i = from; i < to; i++, at++)
                DrawSample(host.AsSpan(start + at * width, width), stats[p.Row].Seed, p.Phase, p.First + i, sigma, centre);
        }
        if (items.Count == 1 || Environment.ProcessorCount == 1 || !parallel)
        {
            for (int i = 0; i < items.Count; i++)
                Draw(i);
        }
        else
            Parallel.For(0, items.Count, Draw);
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
