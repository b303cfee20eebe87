using System.Globalization;

namespace Allauzen.ML.Evaluation;

/// <summary>
/// The outcome of a membership-inference audit: how well the attack's score separates members from non-members, and the
/// privacy loss ε it demonstrates. A threshold t predicts "member" when score ≥ t; TPR and FPR are the fractions of
/// members and of non-members predicted "member". Created by <c>ml.Data.AuditMembership</c>.
/// </summary>
public sealed class MembershipAuditResult
{
    internal MembershipAuditResult()
    {
    }

    /// <summary>Area under the ROC curve: P(score_member &gt; score_non-member) + ½·P(tie) over all member/non-member pairs
    /// (the Mann–Whitney statistic, computed exactly). 0.5 = no better than chance.</summary>
    public double Auc { get; internal init; }

    /// <summary>The best balanced accuracy of a threshold: max_t (TPR + 1 − FPR)/2 (at least 0.5).</summary>
    public double BalancedAccuracy { get; internal init; }

    /// <summary>The largest TPR over thresholds with FPR ≤ 1 % (empirical ROC, no interpolation).</summary>
    public double TprAtFpr1Percent { get; internal init; }

    /// <summary>The largest TPR over thresholds with FPR ≤ 0.1 % (needs more than 1000 non-members to be non-zero
    /// unless the attack is perfect at the top).</summary>
    public double TprAtFpr01Percent { get; internal init; }

    /// <summary>
    /// The empirical ε at the audit threshold t*: max(0, log((TPR − δ)/FPR)); +∞ when FPR = 0 and TPR &gt; δ there.
    /// t* is the threshold that maximises the conservative estimate <see cref="EpsilonInterval"/>.Low (the point
    /// estimate's own maximum is +∞ as soon as the top-scored row is a member). An (ε, δ)-DP training gives
    /// TPR ≤ e^ε·FPR + δ for every threshold, so ε is at least this value up to sampling error.
    /// </summary>
    public double EpsilonLowerBound { get; internal init; }

    /// <summary>
    /// At t*, Low = max(0, log((TPR_lo − δ)/FPR_hi)) and High = max(0, log((TPR_hi − δ)/FPR_lo)), with one-sided
    /// Clopper–Pearson bounds at level α (TPR_lo, FPR_lo lower; TPR_hi, FPR_hi upper); Low is 0 when TPR_lo ≤ δ and High is
    /// +∞ when FPR_lo = 0. At a fixed threshold, Low exceeds the true log((TPR − δ)/FPR) with probability at most 2α;
    /// choosing t* on the same data makes Low slightly optimistic (audit a threshold chosen on separate data for a strict
    /// bound). Low is the audit's ε lower bound: a training claimed (ε, δ)-DP with ε &lt; Low is refuted at that level.
    /// With <see cref="MembershipAuditOptions.HoldOutThreshold"/>, t* is chosen on half of the rows and ε̂, Low and High
    /// are counted on the other half, so each end holds at level 2α (High ≥ the true value at t*, which an (ε, δ)-DP
    /// release keeps at most ε).
    /// </summary>
    public (double Low, double High) EpsilonInterval { get; internal init; }

    /// <summary>
    /// The empirical ROC curve: (FPR, TPR) of "score ≥ t" for t = +∞ (the point (0, 0)) and then every distinct score from
    /// the highest down, ending at (1, 1); no interpolation. Ties between members and non-members give a diagonal step.
    /// </summary>
    public IReadOnlyList<(double Fpr, double Tpr)> Roc { get; internal init; } = [];

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"AUC={Auc:0.####} BA={BalancedAccuracy:0.####} TPR@1%={TprAtFpr1Percent:0.####} TPR@0.1%={TprAtFpr01Percent:0.####} ε̂={EpsilonLowerBound:0.###} [{EpsilonInterval.Low:0.###}, {EpsilonInterval.High:0.###}]");
}
