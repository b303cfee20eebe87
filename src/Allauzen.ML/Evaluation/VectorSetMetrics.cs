using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Evaluation;

/// <summary>
/// Set-level computations shared by the evaluators: k-nearest-neighbour radii, the PRDC indicator counts, distance sums
/// (energy distance), sliced Wasserstein, L2 row normalisation and PCA. Everything quadratic streams over
/// <see cref="PairwiseBlocks"/>, so memory is O((n + m)·d + block²); every comparison that decides a count is exact in
/// float64 (float32 screening, exact re-check inside the error band).
/// </summary>
internal static class VectorSetMetrics
{
    /// <summary>Default block side: a block of float32 distances is 4 MB, a few of them live at once.</summary>
    public const int DefaultBlockSize = 1024;

    /// <summary>
    /// For every x_i, the exact squared distance to its k-th nearest point of <paramref name="y"/> (float64,
    /// <see cref="VectorSet.ExactSquaredDistance"/>), the point itself excluded by index when <paramref name="excludeSelf"/>
    /// (then x and y are one set; exact duplicates of x_i are other points, at distance 0).
    /// </summary>
    /// <remarks>Streams a running top-m (m = 2k + 4) of float32 distances per row over the column blocks, re-ranks the m
    /// candidates exactly, and accepts the k-th exact value when every non-candidate is provably farther (its float32
    /// distance minus the error band is at least that value); otherwise the row is recomputed exactly.</remarks>
    public static double[] KthNearestSquared(VectorSet x, VectorSet y, int k, bool excludeSelf, int blockSize = DefaultBlockSize,
        CancellationToken cancellationToken = default)
    {
        if (excludeSelf && !ReferenceEquals(x, y))
            throw new ArgumentException("excludeSelf needs one set (x and y the same object).");
        int available = y.Rows - (excludeSelf ? 1 : 0);
        if (k < 1 || k > available)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must lie in [1, {available}].");
        int m = Math.Min(2 * k + 4, available);
        var result = new double[x.Rows];
        using var blocks = new PairwiseBlocks(x, y, blockSize);
        foreach (var (i0, bi) in blocks.Blocks(x.Rows))
        {
            cancellationToken.ThrowIfCancellationRequested();
            float[] values;
            long[] indices;
            // The running candidates live outside any dispose scope and are replaced (and freed) after each block.
            using var kept = new KeptScalars();
            var candV = torch.full(bi, m, kept.Of(float.PositiveInfinity), ScalarType.Float32);
            var candI = torch.full(bi, m, kept.Of(-1L), ScalarType.Int64);
            Scalar mLast = kept.Of(m - 1), mCount = kept.Of(m);
            try
            {
                foreach (var (j0, bj) in blocks.Blocks(y.Rows))
                {
                    using var inner = torch.NewDisposeScope();
                    var d2 = blocks.SquaredDistances(i0, bi, j0, bj, infiniteSelf: excludeSelf);
                    var (vals, pos) = torch.cat([candV, d2], 1).topk(m, dim: 1, largest: false, sorted: false);
                    var previous = candI.gather(1, pos.clamp_max(mLast));
                    var next = torch.where(pos < mCount, previous, (pos - mCount).add(kept.Of(j0), KeptScalars.One));
                    candV.Dispose();
                    candI.Dispose();
                    candV = vals.contiguous().DetachFromDisposeScope();
                    candI = next.contiguous().DetachFromDisposeScope();
                }
                values = PairwiseBlocks.ToArray<float>(candV);
                indices = PairwiseBlocks.ToArray<long>(candI);
            }
            finally
            {
                candV.Dispose();
                candI.Dispose();
            }
            var exact = new double[m];
            for (int r = 0; r < bi; r++)
            {
                int i = i0 + r;
                double fmax = 0;
                int count = 0;
                for (int c = 0; c < m; c++)
                {
                    long j = indices[r * m + c];
                    fmax = Math.Max(fmax, values[r * m + c]);
                    if (j >= 0)
                        exact[count++] = x.ExactSquaredDistance(i, y, (int)j);
                }
                Array.Sort(exact, 0, count);
                double ek = count >= k ? exact[k - 1] : double.PositiveInfinity;
                bool complete = count == available;
                double band = blocks.Tolerance * (blocks.XNorms[i] + blocks.MaxYNorm);
                result[i] = complete || ek <= fmax - band ? ek : ExactKth(x, i, y, k, excludeSelf);
            }
        }
        return result;
    }

    /// <summary>The k-th smallest exact squared distance from x_i to the points of y, by a full scan.</summary>
    internal static double ExactKth(VectorSet x, int i, VectorSet y, int k, bool excludeSelf)
    {
        var all = new List<double>(y.Rows);
        for (int j = 0; j < y.Rows; j++)
        {
            if (!(excludeSelf && j == i))
                all.Add(x.ExactSquaredDistance(i, y, j));
        }
        all.Sort();
        return all[k - 1];
    }

    /// <summary>
    /// The PRDC indicator statistics of generated points q and reference points p, with squared radii
    /// r²(q) (<paramref name="r2Q"/>) and r²(p) (<paramref name="r2P"/>): A(q, p) = 1[‖q − p‖ &lt; r(p)] and
    /// B(q, p) = 1[‖q − p‖ &lt; r(q)], every entry exact (strict comparisons of exact float64 squared distances).
    /// </summary>
    public static PrdcCounts CrossIndicators(VectorSet q, VectorSet p, double[] r2Q, double[] r2P, int blockSize = DefaultBlockSize,
        CancellationToken cancellationToken = default)
    {
        var qInP = new bool[q.Rows];     // ∃p A(q, p): precision
        var pCovered = new bool[p.Rows]; // ∃q A(q, p): coverage
        var pInQ = new bool[p.Rows];     // ∃q B(q, p): recall
        long count = 0;                  // Σ A(q, p): density
        using var blocks = new PairwiseBlocks(q, p, blockSize);
        double u4 = 4 * PairwiseBlocks.Float32Roundoff, c = blocks.Tolerance;
        // Four block buffers reused by every block (distances, band, difference, indicator): no block-sized
        // allocation per block, so the allocator's heap does not grow with the number of blocks.
        using var buffers = new BlockBuffers(Math.Min(blockSize, Math.Max(q.Rows, 1)), Math.Min(blockSize, Math.Max(p.Rows, 1)));
        foreach (var (i0, bi) in blocks.Blocks(q.Rows))
        {
            foreach (var (j0, bj) in blocks.Blocks(p.Rows))
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var (d2, band, diff, inside) = buffers.View(bi, bj);
                blocks.SquaredDistancesInto(d2, i0, bi, j0, bj);
                // A: compare with r²(p) along the columns.
                band.copy_(PairwiseBlocks.ToleranceVector(blocks.XNorms, i0, bi, c).unsqueeze(1))
                    .add_(PairwiseBlocks.ToleranceVector(blocks.YNorms, j0, bj, c, r2P, u4).unsqueeze(0), KeptScalars.One);
                diff.copy_(d2).sub_(PairwiseBlocks.Slice(r2P, j0, bj).unsqueeze(0));
                Decide(q, p, diff, band, inside, i0, j0, (_, j) => r2P[j]);
                count += (long)inside.sum(ScalarType.Float64).ToDouble();
                Or(qInP, i0, inside.amax(1));
                Or(pCovered, j0, inside.amax(0));
                // B: compare with r²(q) along the rows.
                band.copy_(PairwiseBlocks.ToleranceVector(blocks.XNorms, i0, bi, c, r2Q, u4).unsqueeze(1))
                    .add_(PairwiseBlocks.ToleranceVector(blocks.YNorms, j0, bj, c).unsqueeze(0), KeptScalars.One);
                diff.copy_(d2).sub_(PairwiseBlocks.Slice(r2Q, i0, bi).unsqueeze(1));
                Decide(q, p, diff, band, inside, i0, j0, (i, _) => r2Q[i]);
                Or(pInQ, j0, inside.amax(0));
            }
        }
        return new PrdcCounts(qInP.Count(b => b), pInQ.Count(b => b), count, pCovered.Count(b => b));
    }

    /// <summary>
    /// Writes into <paramref name="inside"/> the exact indicator d²_exact &lt; r² of a block (1 or 0), from
    /// diff = d²_float32 − r² and the error band: entries with diff &lt; −band are in, entries with |diff| ≤ band are
    /// re-checked in float64. Overwrites <paramref name="diff"/>.
    /// </summary>
    private static void Decide(VectorSet rows, VectorSet cols, Tensor diff, Tensor band, Tensor inside, int i0, int j0, Func<int, int, double> r2)
    {
        using var kept = new KeptScalars();
        inside.copy_(diff).add_(band, KeptScalars.One).lt_(kept.Of(0));
        var ambiguous = diff.abs_().le_(band);
        var where = Pairs(ambiguous);
        long n = where.Length / 2;
        var hitRows = new List<long>();
        var hitCols = new List<long>();
        for (long t = 0; t < n; t++)
        {
            int a = (int)where[2 * t], b = (int)where[2 * t + 1];
            if (rows.ExactSquaredDistance(i0 + a, cols, j0 + b) < r2(i0 + a, j0 + b))
            {
                hitRows.Add(a);
                hitCols.Add(b);
            }
        }
        if (hitRows.Count > 0)
            inside.index_put_(torch.ones(1, ScalarType.Float32), PairwiseBlocks.Copy(hitRows.ToArray(), hitRows.Count), PairwiseBlocks.Copy(hitCols.ToArray(), hitCols.Count));
    }

    /// <summary>Four float32 block buffers and their views for a block of bi×bj.</summary>
    private sealed class BlockBuffers(int rows, int cols) : IDisposable
    {
        private readonly Tensor[] _buffers = Enumerable.Range(0, 4).Select(_ => torch.empty(rows, cols, ScalarType.Float32)).ToArray();

        public (Tensor D2, Tensor Band, Tensor Diff, Tensor Inside) View(int bi, int bj)
        {
            Tensor V(int k) => _buffers[k].narrow(0, 0, bi).narrow(1, 0, bj);
            return (V(0), V(1), V(2), V(3));
        }

        public void Dispose()
        {
            foreach (var b in _buffers)
                b.Dispose();
        }
    }

    /// <summary>The (row, column) pairs of the non-zero entries of a matrix, flattened.</summary>
    private static long[] Pairs(Tensor mask) =>
        mask.any().ToBoolean() ? PairwiseBlocks.ToArray<long>(mask.nonzero().contiguous()) : [];

    private static void Or(bool[] target, int start, Tensor any)
    {
        using var kept = new KeptScalars();
        var values = PairwiseBlocks.ToArray<bool>(any.ne(kept.Of(0)));
        for (int i = 0; i < values.Length; i++)
            target[start + i] |= values[i];
    }

    /// <summary>
    /// Σ_ij ‖x_i − y_j‖ over all pairs, summed in float64: float32 distances, except the pairs within the float32 error
    /// band of 0, whose distance is exact; the self pairs of one set count exactly 0.
    /// </summary>
    public static double SumDistances(VectorSet x, VectorSet y, int blockSize = DefaultBlockSize, CancellationToken cancellationToken = default)
    {
        double sum = 0;
        using var blocks = new PairwiseBlocks(x, y, blockSize);
        using var kept = new KeptScalars();
        Scalar no = kept.Of(false), zero = kept.Of(0);
        foreach (var (i0, bi) in blocks.Blocks(x.Rows))
        {
            foreach (var (j0, bj) in blocks.Blocks(y.Rows))
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var d2 = blocks.SquaredDistances(i0, bi, j0, bj);
                // sqrt amplifies the float32 error near 0: pairs inside the error band are summed exactly.
                var near = d2 <= PairwiseBlocks.ToleranceVector(blocks.XNorms, i0, bi, blocks.Tolerance).unsqueeze(1)
                    .add(PairwiseBlocks.ToleranceVector(blocks.YNorms, j0, bj, blocks.Tolerance).unsqueeze(0), KeptScalars.One);
                if (blocks.SameSet && i0 == j0)
                    near.diagonal().fill_(no);
                var where = Pairs(near);
                for (int t = 0; t < where.Length; t += 2)
                    sum += Math.Sqrt(x.ExactSquaredDistance(i0 + (int)where[t], y, j0 + (int)where[t + 1]));
                var d = d2.masked_fill_(near, zero).sqrt_();
                if (blocks.SameSet && i0 == j0)
                    d.diagonal().fill_(zero);
                sum += d.sum(ScalarType.Float64).ToDouble();
            }
        }
        return sum;
    }

    /// <summary>
    /// The energy distance 2·E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ between the two empirical distributions (every mean over
    /// all n·m, n² or m² pairs, the V-statistic: 0 for two copies of one set, non-negative).
    /// </summary>
    public static double EnergyDistance(VectorSet x, VectorSet y, int blockSize = DefaultBlockSize, CancellationToken cancellationToken = default)
    {
        if (x.Rows < 1 || y.Rows < 1)
            throw new ArgumentException("The energy distance needs at least one point in each set.");
        double n = x.Rows, m = y.Rows;
        return 2 * SumDistances(x, y, blockSize, cancellationToken) / (n * m)
            - SumDistances(x, x, blockSize, cancellationToken) / (n * n)
            - SumDistances(y, y, blockSize, cancellationToken) / (m * m);
    }

    /// <summary>
    /// The sliced 2-Wasserstein distance sqrt(mean_θ W₂²(θ·X, θ·Y)) over <paramref name="projections"/> directions θ drawn
    /// uniformly on the sphere (seeded). Each 1-D W₂² is exact between the empirical distributions of any sizes
    /// (∫₀¹ |F⁻¹(t) − G⁻¹(t)|² dt over the merged quantile steps).
    /// </summary>
    public static double SlicedWasserstein(VectorSet x, VectorSet y, int projections, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(projections, 1);
        if (x.Rows < 1 || y.Rows < 1 || x.Dimensions != y.Dimensions)
            throw new ArgumentException("Both sets need at least one point and the same dimension.");
        int d = x.Dimensions;
        var rng = new Random(seed);
        var theta = new double[d * projections];
        for (int l = 0; l < projections; l++)
        {
            double norm = 0;
            for (int t = 0; t < d; t++)
            {
                double g = Gaussian(rng);
                theta[t * projections + l] = g;
                norm += g * g;
            }
            norm = Math.Sqrt(norm);
            for (int t = 0; t < d; t++)
                theta[t * projections + l] /= norm;
        }
        var px = Project(x, theta, projections);
        var py = Project(y, theta, projections);
        double total = 0;
        var a = new double[x.Rows];
        var b = new double[y.Rows];
        for (int l = 0; l < projections; l++)
        {
            for (int i = 0; i < x.Rows; i++)
                a[i] = px[i * projections + l];
            for (int j = 0; j < y.Rows; j++)
                b[j] = py[j * projections + l];
            total += Wasserstein2Squared1D(a, b);
        }
        return Math.Sqrt(total / projections);
    }

    /// <summary>W₂² between the empirical distributions of two samples on the line (both arrays are sorted in place).</summary>
    internal static double Wasserstein2Squared1D(double[] a, double[] b)
    {
        Array.Sort(a);
        Array.Sort(b);
        double n = a.Length, m = b.Length, t = 0, sum = 0;
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            double next = Math.Min((i + 1) / n, (j + 1) / m);
            double diff = a[i] - b[j];
            sum += (next - t) * diff * diff;
            t = next;
            if ((i + 1) / n <= next)
                i++;
            if ((j + 1) / m <= next)
                j++;
        }
        return sum;
    }

    private static double[] Project(VectorSet s, double[] theta, int projections)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        var xs = PairwiseBlocks.FromSet(s).to_type(ScalarType.Float64);
        var th = PairwiseBlocks.Copy(theta, s.Dimensions, projections);
return PairwiseBlocks.ToArray<double>(torch.mm(xs, th).contiguous());
    }

    /// <summary>Each row divided by its L2 norm (in float64, stored as float32); zero rows stay zero.</summary>
    public static VectorSet L2Normalize(VectorSet s)
    {
        var result = new float[s.Data.Length];
        int d = s.Dimensions;
        for (int i = 0; i < s.Rows; i++)
        {
            double norm = Math.Sqrt(s.SquaredNorm(i));
            if (norm == 0)
                continue;
            var row = s.Row(i);
            for (int t = 0; t < d; t++)
                result[i * d + t] = (float)(row[t] / norm);
        }
        return new VectorSet(result, s.Rows, d);
    }

    /// <summary>
    /// PCA fitted on the union of <paramref name="a"/> and <paramref name="b"/>: the centred scatter matrix
    /// Σ (z − μ)(z − μ)ᵀ is accumulated in float64 over row blocks and decomposed with <c>torch.linalg.svd</c> (its
    /// singular values are the squared singular values of the centred union, its singular vectors the principal axes).
    /// Keeps the fewest leading components whose explained variance reaches <paramref name="explainedVariance"/> and
    /// returns both sets projected on them (centred, float32). When the union has no variance, keeps one component.
    /// </summary>
    public static (VectorSet A, VectorSet B, int Components) Pca(VectorSet a, VectorSet b, double explainedVariance, int blockSize = DefaultBlockSize)
    {
        if (!(explainedVariance > 0 && explainedVariance <= 1))
            throw new ArgumentOutOfRangeException(nameof(explainedVariance), explainedVariance, "The explained variance must lie in (0, 1].");
        int d = a.Dimensions;
        TorchRuntime.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        var mean = new double[d];
        foreach (var s in new[] { a, b })
        {
            for (int i = 0; i < s.Rows; i++)
            {
                var row = s.Row(i);
                for (int t = 0; t < d; t++)
                    mean[t] += row[t];
            }
        }
        double total = a.Rows + b.Rows;
        for (int t = 0; t < d; t++)
            mean[t] /= total;
        var mu = PairwiseBlocks.Copy(mean, d);
        var scatter = torch.zeros(d, d, ScalarType.Float64);
        foreach (var s in new[] { a, b })
        {
            var all = PairwiseBlocks.FromSet(s);
            for (int i0 = 0; i0 < s.Rows; i0 += blockSize)
            {
                using var inner = torch.NewDisposeScope();
                var z = all.narrow(0, i0, Math.Min(blockSize, s.Rows - i0)).to_type(ScalarType.Float64) - mu;
                scatter.add_(torch.mm(z.t(), z), KeptScalars.One);
            }
        }
        var (u, sv, _) = torch.linalg.svd(scatter, fullMatrices: false);
        var variances = PairwiseBlocks.ToArray<double>(sv);
        double sum = variances.Sum();
        int keep = 1;
        if (sum > 0)
        {
            double cumulative = 0;
            keep = d;
            for (int t = 0; t < d; t++)
            {
                cumulative += variances[t];
                if (cumulative >= explainedVariance * sum * (1 - 1e-12))
                {
                    keep = t + 1;
                    break;
                }
            }
        }
        var basis = u.narrow(1, 0, keep).contiguous();
        VectorSet Project(VectorSet s)
        {
            using var inner = torch.NewDisposeScope();
            var z = PairwiseBlocks.FromSet(s).to_type(ScalarType.Float64) - mu;
            var projected = torch.mm(z, basis).to_type(ScalarType.Float32).contiguous();
return new VectorSet(PairwiseBlocks.ToArray<float>(projected), s.Rows, keep);
        }
        return (Project(a), Project(b), keep);
    }

    private static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}

/// <summary>The counts behind precision, recall, density and coverage.</summary>
/// <param name="PrecisionHits">Generated points inside some reference ball.</param>
/// <param name="RecallHits">Reference points inside some generated ball.</param>
/// <param name="DensityCount">Σ_q Σ_p 1[‖q − p‖ &lt; r_k(p)].</param>
/// <param name="CoverageHits">Reference points whose ball holds some generated point.</param>
internal readonly record struct PrdcCounts(long PrecisionHits, long RecallHits, long DensityCount, long CoverageHits);
