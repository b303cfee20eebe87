using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Synthetic;

/// <summary>The settings of one run of the flow (post-processing: none of them touches the private data).</summary>
/// <param name="SubProjections">S: directions drawn (with replacement) among the K released ones at each step.</param>
/// <param name="Steps">Number of Euler steps.</param>
/// <param name="StepSize">dt.</param>
/// <param name="Lambda">λ: the entropic term √(2·dt·λ)·z of the update (0 = deterministic drift).</param>
/// <param name="Sigma">σ of the Gaussian smoothing applied to the particles' projections (the released target was
/// smoothed with the same σ).</param>
internal readonly record struct FlowSettings(int SubProjections, int Steps, double StepSize, double Lambda, double Sigma);

/// <summary>
/// The fixed-projection sliced-Wasserstein flow of DPSWflow. The private data enter only once, through
/// <see cref="ReleaseQuantiles"/>: their projections on K fixed unit directions Θ, smoothed by N(0, σ²) (the Gaussian
/// mechanism), summarised by M quantiles per direction. <see cref="Run"/> then moves particles x ∈ ℝ^{n×d}, started
/// from N(0, I), with the drift ∇ = mean_θ θ·(X̃_θ − F⁻¹_Ỹθ(F_X̃θ(X̃_θ))) where X̃_θ = θᵀx + N(0, σ²) (step 4–5 of the
/// notes), reading nothing but Θ and the released quantiles, so the particles are post-processing of the release.
/// </summary>
/// <remarks>
/// The reference code re-noises the data projections at every step; releasing them once and reusing the release is
/// what makes the single-release (ε, δ) of <see cref="DpSlicedWasserstein.NoiseScale"/> the guarantee of the whole
/// run. At each step S of the K released directions are drawn with replacement (again post-processing).
/// </remarks>
internal static class SlicedWassersteinFlow
{
    /// <summary>K unit directions of ℝ^d (row-major K×d), uniform on the sphere, from <paramref name="seed"/> only.</summary>
    public static float[] UnitDirections(int projections, int dimensions, int seed)
    {
        var rng = new Random(seed);
        var theta = new float[projections * dimensions];
        for (int k = 0; k < projections; k++)
        {
            double norm;
            var g = new double[dimensions];
            do
            {
                norm = 0;
                for (int t = 0; t < dimensions; t++)
                {
                    // Box–Muller on two uniforms in (0, 1].
                    double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                    g[t] = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                    norm += g[t] * g[t];
                }
            }
            while (norm < 1e-24);
            norm = Math.Sqrt(norm);
            for (int t = 0; t < dimensions; t++)
                theta[k * dimensions + t] = (float)(g[t] / norm);
        }
        return theta;
    }

    /// <summary>
    /// The Gaussian mechanism: Ỹ = ΘYᵀ + N(0, σ²) (K×n, noise from <paramref name="seed"/>), then the quantiles of each
    /// row of Ỹ at the M percentiles linspace(0, 1, M) (K×M, row-major). Rows of <paramref name="y"/> must already lie
    /// in the unit ball (the caller enforces it).
    /// </summary>
    public static float[] ReleaseQuantiles(float[] y, int rows, int dimensions, float[] theta, int projections, int percentiles,
        double sigma, ulong seed)
    {
        if (rows < 1)
            throw new ArgumentException("The private data set is empty.", nameof(y));
        TorchRuntime.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        using var gen = new torch.Generator(seed, torch.CPU);
        var Y = torch.tensor(y, [rows, dimensions]);
        var Th = torch.tensor(theta, [projections, dimensions]);
        var proj = torch.mm(Th, Y.t());
        using var k = new KeptScalars(); // explicit Scalars, alive during the calls (same values, same bits)
        if (sigma > 0)
            proj = proj.add(k.Of(sigma) * torch.randn([projections, rows], generator: gen), KeptScalars.One);
        var q = Quantiles(proj, Percentiles(percentiles)).contiguous();
        return q.data<float>().ToArray();
    }

    /// <summary>
    /// Runs the flow for <paramref name="rows"/> particles against the released quantiles (K×M) and returns them
    /// (rows×d, row-major). Deterministic in <paramref name="seed"/> (start, sub-projection draws, smoothing noise).
    /// </summary>
    public static float[] Run(float[] theta, int projections, int dimensions, float[] targetQuantiles, int percentiles,
        FlowSettings settings, int rows, int seed, Action<int>? onStep = null, CancellationToken cancellationToken = default)
    {
        TorchRuntime.EnsureInitialized();
        using var outer = torch.NewDisposeScope();
        using var gen = new torch.Generator((ulong)(uint)seed, torch.CPU);
        var pick = new Random(unchecked(seed * 31 + 7));
        var Th = torch.tensor(theta, [projections, dimensions]);
        var Q = torch.tensor(targetQuantiles, [projections, percentiles]);
        var pct = Percentiles(percentiles);
        int s = settings.SubProjections;
        var x = torch.randn([rows, dimensions], generator: gen);
        var idx = new long[s];
        for (int step = 0; step < settings.Steps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            for (int i = 0; i < s; i++)
                idx[i] = pick.Next(projections);
            using var index = torch.tensor(idx);
            x = Step(x, Th.index_select(0, index), Q.index_select(0, index), pct, settings, gen).MoveToOuterDisposeScope();
            onStep?.Invoke(step + 1);
        }
        return x.contiguous().data<float>().ToArray();
    }

    /// <summary>
    /// One Euler step of the flow against the target quantiles <paramref name="qTarget"/> (S×M) on the directions
    /// <paramref name="theta"/> (S×d): x − dt·mean_θ θ·(X̃_θ − F⁻¹_Ỹ(F_X̃(X̃_θ))) + √(2·dt·λ)·z.
    /// </summary>
    internal static Tensor Step(Tensor x, Tensor theta, Tensor qTarget, Tensor pct, FlowSettings settings, torch.Generator gen)
    {
        long s = theta.shape[0], rows = x.shape[0];
        double dt = settings.StepSize, noise = Math.Sqrt(2 * dt * settings.Lambda);
        using var k = new KeptScalars(); // explicit Scalars, alive during the calls (same values, same bits)
        var x_proj = torch.mm(theta, x.t());                                 // S×n
        if (settings.Sigma > 0)
            x_proj = x_proj.add(k.Of(settings.Sigma) * torch.randn([s, rows], generator: gen), KeptScalars.One);
        var residual = pct.shape[0] >= 2 && rows >= 1
            ? TransportResiduals(x_proj.contiguous(), qTarget.contiguous(), pct.contiguous())
            : x_proj - Interpolate(pct.expand(s, pct.shape[0]), qTarget,
                Interpolate(Quantiles(x_proj, pct), pct.expand(s, pct.shape[0]), x_proj));
        var nabla = torch.mm(residual.t(), theta) / k.Of(s);                 // n×d: mean_θ θ·(X̃_θ − q)
        var next = x - k.Of(dt) * nabla;
        if (noise > 0)
            next = next.add(k.Of(noise) * torch.randn([rows, x.shape[1]], generator: gen), KeptScalars.One);
        return next;
    }

    /// <summary>The ε that <see cref="Interpolate"/> adds to the knot spacing (float32 machine epsilon).</summary>
    private const float KnotEpsilon = 1.1920929e-07f;

    /// <summary>
    /// X̃ − F⁻¹_Ỹ(F_X̃(X̃)) for each row of <paramref name="xProj"/> (S×n, contiguous), the same float operations as
    /// <c>xProj − Interpolate(pct, qTarget, Interpolate(Quantiles(xProj, pct), pct, xProj))</c> (so bit-identical to
    /// it for finite values; the sign of a zero order statistic may differ), in one pass per row: a radix sort with
    /// the permutation gives the order statistics and, merged with the row's quantile knots, each value's knot
    /// interval without a binary search; the second interval is found next to the first (the percentiles are
    /// uniform). Rows whose knots or percentiles are not sorted fall back to the binary search of searchsorted.
    /// Rows run in parallel on up to <c>torch.get_num_threads()</c> workers.
    /// </summary>
    internal static Tensor TransportResiduals(Tensor xProj, Tensor qTarget, Tensor pct)
    {
        int s = (int)xProj.shape[0], n = (int)xProj.shape[1], m = (int)pct.shape[0];
        var p = MemoryMarshal.Cast<byte, float>(pct.bytes).ToArray();
        // Quantiles(): positions p·(n − 1) between the order statistics lo and hi, weight w, all in float32.
        var lo = new int[m];
        var hi = new int[m];
        var w = new float[m];
        bool pctSorted = true;
        for (int j = 0; j < m; j++)
        {
            float pos = p[j] * (float)(n - 1);
            float l = Math.Clamp(MathF.Floor(pos), 0f, n - 1);
            lo[j] = (int)l;
            hi[j] = (int)Math.Clamp(l + 1, 0f, n - 1);
            w[j] = pos - l;
            pctSorted &= j == 0 || p[j] >= p[j - 1];
        }
        var residual = torch.empty([s, n], dtype: ScalarType.Float32);
        void RowRange(int from, int to)
        {
            var scratch = t_scratch is { } cached && cached.N == n && cached.M == m ? cached : t_scratch = new RowScratch(n, m);
            for (int k = from; k < to; k++)
            {
                var xp = MemoryMarshal.Cast<byte, float>(xProj.bytes).Slice(k * n, n);
                var qt = MemoryMarshal.Cast<byte, float>(qTarget.bytes).Slice(k * m, m);
                var res = MemoryMarshal.Cast<byte, float>(residual.bytes).Slice(k * n, n);
                Row(xp, qt, p, lo, hi, w, pctSorted, res, scratch);
            }
        }
        int workers = Math.Clamp(torch.get_num_threads(), 1, s);
        if (workers == 1 || (long)s * n < 32_768)
            RowRange(0, s);
        else
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers },
                t => RowRange((int)((long)s * t / workers), (int)((long)s * (t + 1) / workers)));
        return residual;
    }

    /// <summary>The last row buffers of this thread, reused while the shape (n, M) stays the same.</summary>
    [ThreadStatic]
    private static RowScratch? t_scratch;

    private sealed class RowScratch(int n, int m)
    {
        public int N => n;

        public int M => m;

        public uint[] Keys = new uint[n], KeysSwap = new uint[n];
        public int[] Order = new int[n], OrderSwap = new int[n];
        public readonly int[] Counts = new int[4 * 256];
        public readonly float[] Knots = new float[m];

        /// <summary>The two interpolations' slopes per knot interval, tabulated when there are fewer intervals than
        /// values (the same division either way, so the same bits).</summary>
        public readonly float[]? Slopes = m - 1 <= n ? new float[m - 1] : null, TargetSlopes = m - 1 <= n ? new float[m - 1] : null;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(ReadOnlySpan<float> xp, ReadOnlySpan<float> qt, float[] p, int[] lo, int[] hi, float[] w,
        bool pctSorted, Span<float> res, RowScratch sc)
    {
        int n = xp.Length, m = p.Length;
        SortWithOrder(xp, sc);
        var keys = sc.Keys;
        var order = sc.Order;
        var xq = sc.Knots;
        bool knotsSorted = true;
        for (int j = 0; j < m; j++)
        {
            float s0 = FromKey(keys[lo[j]]), s1 = FromKey(keys[hi[j]]);
            xq[j] = s0 + w[j] * (s1 - s0);
            knotsSorted &= j == 0 || xq[j] >= xq[j - 1];
        }
        if (sc.Slopes is { } slopes && sc.TargetSlopes is { } targetSlopes)
        {
            for (int j = 0; j < m - 1; j++)
            {
                slopes[j] = (p[j + 1] - p[j]) / (xq[j + 1] - xq[j] + KnotEpsilon);
                targetSlopes[j] = (qt[j + 1] - qt[j]) / (p[j + 1] - p[j] + KnotEpsilon);
            }
        }
        if (knotsSorted)
        {
            // Ascending values meet the knots in order: lower_bound by a merge.
            int lb = 0;
            for (int r = 0; r < n; r++)
            {
                float v = FromKey(keys[r]);
                while (lb < m && !(xq[lb] >= v))
                    lb++;
                res[order[r]] = v - Transport(v, lb, xq, qt, p, pctSorted, sc);
            }
        }
        else
        {
            for (int i = 0; i < n; i++)
                res[i] = xp[i] - Transport(xp[i], LowerBound(xq, xp[i]), xq, qt, p, pctSorted, sc);
        }
    }

    /// <summary>F⁻¹_Ỹ(F_X̃(v)) given lb = searchsorted(xq, v): the two Interpolate calls for one value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Transport(float v, int lb, float[] xq, ReadOnlySpan<float> qt, float[] p, bool pctSorted, RowScratch sc)
    {
        int m = p.Length;
        int a = Math.Clamp(lb - 1, 0, m - 2);
        float slope = sc.Slopes is { } slopes ? slopes[a] : (p[a + 1] - p[a]) / (xq[a + 1] - xq[a] + KnotEpsilon);
        float cdf = p[a] + slope * (v - xq[a]);
        int lb2;
        if (pctSorted)
        {
            // cdf lies in [p[a], p[a + 1]] up to rounding and extrapolation: walk from there.
            lb2 = a + 1;
            while (lb2 > 0 && p[lb2 - 1] >= cdf)
                lb2--;
            while (lb2 < m && !(p[lb2] >= cdf))
                lb2++;
        }
        else
        {
            lb2 = LowerBound(p, cdf);
        }
        int b = Math.Clamp(lb2 - 1, 0, m - 2);
        float slope2 = sc.TargetSlopes is { } targetSlopes ? targetSlopes[b] : (qt[b + 1] - qt[b]) / (p[b + 1] - p[b] + KnotEpsilon);
        return qt[b] + slope2 * (cdf - p[b]);
    }

    /// <summary>torch.searchsorted (left side) on one row: the binary search of libtorch, any order of the knots.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int LowerBound(ReadOnlySpan<float> knots, float v)
    {
        int start = 0, end = knots.Length;
        while (start < end)
        {
            int mid = start + ((end - start) >> 1);
            if (!(knots[mid] >= v))
                start = mid + 1;
            else
                end = mid;
        }
        return start;
    }

    /// <summary>Order-preserving map of a float's bits to an unsigned key, and back.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ToKey(float v)
    {
        uint u = BitConverter.SingleToUInt32Bits(v);
        return u ^ ((uint)((int)u >> 31) | 0x8000_0000u);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float FromKey(uint key) =>
        BitConverter.UInt32BitsToSingle(key ^ ((key >> 31) - 1 | 0x8000_0000u));

    /// <summary>Least-significant-digit radix sort of the row's keys (4 passes of 8 bits, skipped when all
    /// keys share the digit) carrying the positions: sc.Keys ascending, sc.Order the permutation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SortWithOrder(ReadOnlySpan<float> xp, RowScratch sc)
    {
        int n = xp.Length;
        var counts = sc.Counts;
        Array.Clear(counts);
        var keys = sc.Keys;
        var order = sc.Order;
        for (int i = 0; i < n; i++)
        {
            uint key = ToKey(xp[i]);
            keys[i] = key;
            order[i] = i;
            counts[key & 0xFF]++;
            counts[256 + ((key >> 8) & 0xFF)]++;
            counts[512 + ((key >> 16) & 0xFF)]++;
            counts[768 + (key >> 24)]++;
        }
        var keysOut = sc.KeysSwap;
        var orderOut = sc.OrderSwap;
        for (int pass = 0; pass < 4; pass++)
        {
            int shift = 8 * pass, bucket = 256 * pass;
            if (counts[bucket + (int)((keys[0] >> shift) & 0xFF)] == n)
                continue;
            int sum = 0;
            for (int b = 0; b < 256; b++)
            {
                int c = counts[bucket + b];
                counts[bucket + b] = sum;
                sum += c;
            }
            for (int i = 0; i < n; i++)
            {
                uint key = keys[i];
                int at = counts[bucket + (int)((key >> shift) & 0xFF)]++;
                keysOut[at] = key;
                orderOut[at] = order[i];
            }
            (keys, keysOut) = (keysOut, keys);
            (order, orderOut) = (orderOut, order);
        }
        (sc.Keys, sc.KeysSwap, sc.Order, sc.OrderSwap) = (keys, keysOut, order, orderOut);
    }

    /// <summary>linspace(0, 1, M).</summary>
    internal static Tensor Percentiles(int m) => m == 1 ? torch.tensor(new[] { 0.5f }) : torch.linspace(0, 1, m, dtype: ScalarType.Float32);

    /// <summary>Quantiles of each row of <paramref name="a"/> (R×n) at <paramref name="p"/> (M), linear between order statistics.</summary>
    internal static Tensor Quantiles(Tensor a, Tensor p)
    {
        long n = a.shape[1];
        var sorted = a.sort(1).Values;
        using var k = new KeptScalars(); // explicit Scalars, alive during the calls (same values, same bits)
        var pos = p * k.Of(n - 1);
        var lo = pos.floor().clamp(k.Of(0), k.Of(n - 1));
        var hi = lo.add(KeptScalars.One, KeptScalars.One).clamp(k.Of(0), k.Of(n - 1));
        var w = (pos - lo).unsqueeze(0);
        long r = a.shape[0];
        var loI = lo.to(ScalarType.Int64).unsqueeze(0).expand(r, -1);
        var hiI = hi.to(ScalarType.Int64).unsqueeze(0).expand(r, -1);
        var s0 = sorted.gather(1, loI);
        var s1 = sorted.gather(1, hiI);
        return s0.add(w * (s1 - s0), KeptScalars.One);
    }

    /// <summary>
    /// Row-wise piecewise-linear interpolation of the function with knots (<paramref name="xs"/>, <paramref name="ys"/>)
    /// (both R×M, xs sorted) at <paramref name="xNew"/> (R×P), extended linearly beyond the end knots.
    /// </summary>
    internal static Tensor Interpolate(Tensor xs, Tensor ys, Tensor xNew)
    {
        long m = xs.shape[1];
        if (m == 1)
            return ys.expand(xNew.shape[0], 1).expand(xNew.shape[0], xNew.shape[1]).clone();
        var xsC = xs.contiguous();
        using var k = new KeptScalars(); // explicit Scalars, alive during the calls (same values, same bits)
        var ind = (torch.searchsorted(xsC, xNew.contiguous()) - KeptScalars.One).clamp(k.Of(0), k.Of(m - 2));
        var x0 = xsC.gather(1, ind);
        var x1 = xsC.gather(1, ind.add(KeptScalars.One, KeptScalars.One));
        var ysC = ys.contiguous();
        var y0 = ysC.gather(1, ind);
        var y1 = ysC.gather(1, ind.add(KeptScalars.One, KeptScalars.One));
        var slope = (y1 - y0) / (x1 - x0).add(k.Of(KnotEpsilon), KeptScalars.One);
        return y0.add(slope * (xNew - x0), KeptScalars.One);
    }
}
