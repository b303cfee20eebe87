using Allauzen.ML.Data;

namespace Allauzen.ML.Evaluation;

/// <summary>
/// A set of <see cref="Rows"/> points of ℝ^<see cref="Dimensions"/>, stored row-major in float32: the input of every
/// set-level metric (PRDC, distance to closest record, sliced Wasserstein, energy). Distances that decide a metric are
/// exact float64 functions of these float32 values (see <see cref="VectorSetMetrics"/>).
/// </summary>
internal sealed class VectorSet
{
    /// <summary>Wraps <paramref name="data"/> (length rows·dimensions, not copied).</summary>
    public VectorSet(float[] data, int rows, int dimensions)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        if (data.LongLength != (long)rows * dimensions)
            throw new ArgumentException($"Expected {rows}×{dimensions} values, got {data.LongLength}.", nameof(data));
        Data = data;
        Rows = rows;
        Dimensions = dimensions;
    }

    /// <summary>The values, row-major.</summary>
    public float[] Data { get; }

    /// <summary>Number of points.</summary>
    public int Rows { get; }

    /// <summary>Dimension of each point.</summary>
    public int Dimensions { get; }

    /// <summary>Point <paramref name="i"/>.</summary>
    public ReadOnlySpan<float> Row(int i) => Data.AsSpan(i * Dimensions, Dimensions);

    /// <summary>‖x_i‖² in float64.</summary>
    public double SquaredNorm(int i)
    {
        double s = 0;
        foreach (float v in Row(i))
            s += (double)v * v;
        return s;
    }

    /// <summary>‖x_i − y_j‖² summed in float64 in index order (each float32 difference is exact in float64), so the
    /// value is symmetric and 0 between equal points.</summary>
    public double ExactSquaredDistance(int i, VectorSet other, int j)
    {
        var a = Row(i);
        var b = other.Row(j);
        double s = 0;
        for (int t = 0; t < a.Length; t++)
        {
            double d = (double)a[t] - b[t];
            s += d * d;
        }
        return s;
    }

    /// <summary>
    /// Reads a <c>Vector&lt;Single, n&gt;</c> column. When <paramref name="maxSamples"/> is set and smaller than the row
    /// count, keeps the rows with the smallest hash of (seed, row index) (a seeded uniform sample without replacement,
    /// streaming: memory O(maxSamples·n)), in their original order.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The column is missing or not a known-size float vector (or not of
    /// <paramref name="expectedSize"/>); the message names the column, what was expected and what was found.</exception>
    /// <exception cref="InvalidOperationException">A value is NaN or infinite (the message names the column and row).</exception>
    public static VectorSet Read(IDataView data, string column, string role, int? expectedSize, int? maxSamples, int seed,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        int d = SchemaChecks.FeatureVector(data.Schema, column, role, expectedSize);
        if (d < 1)
            throw SchemaChecks.Mismatch(column, role, "a vector of at least one value", $"Vector<Single, {d}>");
        int cap = maxSamples ?? int.MaxValue;
        var col = data.Schema[column];
        // Max-heap on the priority: the root is the kept row with the largest hash, the first to be evicted.
        var kept = new PriorityQueue<(long Row, float[] Values), ulong>(Comparer<ulong>.Create((a, b) => b.CompareTo(a)));
        using (var cursor = data.GetRowCursor([col]))
        {
            var getter = cursor.GetGetter<VBuffer<float>>(col);
            var buffer = default(VBuffer<float>);
            long row = -1;
            while (cursor.MoveNext())
            {
                row++;
                if ((row & 1023) == 0)
                    cancellationToken.ThrowIfCancellationRequested();
                ulong priority = maxSamples is null ? (ulong)row : Hash((ulong)(uint)seed, (ulong)row);
                float[]? target = null;
                if (kept.Count < cap)
                    target = new float[d];
                else if (kept.TryPeek(out _, out ulong worst) && priority < worst)
                    target = kept.Dequeue().Values;
                if (target is null)
                    continue;
                getter(ref buffer);
                buffer.CopyTo(target);
                for (int t = 0; t < d; t++)
                {
                    if (!float.IsFinite(target[t]))
                        throw new InvalidOperationException(
                            $"The {role} column '{column}' holds {target[t]} at row {row}, index {t}: every value must be finite.");
                }
                kept.Enqueue((row, target), priority);
            }
        }
        var rows = new (long Row, float[] Values)[kept.Count];
        for (int i = 0; kept.TryDequeue(out var item, out _); i++)
            rows[i] = item;
        Array.Sort(rows, (a, b) => a.Row.CompareTo(b.Row));
        var flat = new float[(long)rows.Length * d];
        for (int i = 0; i < rows.Length; i++)
            rows[i].Values.CopyTo(flat, (long)i * d);
        return new VectorSet(flat, rows.Length, d);
    }

    /// <summary>SplitMix64 of (seed, row): a per-row pseudo-random priority that does not depend on the data order.</summary>
    internal static ulong Hash(ulong seed, ulong row)
    {
        return SplitMix64.Scramble(seed * SplitMix64.Gamma + row + 0x632BE59BD9B4E019UL);
    }
}
