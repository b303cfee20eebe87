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

    /// <summary>Seed of the two-fold split of <see cref="MembershipAttack.Shadow"/> (a row's fold depends on (seed, row
    /// index) only). Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>Side of the distance blocks (tests use small values); memory is O(block²).</summary>
    internal int BlockSize { get; set; } = VectorSetMetrics.DefaultBlockSize;
}
