namespace Allauzen.ML.Evaluation;

/// <summary>Options of <c>ml.Data.AuditMembership</c> (membership-inference audit of a model or a synthetic data set).</summary>
public sealed class MembershipAuditOptions
{
    /// <summary>The attack. Default <see cref="MembershipAttack.DistanceToClosestRecord"/>.</summary>
    public MembershipAttack Attack { get; set; } = MembershipAttack.DistanceToClosestRecord;

    /// <summary>The <c>Vector&lt;Single, n&gt;</c> column of the rows (members, non-members and synthetic data) used by
    /// <see cref="MembershipAttack.DistanceToClosestRecord"/> and <see cref="MembershipAttack.Shadow"/>. Default "Features".</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>For <see cref="MembershipAttack.LossThreshold"/>: the per-row loss column (Single or Double, finite) of both
    /// views. For <see cref="MembershipAttack.Shadow"/>: the Single column the attack model writes (higher = member, as
    /// ML.NET's binary classifiers' "Score"). Default "Score".</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>For <see cref="MembershipAttack.DistanceToClosestRecord"/>: the synthetic rows released by the generator
    /// (with <see cref="FeatureColumnName"/> of the same size). Required by that attack.</summary>
    public IDataView? SyntheticData { get; set; }

    /// <summary>For <see cref="MembershipAttack.Shadow"/>: trains an attack model from a view with
    /// <see cref="FeatureColumnName"/> (the rows' features, e.g. a target model's outputs) and a Boolean "Label"
    /// (true = member); the returned transformer must add the Single column <see cref="ScoreColumnName"/>.
    /// Example: <c>v =&gt; ml.BinaryClassification.Trainers.LbfgsLogisticRegression().Fit(v)</c>. Required by that attack.</summary>
    public Func<IDataView, ITransformer>? ShadowTrainer { get; set; }

    /// <summary>The δ of (ε, δ)-differential privacy in the ε estimate log((TPR − δ)/FPR), in [0, 1). Default 0.</summary>
    public double Delta { get; set; }

    /// <summary>Failure probability of each one-sided Clopper–Pearson bound, in (0, 1). Default 0.05.</summary>
    public double Alpha { get; set; } = 0.05;

    /// <summary>
    /// When true, the threshold t* of <see cref="MembershipAuditResult.EpsilonLowerBound"/> is chosen on one half of the
    /// members and of the non-members (split by a hash of (<see cref="Seed"/>, row index)) and ε̂ and
    /// <see cref="MembershipAuditResult.EpsilonInterval"/> are counted on the other half: both ends of the interval are
    /// then Clopper–Pearson bounds at a threshold fixed before the rows they count were seen (each end wrong with
    /// probability at most 2α). When false (default), t* is chosen on the rows it is evaluated on and the interval is
    /// optimistic. The AUC, balanced accuracy, TPR at low FPR and ROC always use all rows.
    /// </summary>
    public bool HoldOutThreshold { get; set; }

    /// <summary>
    /// The smallest fraction of the rows (members and non-members together; the selection half with
    /// <see cref="HoldOutThreshold"/>) that a candidate threshold t* must flag as members, in [0, 1). Default 0 (any
    /// threshold). A floor such as 0.1 keeps the interval informative: a threshold at the very top of the ranking holds a
    /// handful of rows, and its Clopper–Pearson interval is too wide to bound ε from above.
    /// </summary>
    public double MinimumFlaggedFraction { get; set; }

    /// <summary>Seed of the two-fold split of <see cref="MembershipAttack.Shadow"/> and of the selection/evaluation split
    /// of <see cref="HoldOutThreshold"/> (a row's fold depends on (seed, row index) only). Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>Side of the distance blocks (tests use small values); memory is O(block²).</summary>
    internal int BlockSize { get; set; } = VectorSetMetrics.DefaultBlockSize;
}
