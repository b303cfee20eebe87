using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Allauzen.ML.Diachronic;

/// <summary>The minibatch likelihood of the managed dynamic Bernoulli state.</summary>
internal sealed partial class DynamicBernoulliEngine
{
    /// <summary>
    /// Adds the minibatch likelihood's gradient into the gradient rows it touches and returns −Σ_t s_t·ll_t
    /// (0 when <paramref name="withValue"/> is false: the logarithms are skipped, the gradient is the same).
    /// </summary>
    internal double NegativeLogLikelihood(IReadOnlyList<DbeSliceBatch> batch, bool withValue = true)
    {
        EnsureGradients();
        var ll = new double[batch.Count];
        // Without α to train (the dynamic phase), a slice's terms read α and ρ_t and write only ρ_t's gradient rows: slices
        // with distinct indices are independent, so each runs whole on one thread with the very same operations (same bits
        // as one thread). The slices go to the threads longest first, each to the least loaded thread. Otherwise (α's
        // shared gradient, or the static phase's slices all mapped to slice 0) they run one after the other.
        int threads = Math.Min(_o.Threads, batch.Count);
        bool parallel = !TrainAlpha && threads > 1 && batch.Select(b => b.Slice).Distinct().Count() == batch.Count;
        if (parallel)
        {
            var lists = Enumerable.Range(0, threads).Select(_ => new List<int>()).ToArray();
            var loads = new long[threads];
            foreach (int j in Enumerable.Range(0, batch.Count).OrderByDescending(j => batch[j].Targets.Length).ThenBy(j => j))
            {
                int least = Array.IndexOf(loads, loads.Min());
                lists[least].Add(j);
                loads[least] += batch[j].Targets.Length;
            }
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
            {
                var sigma = new float[_k];
                var gSigma = new float[_k];
                foreach (int j in lists[i])
                    ll[j] = SliceLogLikelihood(batch[j], sigma, gSigma, withValue);
            });
        }
        else
        {
            var sigma = new float[_k];
            var gSigma = new float[_k];
            for (int j = 0; j < batch.Count; j++)
                ll[j] = SliceLogLikelihood(batch[j], sigma, gSigma, withValue);
        }
        double loss = 0;
        for (int j = 0; j < batch.Count; j++)
        {
            if (batch[j].Targets.Length > 0)
                loss -= batch[j].Scale * ll[j];
        }
        return loss;
    }

    /// <summary>
    /// One slice's minibatch log-likelihood; adds its gradient to ρ's rows of that slice (and α's when trained). The
    /// element-wise sums and products run in one loop each, with the operations of the TensorPrimitives calls they
    /// replace (separately rounded, in the same order; the dot products are TensorPrimitives.Dot): the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    private double SliceLogLikelihood(DbeSliceBatch b, float[] sigma, float[] gSigma, bool withValue)
    {
        int k = _k;
        int n = b.Targets.Length;
        if (n == 0)
            return 0;
        int cs = b.Contexts.Length / n, ns = b.Negatives.Length / n;
        float scale = (float)b.Scale;
        double ll = 0;
        bool alpha = TrainAlpha;
        long sliceBase = (long)b.Slice * _v * k;
        var etaBuffer = new float[ns + 1];
        int ahead = PrefetchDistance;
        for (int i = 0; i < Math.Min(ahead, n); i++)
            PrefetchTarget(b, i, cs, ns, sliceBase, gradient: true);
        for (int i = 0; i < n; i++)
        {
            // The rows of the next target are scattered over the tables (cache misses): ask for them now, so that their
            // misses overlap with this target's arithmetic instead of following it.
            if (i + ahead < n)
                PrefetchTarget(b, i + ahead, cs, ns, sliceBase, gradient: true);
            // σ_i = Σ_{j∈c_i} α_{w_j}
            var contexts = b.Contexts.AsSpan(i * cs, cs);
            sigma.AsSpan().Clear();
            foreach (long c in contexts)
                AddInto(_alpha.AsSpan((int)(c * k), k), sigma);
            if (alpha)
                gSigma.AsSpan().Clear();
            // η of the positive and the negatives first (independent dot products, so they overlap), then their
            // gradients, in the same order as one after the other (ρ does not change within the minibatch)
            var etas = etaBuffer.AsSpan(0, ns + 1);
            for (int q = -1; q < ns; q++)
                etas[q + 1] = Dot(Row(_rho, b.Slice, q < 0 ? b.Targets[i] : b.Negatives[i * ns + q]), sigma);
            for (int q = -1; q < ns; q++)
            {
                // q = −1: the positive term log σ(η), else a negative log σ(−η); dL/dη = −s·σ(−η) or s·σ(η)
                long w = q < 0 ? b.Targets[i] : b.Negatives[i * ns + q];
                float eta = etas[q + 1];
                float x = q < 0 ? eta : -eta, e = MathF.Exp(-Math.Abs(x));
                if (withValue)
                    ll += Math.Min(x, 0) - MathF.Log(1 + e); // log σ(x), stable for either sign
                float g = (q < 0 ? -scale : scale) * (x >= 0 ? e / (1 + e) : 1 / (1 + e)); // ∓s·σ(−x)
                if (alpha)
                    MultiplyAddInto(Row(_rho, b.Slice, w), g, gSigma); // gσ += g·ρ_w
                var gr = Row(_gRho, b.Slice, w);
                MultiplyAddInto(sigma, g, gr); // gρ_w += g·σ
            }
            if (alpha)
            {
                foreach (long c in contexts)
                    AddInto(gSigma, _gAlpha.AsSpan((int)(c * k), k));
            }
        }
        return ll;
    }

    /// <summary>Whether the likelihood prefetches the next target's rows (the speed probe's A/B switch; the bits are the same).</summary>
    internal static bool PrefetchRows { get; set; } = true;

    /// <summary>How many targets ahead the likelihood prefetches.</summary>
    internal static int PrefetchDistance { get; set; } = 1;

    /// <summary>Prefetches target <paramref name="i"/>'s rows: α of its contexts, ρ of its target and negatives (and their gradient rows when <paramref name="gradient"/>).</summary>
    private unsafe void PrefetchTarget(DbeSliceBatch b, int i, int cs, int ns, long sliceBase, bool gradient)
    {
        if (!Sse.IsSupported || !PrefetchRows)
            return;
        int k = _k;
        fixed (float* alpha = _alpha, rho = _rho, gRho = _gRho)
        {
            for (int c = 0; c < cs; c++)
                PrefetchRow(alpha + b.Contexts[i * cs + c] * k, k);
            for (int q = -1; q < ns; q++)
            {
                long offset = sliceBase + (q < 0 ? b.Targets[i] : b.Negatives[i * ns + q]) * k;
                PrefetchRow(rho + offset, k);
                if (gradient)
                    PrefetchRow(gRho + offset, k);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchRow(float* row, int k)
    {
        for (int j = 0; j < k; j += 16)
            Sse.Prefetch0(row + j);
    }

    /// <summary>
    /// x·y with the bits of <see cref="TensorPrimitives.Dot(ReadOnlySpan{float}, ReadOnlySpan{float})"/>, inlined: with 512-bit
    /// vectors and 16 ≤ n ≤ 128, TensorPrimitives forms the products of the first vector, of the following whole vectors in
    /// order and of the last vector's trailing lanes, adds them lane by lane into a zero accumulator in that order, then
    /// sums the lanes (<see cref="Vector512.Sum{T}(Vector512{T})"/>); the same here, without the call. Other lengths and
    /// machines call TensorPrimitives (<c>DotGivesTheBitsOfTensorPrimitives</c> checks every length on the machine it runs on).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int n = x.Length;
        if (!Vector512.IsHardwareAccelerated || n < 16 || n > 128 || y.Length != n)
            return TensorPrimitives.Dot(x, y);
        var acc = Vector512<float>.Zero + Vector512.Create(x) * Vector512.Create(y);
        int whole = n / 16, trailing = n - whole * 16;
        for (int j = 1; j < whole; j++)
            acc += Vector512.Create(x[(16 * j)..]) * Vector512.Create(y[(16 * j)..]);
        var end = Vector512.Create(x[(n - 16)..]) * Vector512.Create(y[(n - 16)..]);
        acc += trailing == 0 ? Vector512<float>.Zero
            : Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(16 - trailing)).AsSingle(), end, Vector512<float>.Zero);
        return Vector512.Sum(acc);
    }

    /// <summary>acc[i] = acc[i] + x[i] (TensorPrimitives.Add's operation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddInto(ReadOnlySpan<float> x, Span<float> acc)
    {
        int i = 0, n = x.Length;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
                (Vector512.Create(acc[i..]) + Vector512.Create(x[i..])).CopyTo(acc[i..]);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 8; i += 8)
                (Vector256.Create(acc[i..]) + Vector256.Create(x[i..])).CopyTo(acc[i..]);
        }
        for (; i < n; i++)
            acc[i] = acc[i] + x[i];
    }

    /// <summary>acc[i] = x[i]·a + acc[i], product and sum rounded separately (TensorPrimitives.MultiplyAdd's operations).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAddInto(ReadOnlySpan<float> x, float a, Span<float> acc)
    {
        int i = 0, n = x.Length;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; i <= n - 16; i += 16)
                (Vector512.Create(x[i..]) * va + Vector512.Create(acc[i..])).CopyTo(acc[i..]);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            for (; i <= n - 8; i += 8)
                (Vector256.Create(x[i..]) * va + Vector256.Create(acc[i..])).CopyTo(acc[i..]);
        }
        for (; i < n; i++)
            acc[i] = x[i] * a + acc[i];
    }
}
