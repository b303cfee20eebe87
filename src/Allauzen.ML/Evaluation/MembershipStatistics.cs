using Allauzen.ML.Smoothing;

namespace Allauzen.ML.Evaluation;

/// <summary>The ROC statistics of an audit from the scores of members and non-members (higher = member).</summary>
internal static class MembershipStatistics
{
    /// <summary>All the audit numbers.</summary>
    public static MembershipAuditResult Compute(double[] members, double[] nonMembers, double delta, double alpha)
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
        var (epsilon, low, high) = Epsilon(roc, nM, nN, delta, alpha);
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
    public static List<(long Tp, long Fp)> Roc(double[] members, double[] nonMembers)
    {
        var all = Sorted(members, nonMembers);
        var roc = new List<(long, long)> { (0, 0) };
        long tp = 0, fp = 0;
        for (int i = all.Length - 1; i >= 0; i--)
        {
            if (all[i].Member)
                tp++;
            else
                fp++;
            if (i == 0 || all[i - 1].Score != all[i].Score)
                roc.Add((tp, fp));
        }
        return roc;
    }

    /// <summary>The ε estimate and interval at the threshold that maximises the conservative estimate (see
    /// <see cref="MembershipAuditResult.EpsilonInterval"/>).</summary>
    public static (double Epsilon, double Low, double High) Epsilon(List<(long Tp, long Fp)> roc, long nM, long nN, double delta, double alpha)
    {
        double bestLow = double.NegativeInfinity;
        (long Tp, long Fp) best = (0, 0);
        foreach (var (tp, fp) in roc)
        {
            if (tp == 0)
                continue;
            double low = LogRatio(ConfidenceBounds.ClopperPearsonLower(tp, nM, alpha) - delta, ConfidenceBounds.ClopperPearsonUpper(fp, nN, alpha));
            if (low > bestLow)
            {
                bestLow = low;
                best = (tp, fp);
            }
        }
        if (best.Tp == 0)
            return (0, 0, 0);
        double point = LogRatio((double)best.Tp / nM - delta, (double)best.Fp / nN);
        double high = LogRatio(ConfidenceBounds.ClopperPearsonUpper(best.Tp, nM, alpha) - delta, ConfidenceBounds.ClopperPearsonLower(best.Fp, nN, alpha));
        return (Math.Max(0, point), Math.Max(0, bestLow), Math.Max(0, high));
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
