using Allauzen.ML.Evaluation;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Evaluation;

[TestClass]
public sealed class MembershipAuditTests
{
    private static readonly MLContext Ml = new(seed: 1);

    private sealed class LossRow
    {
        public float Loss { get; set; }
    }

    private static IDataView Losses(IEnumerable<double> losses) => Ml.Data.LoadFromEnumerable(losses.Select(l => new LossRow { Loss = (float)l }));

    [TestMethod]
    public void AucEqualsTheMannWhitneyStatisticOfTheFixtureWithTies()
    {
        var c = EvaluationData.Fixture.GetProperty("auc");
        var m = EvaluationData.Doubles(c.GetProperty("members"));
        var n = EvaluationData.Doubles(c.GetProperty("non_members"));
        Assert.AreEqual(c.GetProperty("auc").GetDouble(), MembershipStatistics.Auc(m, n), 1e-12);
        Assert.AreEqual(1 - c.GetProperty("auc").GetDouble(), MembershipStatistics.Auc(n, m), 1e-12);
        // Through the catalog: the loss-threshold attack scores −loss.
        var audit = Ml.Data.AuditMembership(Losses(m.Select(v => -v)), Losses(n.Select(v => -v)),
            new MembershipAuditOptions { Attack = MembershipAttack.LossThreshold, ScoreColumnName = "Loss" });
        Assert.AreEqual(c.GetProperty("auc").GetDouble(), audit.Auc, 1e-12);
    }

    [TestMethod]
    public void RocStatisticsOfASmallHandExample()
    {
        // Members {4, 3, 1}, non-members {2, 0, 0}: 4 and 3 beat all three, 1 beats the two zeros: AUC = 8/9.
        var r = MembershipStatistics.Compute([4, 3, 1], [2, 0, 0], delta: 0, alpha: 0.05);
        Assert.AreEqual(8.0 / 9, r.Auc, 1e-15);
        Assert.AreEqual(0.5 * (2.0 / 3 + 1), r.BalancedAccuracy, 1e-15); // t = 3: TPR 2/3, FPR 0
        Assert.AreEqual(2.0 / 3, r.TprAtFpr1Percent, 1e-15);
        Assert.AreEqual(2.0 / 3, r.TprAtFpr01Percent, 1e-15);
        Assert.IsLessThanOrEqualTo(r.EpsilonLowerBound, r.EpsilonInterval.Low);
        Assert.IsGreaterThanOrEqualTo(r.EpsilonLowerBound, r.EpsilonInterval.High);
        var chance = MembershipStatistics.Compute([1, 1], [1, 1], 0, 0.05);
        Assert.AreEqual(0.5, chance.Auc);
        Assert.AreEqual(0.5, chance.BalancedAccuracy);
        Assert.AreEqual(0.0, chance.EpsilonInterval.Low);
    }

    [TestMethod]
    public void RandomisedResponseIsEpsilonDpAndTheAuditNeverCertifiesMoreThanEpsilon()
    {
        // Each row reports its membership bit through randomised response, truthful with probability e^ε/(1 + e^ε):
        // ε-DP by construction, and the best attack (score = the reported bit) has TPR/FPR = e^ε exactly.
        const double epsilon = 1.0;
        const int rows = 1000, runs = 200;
        double truth = Math.Exp(epsilon) / (1 + Math.Exp(epsilon));
        int below = 0, covered = 0;
        for (int run = 0; run < runs; run++)
        {
            var rng = new Random(run);
            var m = Enumerable.Range(0, rows).Select(_ => rng.NextDouble() < truth ? 1.0 : 0.0).ToArray();
            var n = Enumerable.Range(0, rows).Select(_ => rng.NextDouble() < truth ? 0.0 : 1.0).ToArray();
            var r = MembershipStatistics.Compute(m, n, delta: 0, alpha: 0.05);
            Assert.IsLessThanOrEqualTo(r.EpsilonLowerBound, r.EpsilonInterval.Low);
            Assert.IsGreaterThanOrEqualTo(r.EpsilonLowerBound, r.EpsilonInterval.High);
            below += r.EpsilonInterval.Low <= epsilon ? 1 : 0;
            covered += r.EpsilonInterval.Low <= epsilon && epsilon <= r.EpsilonInterval.High ? 1 : 0;
        }
        Console.WriteLine($"randomised response ε = {epsilon}: Low ≤ ε in {below}/{runs} runs, ε ∈ [Low, High] in {covered}/{runs}");
        Assert.IsGreaterThanOrEqualTo(0.95 * runs, below, $"Low ≤ ε in {below}/{runs} runs");
        Assert.IsGreaterThanOrEqualTo(0.85 * runs, covered, $"ε ∈ [Low, High] in {covered}/{runs} runs");
        // δ lowers the estimate.
        var rr = new Random(1);
        var mm = Enumerable.Range(0, rows).Select(_ => rr.NextDouble() < truth ? 1.0 : 0.0).ToArray();
        var nn = Enumerable.Range(0, rows).Select(_ => rr.NextDouble() < truth ? 0.0 : 1.0).ToArray();
        Assert.IsLessThan(MembershipStatistics.Compute(mm, nn, 0, 0.05).EpsilonInterval.Low, MembershipStatistics.Compute(mm, nn, 0.1, 0.05).EpsilonInterval.Low);
    }

    [TestMethod]
    public void HeldOutThresholdGivesAnIntervalThatCoversRandomisedResponseAndStaysNearZeroWithoutSignal()
    {
        // Randomised response at ε = 1 (see above): the threshold chosen on one half is "reported bit = 1", whose true
        // log(TPR/FPR) is ε; counted on the other half, both Clopper–Pearson ends hold, so [Low, High] covers ε in at
        // least 1 − 4α = 80 % of the runs in expectation (more: each one-sided bound is conservative).
        const double epsilon = 1.0;
        const int rows = 1000, runs = 100;
        double truth = Math.Exp(epsilon) / (1 + Math.Exp(epsilon));
        int covered = 0;
        for (int run = 0; run < runs; run++)
        {
            var rng = new Random(run);
            var m = Enumerable.Range(0, rows).Select(_ => rng.NextDouble() < truth ? 1.0 : 0.0).ToArray();
            var n = Enumerable.Range(0, rows).Select(_ => rng.NextDouble() < truth ? 0.0 : 1.0).ToArray();
            var r = MembershipStatistics.Compute(m, n, delta: 0, alpha: 0.05, holdOutSeed: run, minimumFlagged: 0.1);
            Assert.IsLessThanOrEqualTo(r.EpsilonLowerBound, r.EpsilonInterval.Low);
            Assert.IsGreaterThanOrEqualTo(r.EpsilonLowerBound, r.EpsilonInterval.High);
            covered += r.EpsilonInterval.Low <= epsilon && epsilon <= r.EpsilonInterval.High ? 1 : 0;
        }
        Assert.IsGreaterThanOrEqualTo(0.85 * runs, covered, $"ε ∈ [Low, High] in {covered}/{runs} runs");

        // No signal (members and non-members from the same distribution, the sizes of the synthetic sample): with the
        // threshold held out and flagging at least 10 % of the rows, the whole interval stays below 1 in every run. On
        // the same rows, a chance cluster at the top of the ranking gives upper ends far above 1 in some of these runs.
        int sameRowsAboveOne = 0;
        for (int run = 0; run < runs; run++)
        {
            var rng = new Random(1000 + run);
            double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            var m = Enumerable.Range(0, 628).Select(_ => Gauss()).ToArray();
            var n = Enumerable.Range(0, 540).Select(_ => Gauss()).ToArray();
            var r = MembershipStatistics.Compute(m, n, delta: 1e-5, alpha: 0.05, holdOutSeed: 1, minimumFlagged: 0.1);
            Assert.IsLessThanOrEqualTo(1.0, r.EpsilonInterval.High, $"run {run}: held-out interval [{r.EpsilonInterval.Low}, {r.EpsilonInterval.High}]");
            sameRowsAboveOne += MembershipStatistics.Compute(m, n, 1e-5, 0.05).EpsilonInterval.High > 1 ? 1 : 0;
        }
        Console.WriteLine($"no signal: same-rows upper end above 1 in {sameRowsAboveOne}/{runs} runs, held-out in 0/{runs}");

        // A memoriser (members at distance 0, non-members further) is still caught on the evaluation half.
        var members = Enumerable.Repeat(0.0, 300).ToArray();
        var others = Enumerable.Range(0, 300).Select(i => -1.0 - i).ToArray();
        var caught = MembershipStatistics.Compute(members, others, 1e-5, 0.05, holdOutSeed: 2, minimumFlagged: 0.1);
        Assert.IsGreaterThan(3.0, caught.EpsilonInterval.Low);
        Assert.AreEqual(double.PositiveInfinity, caught.EpsilonInterval.High);
    }

    [TestMethod]
    public void DistanceToClosestRecordMatchesTheNumPyScores()
    {
        var c = EvaluationData.Fixture.GetProperty("dcr");
        int d = c.GetProperty("d").GetInt32();
        var members = EvaluationData.View(Ml, EvaluationData.Floats(c.GetProperty("members")), d);
        var nonMembers = EvaluationData.View(Ml, EvaluationData.Floats(c.GetProperty("non_members")), d);
        var synthetic = EvaluationData.View(Ml, EvaluationData.Floats(c.GetProperty("synthetic")), d);
        var o = new MembershipAuditOptions { SyntheticData = synthetic, BlockSize = 16 };
        var audit = Ml.Data.AuditMembership(members, nonMembers, o);
        Assert.AreEqual(c.GetProperty("auc").GetDouble(), audit.Auc, 1e-12);
        var expected = MembershipStatistics.Compute(EvaluationData.Doubles(c.GetProperty("member_scores")),
            EvaluationData.Doubles(c.GetProperty("non_member_scores")), 0, 0.05);
        Assert.AreEqual(expected.ToString(), audit.ToString());
        Assert.IsGreaterThan(0.8, audit.Auc); // the synthetic rows are noisy copies of the members
    }

    [TestMethod]
    public void ShadowAttackModelSeparatesShiftedMembersAndNotExchangeableOnes()
    {
        var members = EvaluationData.Mixture(200, 4, 1, seed: 1);
        var shifted = new VectorSet(members.Data.Select(v => v + 0.8f).ToArray(), 200, 4);
        var nonMembers = EvaluationData.Mixture(200, 4, 1, seed: 2);
        var o = new MembershipAuditOptions
        {
            Attack = MembershipAttack.Shadow,
            ShadowTrainer = v => Ml.BinaryClassification.Trainers.LbfgsLogisticRegression().Fit(v),
            Seed = 3,
        };
        var leaky = Ml.Data.AuditMembership(EvaluationData.View(Ml, shifted), EvaluationData.View(Ml, nonMembers), o);
        Console.WriteLine($"shadow, shifted members: {leaky}");
        Assert.IsGreaterThan(0.8, leaky.Auc, leaky.ToString());
        Assert.IsGreaterThan(0.0, leaky.EpsilonInterval.Low, leaky.ToString());
        var fair = Ml.Data.AuditMembership(EvaluationData.View(Ml, members), EvaluationData.View(Ml, nonMembers), o);
        Assert.AreEqual(0.5, fair.Auc, 0.1, fair.ToString());
        CollectionAssert.AreEquivalent(new[] { 0, 1 }, MembershipAudit.Folds(7, 1).Distinct().ToArray());
        Assert.AreEqual(3, MembershipAudit.Folds(7, 1).Count(f => f == 0));
    }

    [TestMethod]
    public void BadInputsFailWithTheColumnOrTheMissingOption()
    {
        var x = EvaluationData.View(Ml, EvaluationData.Mixture(10, 3, 1, seed: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Data.AuditMembership(x, x, new MembershipAuditOptions { MinimumFlaggedFraction = 1 }));
        var e = Assert.Throws<ArgumentException>(() => Ml.Data.AuditMembership(x, x, new MembershipAuditOptions()));
        StringAssert.Contains(e.Message, "SyntheticData");
        e = Assert.Throws<ArgumentException>(() => Ml.Data.AuditMembership(x, x, new MembershipAuditOptions { Attack = MembershipAttack.Shadow }));
        StringAssert.Contains(e.Message, "ShadowTrainer");
        var r = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Data.AuditMembership(x, x, new MembershipAuditOptions { Attack = MembershipAttack.LossThreshold, ScoreColumnName = "Loss" }));
        StringAssert.Contains(r.Message, "'Loss'");
        r = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Data.AuditMembership(x, x, new MembershipAuditOptions { Attack = MembershipAttack.LossThreshold, ScoreColumnName = "Features" }));
        StringAssert.Contains(r.Message, "'Features'");
        StringAssert.Contains(r.Message, "Single or Double");
        var g2 = EvaluationData.View(Ml, EvaluationData.Mixture(10, 2, 1, seed: 1));
        r = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Data.AuditMembership(x, x, new MembershipAuditOptions { SyntheticData = g2 }));
        StringAssert.Contains(r.Message, "'Features'");
        StringAssert.Contains(r.Message, "Vector<Single, 2>");
        r = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Data.AuditMembership(x, x, new MembershipAuditOptions { SyntheticData = x, Alpha = 0 }));
        StringAssert.Contains(r.Message, "Alpha");
    }
}
