namespace Allauzen.ML.Evaluation;

/// <summary>Options of <c>ml.Data.EvaluateGenerative</c> (precision, recall, density and coverage of a generated set).</summary>
public sealed class GenerativeEvaluatorOptions
{
    /// <summary>The <c>Vector&lt;Single, n&gt;</c> column holding the points in both data views. Default "Features".</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>The neighbour rank k of the radii r_k (the k-th nearest other point of the same set). Default 5; must be at
    /// least 1 and below the number of rows of each set.</summary>
    public int K { get; set; } = 5;

    /// <summary>Divide every row by its L2 norm before the PCA (zero rows stay zero). Default true.</summary>
    public bool L2Normalize { get; set; } = true;

    /// <summary>Project both sets on the fewest principal components of their union that explain this fraction of its
    /// variance, in (0, 1]; 0 disables the PCA. Default 0.9.</summary>
    public double PcaExplainedVariance { get; set; } = 0.9;

    /// <summary>When set, each set is subsampled to at most this many rows (seeded, uniform without replacement, the
    /// choice of a row depends on (<see cref="Seed"/>, row index) only). Default null: all rows.</summary>
    public int? MaxSamples { get; set; }

    /// <summary>Seed of the subsampling. Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>Side of the distance blocks (tests use small values); memory is O(block²).</summary>
    internal int BlockSize { get; set; } = VectorSetMetrics.DefaultBlockSize;
}
