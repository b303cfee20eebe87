namespace Allauzen.ML.Evaluation;

/// <summary>How <c>ml.Data.AuditMembership</c> scores a row (a higher score means "more likely a member").</summary>
public enum MembershipAttack
{
    /// <summary>Black-box attack on a synthetic data set (GAN-Leaks "full black-box"): score(x) = −min_j ‖x − g_j‖ over the
    /// rows g_j of <see cref="MembershipAuditOptions.SyntheticData"/>, on <see cref="MembershipAuditOptions.FeatureColumnName"/>.</summary>
    DistanceToClosestRecord,

    /// <summary>Loss-threshold attack (Yeom et al. 2018): score(x) = −loss(x), the loss read from the per-row column
    /// <see cref="MembershipAuditOptions.ScoreColumnName"/> (lower loss = member).</summary>
    LossThreshold,

    /// <summary>Learned attack: an attack model trained by <see cref="MembershipAuditOptions.ShadowTrainer"/> on rows of
    /// known membership, cross-fitted on two halves so that every row is scored by a model that did not see it.</summary>
    Shadow,
}
