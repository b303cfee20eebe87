namespace Allauzen.ML.Evaluation;

/// <summary>The computation behind <c>ml.Data.EvaluateGenerative</c> (Le Bronnec, Verine et al. 2024, pr-4-llm).</summary>
internal static class GenerativeEvaluator
{
    /// <summary>Reads both sets, normalises, fits the PCA on the union and computes the metrics.</summary>
    public static GenerativeMetrics Evaluate(IHostEnvironment env, IDataView reference, IDataView generated,
        GenerativeEvaluatorOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(generated);
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        string column = options.FeatureColumnName;
        var p = VectorSet.Read(reference, column, "reference feature", null, options.MaxSamples, options.Seed, cancellationToken);
        var q = VectorSet.Read(generated, column, "generated feature", p.Dimensions, options.MaxSamples, options.Seed, cancellationToken);
        CheckRows(p.Rows, options.K, "reference", column);
        CheckRows(q.Rows, options.K, "generated", column);
        if (options.L2Normalize)
        {
            p = VectorSetMetrics.L2Normalize(p);
            q = VectorSetMetrics.L2Normalize(q);
        }
        if (options.PcaExplainedVariance > 0)
            (p, q, _) = VectorSetMetrics.Pca(p, q, options.PcaExplainedVariance, options.BlockSize);
        var metrics = Compute(p, q, options.K, options.BlockSize, out long zeroRadii, cancellationToken);
        if (zeroRadii > 0)
        {
            using var ch = env.Start(nameof(GenerativeEvaluator));
            ch.Warning(MessageSensitivity.None, "{0}", $"EvaluateGenerative: {zeroRadii} point(s) have at least k = {options.K} exact duplicates in their own set, " +
                "so their radius r_k is 0 and their ball is empty.");
        }
        return metrics;
    }

    /// <summary>PRDC of the prepared sets (no normalisation or PCA here).</summary>
    internal static GenerativeMetrics Compute(VectorSet p, VectorSet q, int k, int blockSize, out long zeroRadii,
        CancellationToken cancellationToken = default)
    {
        var r2P = VectorSetMetrics.KthNearestSquared(p, p, k, excludeSelf: true, blockSize, cancellationToken);
        var r2Q = VectorSetMetrics.KthNearestSquared(q, q, k, excludeSelf: true, blockSize, cancellationToken);
        zeroRadii = r2P.Count(r => r == 0) + r2Q.Count(r => r == 0);
        var c = VectorSetMetrics.CrossIndicators(q, p, r2Q, r2P, blockSize, cancellationToken);
        return new GenerativeMetrics
        {
            Precision = (double)c.PrecisionHits / q.Rows,
            Recall = (double)c.RecallHits / p.Rows,
            Density = c.DensityCount / ((double)k * q.Rows),
            Coverage = (double)c.CoverageHits / p.Rows,
            K = k,
            Dimensions = p.Dimensions,
            ReferenceRows = p.Rows,
            GeneratedRows = q.Rows,
        };
    }

    private static void Validate(GenerativeEvaluatorOptions o)
    {
        ArgumentException.ThrowIfNullOrEmpty(o.FeatureColumnName, nameof(GenerativeEvaluatorOptions.FeatureColumnName));
        if (o.K < 1)
            throw new ArgumentOutOfRangeException(nameof(GenerativeEvaluatorOptions.K), o.K, "K must be at least 1.");
        if (!(o.PcaExplainedVariance >= 0 && o.PcaExplainedVariance <= 1))
            throw new ArgumentOutOfRangeException(nameof(GenerativeEvaluatorOptions.PcaExplainedVariance), o.PcaExplainedVariance,
                "PcaExplainedVariance must lie in [0, 1] (0 disables the PCA).");
        if (o.MaxSamples is int m && m < 2)
            throw new ArgumentOutOfRangeException(nameof(GenerativeEvaluatorOptions.MaxSamples), m, "MaxSamples must be at least 2 (or null for all rows).");
        if (o.BlockSize < 1)
            throw new ArgumentOutOfRangeException(nameof(GenerativeEvaluatorOptions.BlockSize), o.BlockSize, "The block size must be at least 1.");
    }

    private static void CheckRows(int rows, int k, string role, string column)
    {
        if (k >= rows)
            throw new ArgumentOutOfRangeException(nameof(GenerativeEvaluatorOptions.K), k,
                $"K = {k} needs more than K rows in the {role} set (column '{column}'), which has {rows} row(s): " +
                $"the radius r_k is the distance to the k-th nearest other point. Lower K or supply more rows.");
    }
}
