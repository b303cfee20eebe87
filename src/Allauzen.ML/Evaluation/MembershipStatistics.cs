using Allauzen.ML.Smoothing;

namespace Allauzen.ML.Evaluation;

/// <summary>The ROC statistics of an audit from the scores of members and non-members (higher = member).</summary>
internal static class MembershipStatistics
{
    /// <summary>All the audit numbers. With <paramref name="holdOutSeed"/> set, ε̂ and its interval come from
    /// <see cref="HeldOutEpsilon"/>; the other numbers always use all rows.</summary>
    /// <param name="members">Scores of the members.</param>
    /// <param name="nonMembers">Scores of the non-members.</param>
    /// <param name="delta">δ of the ε estimate.</param>
    /// <param name="alpha">Level of each one-sided Clopper–Pearson bound.</param>
    /// <param name="holdOutSeed">Seed of the selection/evaluation split, or null to choose and evaluate t* on the same rows.</param>
    /// <param name="minimumFlagged">The smallest fraction of the (selection) rows a candidate threshold must flag.</param>
    public static MembershipAuditResult Compute(double[] members, double[] nonMembers, double delta, double alpha,
        int? holdOutSeed = null, double minimumFlagged = 0)
    {
        if (members.Length == 0 || nonMembers.Length == 0)
            throw new ArgumentException($"An audit needs members and non-members (got {members.Length} and {nonMembers.Length} rows).");
        var roc = Roc(members, nonMembers);
        long nM = members.Length, nN = nonMembers.Length;
        double balanced = 0.5, tpr1 = 0, tpr01 = 0;
        foreach (var (tp, fp) in roc)
        {
            double tpr = (double)tp / nM, fpr = (double)fp / nN;
            balanced = Math.Max(balanced, 0.5 * (tpr + 1 - fpr));
            if (fp <= 0.01 * nN)
                tpr1 = Math.Max(tpr1, tpr);
            if (fp <= 0.001 * nN)
                tpr01 = Math.Max(tpr01, tpr);
        }
        var (epsilon, low, high) = holdOutSeed is int seed
            ? HeldOutEpsilon(members, nonMembers, delta, alpha, seed, minimumFlagged)
            : Epsilon(roc, nM, nN, delta, alpha, minimumFlagged);
        return new MembershipAuditResult
        {
            Auc = Auc(members, nonMembers),
            BalancedAccuracy = balanced,
            TprAtFpr1Percent = tpr1,
            TprAtFpr01Percent = tpr01,
            EpsilonLowerBound = epsilon,
            EpsilonInterval = (low, high),
            Roc = roc.Select(p => ((double)p.Fp / nN, (double)p.Tp / nM)).ToArray(),
        };
    }

    /// <summary>
    /// The exact AUC, P(s_member &gt; s_non) + ½·P(tie), by one sort: U = Σ over tie groups of
    /// members_g·(non-members below g + ½·non-members in g), divided by n_M·n_N.
    /// </summary>
    public static double Auc(double[] members, double[] nonMembers)
    {
        var all = Sorted(members, nonMembers);
        double u2 = 0; // 2U, an integer as long as it fits a double exactly
        long nonBelow = 0;
        for (int i = 0; i < all.Length;)
        {
            int j = i;
            long m = 0, n = 0;
            for (; j < all.Length && all[j].Score == all[i].Score; j++)
            {
                if (all[j].Member)
                    m++;
                else
                    n++;
            }
            u2 += m * (2.0 * nonBelow + n);
            nonBelow += n;
            i = j;
        }
        return u2 / (2.0 * members.Length * nonMembers.Length);
    }

    /// <summary>(TP, FP) of "score ≥ t" for t = +∞ and every distinct score, from the highest down.</summary>
    public static List<(long Tp, long Fp)> Roc(double[] members, double[] nonMembers) =>
        RocWithThresholds(members, nonMembers).Select(p => (p.Tp, p.Fp)).ToList();

    /// <summary>(TP, FP, t) of "score ≥ t" for t = +∞ and every distinct score t, from the highest down.</summary>
    private static List<(long Tp, long Fp, double Threshold)> RocWithThresholds(double[] members, double[] nonMembers)
    {
        var all = Sorted(members, nonMembers);
        var roc = new List<(long, long, double)> { (0, 0, double.PositiveInfinity) };
        long tp = 0, fp = 0;
        for (int i = all.Length - 1; i >= 0; i--)
        {
            if (all[i].Member)
                tp++;
            else
                fp++;
            if (i == 0 || all[i - 1].Score != all[i].Score)
                roc.Add((tp, fp, all[i].Score));
        }
        return roc;
    }

    /// <summary>The ε estimate and interval at the threshold that maximises the conservative estimate (see
    /// <see cref="MembershipAuditResult.EpsilonInterval"/>), among the thresholds that flag at least
    /// <paramref name="minimumFlagged"/> of the rows.</summary>
    public static (double Epsilon, double Low, double High) Epsilon(List<(long Tp, long Fp)> roc, long nM, long nN, double delta, double alpha,
        double minimumFlagged = 0)
    {
        int best = SelectThreshold(roc, nM, nN, delta, alpha, minimumFlagged);
        return best < 0 ? (0, 0, 0) : Interval(roc[best].Tp, roc[best].Fp, nM, nN, delta, alpha);
    }

    /// <summary>
    /// ε̂ and its interval at a threshold chosen on other rows: members and non-members are each split in halves by the
    /// rank of a hash of (seed, row index) (seed + 1 for the non-members); t* maximises the conservative estimate on
    /// the selection halves (fold 0) and TPR, FPR and their Clopper–Pearson bounds are counted on the evaluation
    /// halves (fold 1), so the interval holds at level 2α for each end at a threshold fixed before those rows are seen.
    /// </summary>
    public static (double Epsilon, double Low, double High) HeldOutEpsilon(double[] members, double[] nonMembers, double delta, double alpha,
        int seed, double minimumFlagged)
    {
        if (members.Length < 2 || nonMembers.Length < 2)
            throw new ArgumentException($"A held-out threshold needs at least 2 members and 2 non-members (got {members.Length} and {nonMembers.Length}).");
        var foldM = MembershipAudit.Folds(members.Length, seed);
        var foldN = MembershipAudit.Folds(nonMembers.Length, seed + 1);
        double[] Half(double[] scores, int[] fold, int f) => [.. scores.Where((_, i) => fold[i] == f)];
        var (selectM, selectN, evalM, evalN) = (Half(members, foldM, 0), Half(nonMembers, foldN, 0), Half(members, foldM, 1), Half(nonMembers, foldN, 1));
        var roc = RocWithThresholds(selectM, selectN);
        int best = SelectThreshold([.. roc.Select(p => (p.Tp, p.Fp))], selectM.Length, selectN.Length, delta, alpha, minimumFlagged);
        if (best < 0)
            return (0, 0, 0);
        double t = roc[best].Threshold;
        return Interval(evalM.LongCount(v => v >= t), evalN.LongCount(v => v >= t), evalM.Length, evalN.Length, delta, alpha);
    }

    /// <summary>The index of the ROC point with TP &gt; 0 and TP + FP ≥ minimumFlagged·(nM + nN) that maximises the
    /// conservative estimate, or −1 when there is none (or when that estimate is −∞ at every candidate).</summary>
    private static int SelectThreshold(List<(long Tp, long Fp)> roc, long nM, long nN, double delta, double alpha, double minimumFlagged)
    {
        double bestLow = double.NegativeInfinity;
        int best = -1;
        for (int i = 0; i < roc.Count; i++)
        {
            var (tp, fp) = roc[i];
            if (tp == 0 || tp + fp < minimumFlagged * (nM + nN))
                continue;
            double low = LogRatio(ConfidenceBounds.ClopperPearsonLower(tp, nM, alpha) - delta, ConfidenceBounds.ClopperPearsonUpper(fp, nN, alpha));
            if (low > bestLow)
            {
                bestLow = low;
                best = i;
            }
        }
        return best;
    }

    /// <summary>(point, Low, High) at TP = <paramref name="tp"/> of <paramref name="nM"/> and FP = <paramref name="fp"/> of
    /// <paramref name="nN"/>, each clamped at 0.</summary>
    private static (double Epsilon, double Low, double High) Interval(long tp, long fp, long nM, long nN, double delta, double alpha)
    {
        double point = LogRatio((double)tp / nM - delta, (double)fp / nN);
        double low = LogRatio(ConfidenceBounds.ClopperPearsonLower(tp, nM, alpha) - delta, ConfidenceBounds.ClopperPearsonUpper(fp, nN, alpha));
        double high = LogRatio(ConfidenceBounds.ClopperPearsonUpper(tp, nM, alpha) - delta, ConfidenceBounds.ClopperPearsonLower(fp, nN, alpha));
        return (Math.Max(0, point), Math.Max(0, low), Math.Max(0, high));
    }

    /// <summary>log(a/b) with a ≤ 0 → −∞ and b = 0 → +∞.</summary>
    private static double LogRatio(double a, double b) => a <= 0 ? double.NegativeInfinity : b <= 0 ? double.PositiveInfinity : Math.Log(a / b);

    private static (double Score, bool Member)[] Sorted(double[] members, double[] nonMembers)
    {
        var all = new (double Score, bool Member)[members.Length + nonMembers.Length];
        for (int i = 0; i < members.Length; i++)
            all[i] = (Check(members[i]), true);
        for (int i = 0; i < nonMembers.Length; i++)
            all[members.Length + i] = (Check(nonMembers[i]), false);
        Array.Sort(all, (a, b) => a.Score.CompareTo(b.Score));
        return all;
    }

    private static double Check(double s) => double.IsNaN(s) ? throw new ArgumentException("A membership score is NaN.") : s;
}
