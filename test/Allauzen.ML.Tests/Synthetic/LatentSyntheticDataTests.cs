using Allauzen.ML.Evaluation;
using Allauzen.ML.Mlp;
using Allauzen.ML.Synthetic;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Synthetic;

/// <summary>The latent mode (flow in an autoencoder's code space) on the shipped digits (pixels 0–16).</summary>
[TestClass]
public sealed class LatentSyntheticDataTests
{
    private const int D = 64;

    /// <summary>(private, public, test): the 80 % training split halved (the autoencoder's public half and the flow's
    /// private half, as the reference code splits MNIST), and the 20 % test split; Label is a key.</summary>
    private static (IDataView Private, IDataView Public, IDataView Test) Digits(MLContext ml)
    {
        var (train, test) = TestData.Digits(ml);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(train);
        var halves = ml.Data.TrainTestSplit(train, 0.5, seed: 3);
        return (ml.Data.Cache(keys.Transform(halves.TrainSet)), ml.Data.Cache(keys.Transform(halves.TestSet)), keys.Transform(test));
    }

    private static PrivateSyntheticDataOptions Options(double epsilon, IDataView? publicData, int steps = 1500, int aeEpochs = 150) => new()
    {
        Epsilon = epsilon,
        ClassConditional = "Label",
        Steps = steps,
        Seed = 1,
        LowerBounds = new float[D],
        UpperBounds = [.. Enumerable.Repeat(16f, D)],
        Latent = new LatentAutoencoderOptions { LatentDimension = 8, Epochs = aeEpochs, Seed = 1, PublicData = publicData },
    };

    private static VectorSet Read(IDataView view) => VectorSet.Read(view, "Features", "feature", D, null, 0);

    /// <summary>The mean over the test classes of SW₂(generated rows of the class, test rows of the class).</summary>
    private static double ClassSlicedWasserstein(VectorSet generated, uint[] labels, VectorSet test, uint[] testLabels)
    {
        double total = 0;
        int counted = 0;
        foreach (uint key in testLabels.Distinct())
        {
            var g = Subset(generated, labels, key);
            var t = Subset(test, testLabels, key);
            if (g.Rows == 0)
                continue;
            total += VectorSetMetrics.SlicedWasserstein(g, t, 200, 1);
            counted++;
        }
        return total / counted;
    }

    private static VectorSet Subset(VectorSet set, uint[] labels, uint key)
    {
        var rows = Enumerable.Range(0, set.Rows).Where(i => labels[i] == key).ToArray();
        var data = new float[rows.Length * set.Dimensions];
        for (int r = 0; r < rows.Length; r++)
            set.Row(rows[r]).CopyTo(data.AsSpan(r * set.Dimensions, set.Dimensions));
        return new VectorSet(data, rows.Length, set.Dimensions);
    }

    [TestMethod]
    public void LatentGeneratorEmitsTheFeatureColumnAndReloadsWithItsDecoder()
    {
        var ml = new MLContext(1);
        var (priv, _, _) = Digits(ml);
        var generator = ml.Transforms.PrivateSyntheticData(Options(5, publicData: null, steps: 30, aeEpochs: 5)).Fit(priv);
        Assert.AreEqual(D, generator.Dimensions);
        Assert.AreEqual(8, generator.Settings.Dimensions, "the flow runs on the 8-d codes");
        var report = generator.PrivacyReport;
        Assert.AreEqual(DpSlicedWasserstein.AnalyticNoiseScale(70, 8, 5, 1e-5), report.Sigma, 1e-12, "σ is the one of d = 8 and the whole (ε, δ): the class releases read disjoint rows");
        Assert.IsFalse(report.CoversWholeGenerator, "an autoencoder trained on the private rows is outside the guarantee");
        StringAssert.Contains(report.Mechanism, "NOT covered");

        var a = generator.Generate(45, 5);
        Assert.AreEqual(priv.Schema["Features"].Type, a.Schema["Features"].Type);
        Assert.AreEqual(priv.Schema["Label"].Type, a.Schema["Label"].Type);
        var x = Read(a).Data;
        Assert.IsTrue(x.All(v => v is >= 0 and <= 16), "decoded pixels are clamped to the public bounds [0, 16]");
        CollectionAssert.AreEqual(x, Read(generator.Generate(45, 5)).Data, "generation is deterministic per seed");

        string path = Path.Combine(Path.GetTempPath(), $"dpsw-latent-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(generator, priv.Schema, path);
            var loaded = (PrivateSyntheticDataTransformer)new MLContext(2).Model.Load(path, out _);
            Assert.AreEqual(report, loaded.PrivacyReport);
            Assert.IsNotNull(loaded.Latent);
            Assert.AreEqual(D, loaded.Dimensions);
            var b = loaded.Generate(45, 5);
            CollectionAssert.AreEqual(x, Read(b).Data, "the reloaded generator decodes the same rows for the same seed");
            CollectionAssert.AreEqual(a.GetColumn<uint>("Label").ToArray(), b.GetColumn<uint>("Label").ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void PublicAutoencoderCoversTheWholeGeneratorAndCodesLieInTheUnitBall()
    {
        var ml = new MLContext(1);
        var (priv, pub, _) = Digits(ml);
        var generator = ml.Transforms.PrivateSyntheticData(Options(double.PositiveInfinity, pub, steps: 1, aeEpochs: 3)).Fit(priv);
        Assert.IsTrue(generator.PrivacyReport.CoversWholeGenerator);
        StringAssert.Contains(generator.PrivacyReport.Mechanism, "Latent.PublicData");
        Assert.IsFalse(generator.Latent!.Architecture.TrainedOnPrivateData);
        // Without noise the released quantiles are projections of the codes on unit directions: |θ·z| ≤ ‖z‖ < 1.
        foreach (float q in generator.ReleasedQuantiles)
            Assert.IsTrue(Math.Abs(q) < 1f, $"released quantile {q}: a code left the unit ball");
    }

    [TestMethod]
    public void LatentOptionsAreCheckedWithTheOptionNamed()
    {
        var ml = new MLContext(1);
        var (priv, _, _) = Digits(ml);
        var clip = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions
        {
            ClipNorm = 4, Latent = new LatentAutoencoderOptions(),
        }));
        StringAssert.Contains(clip.Message, "ClipNorm");
        Assert.Throws<ArgumentException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions
        {
            CategoricalSlots = [[0, 1]], Latent = new LatentAutoencoderOptions(),
        }));
        var size = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.PrivateSyntheticData(new PrivateSyntheticDataOptions
        {
            Latent = new LatentAutoencoderOptions { LatentDimension = 0 },
        }));
        StringAssert.Contains(size.Message, "LatentDimension");
        var narrow = ml.Transforms.SelectColumns("Features").Fit(priv).Transform(priv);
        var wrong = ml.Transforms.Concatenate("Features", "Features", "Features").Fit(narrow).Transform(narrow);
        var publicSize = Assert.Throws<ArgumentOutOfRangeException>(() =>
            ml.Transforms.PrivateSyntheticData(Options(5, wrong, steps: 1, aeEpochs: 1)).Fit(priv));
        StringAssert.Contains(publicSize.Message, "PublicData");
    }

    /// <summary>
    /// The sample's setting (class-conditional, d = 8, autoencoder on the public half) over ε ∈ {1, 5, 10, ∞}, with
    /// <see cref="Repeats"/> independent releases per finite ε (one at ε = ∞, where the fit is seeded and noise-free):
    /// the mean class-conditional SW₂ to the test images decreases with ε, the mean train-on-synthetic accuracy rises
    /// from ε = 1 to ε = 10 and from every finite ε to ε = ∞, the mean SW₂ is smallest without noise, accuracy without
    /// noise is far above chance, the membership audit's ε̂ interval (threshold chosen on held-out rows) has its lower
    /// end below ε in every release and its upper end below ε in the median release of each ε, and no generated image
    /// equals a private one.
    /// </summary>
    /// <remarks>
    /// The release noise is secret (drawn from the OS generator), so each run is a new draw; the asserted pairs are those
    /// whose mean gap is about 4 standard deviations of the difference of the means or more (failure below about 1e-4
    /// per run, docs/results/synthetic-utility.md). TSTR between neighbouring finite ε (5 → 10: gaps of 0.005–0.21 in
    /// this split) and the unconditional SW₂ between finite ε are too close for this many releases; the sample checks
    /// them with 5 releases per ε.
    /// </remarks>
    [TestMethod]
    [TestCategory("Slow")]
    public void DigitsUtilityIsMonotoneInEpsilonAndTheAuditStaysBelowIt()
    {
        var ml = new MLContext(1);
        var (priv, pub, test) = Digits(ml);
        var privSet = Read(priv);
        var testSet = Read(test);
        double[] epsilons = [1, 5, 10, double.PositiveInfinity];
        var testLabels = test.GetColumn<uint>("Label").ToArray();
        var sw2 = new List<double>();
        var classSw2 = new List<double>();
        var accuracy = new List<double>();
        var log = new List<string>();
        foreach (double eps in epsilons)
        {
            var (w, c, a) = (new List<double>(), new List<double>(), new List<double>());
            var highs = new List<double>();
            for (int r = 0; r < (double.IsFinite(eps) ? Repeats : 1); r++)
            {
                var generator = ml.Transforms.PrivateSyntheticData(Options(eps, pub)).Fit(priv);
                Assert.IsTrue(generator.PrivacyReport.CoversWholeGenerator);
                var synthetic = ml.Data.Cache(generator.Generate(privSet.Rows, 2));
                var synSet = Read(synthetic);
                w.Add(VectorSetMetrics.SlicedWasserstein(synSet, testSet, 200, 1));
                c.Add(ClassSlicedWasserstein(synSet, synthetic.GetColumn<uint>("Label").ToArray(), testSet, testLabels));
                var model = ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [128], Epochs = 30, Seed = 1 }).Fit(synthetic);
                a.Add(ml.MulticlassClassification.Evaluate(model.Transform(test)).MicroAccuracy);
                var audit = ml.Data.AuditMembership(priv, test, new MembershipAuditOptions
                {
                    SyntheticData = synthetic, Delta = 1e-5, Seed = 1, HoldOutThreshold = true, MinimumFlaggedFraction = 0.1,
                });
                // An (ε, δ)-DP release gives TPR ≤ e^ε·FPR + δ at every threshold. The threshold is chosen on half of the
                // rows and the interval counted on the other half, so its ends are Clopper–Pearson bounds of the true value
                // at a fixed threshold, which is at most ε. The lower end refutes the guarantee if it passes ε (probability
                // ≤ 2α under a release at the boundary, essentially never at this one's true value near 0): every release.
                // The upper end is the audit's power, not a guarantee: it stays below ε when the evaluation half flags
                // enough rows, and a rare threshold that flags few of them there widens it (1.34 at ε = 1 once in
                // session 11's CI, 0.34 once in 15 earlier runs): the median release of each ε.
                if (double.IsFinite(eps))
                {
                    Assert.IsTrue(audit.EpsilonInterval.Low <= eps, $"ε = {eps}: the audit's lower end {audit.EpsilonInterval.Low} refutes the reported ε");
                    highs.Add(audit.EpsilonInterval.High);
                }
                for (int i = 0; i < synSet.Rows; i++)
                {
                    for (int j = 0; j < privSet.Rows; j++)
                        Assert.IsTrue(synSet.ExactSquaredDistance(i, privSet, j) > 0, $"ε = {eps}: generated row {i} equals private row {j}");
                }
                log.Add($"ε = {eps}, release {r + 1}: SW₂ {w[^1]:F4}, class SW₂ {c[^1]:F4}, TSTR {a[^1]:F3}, audit {audit}");
                Console.WriteLine(log[^1]);
            }
            if (highs.Count > 0)
            {
                double median = highs.Order().ElementAt(highs.Count / 2);
                Assert.IsTrue(median <= eps, $"ε = {eps}: the median release's audit upper end {median} is not below the reported ε ({string.Join(", ", highs)})");
            }
            sw2.Add(w.Average());
            classSw2.Add(c.Average());
            accuracy.Add(a.Average());
        }
        // Decoded codes lie on the autoencoder's sphere at every ε, so the unconditional SW₂ differs little between the
        // finite ε (0.065–0.080 in the sample); what the noise destroys is the class structure, which the class-conditional
        // SW₂ and the accuracy measure. Means over the releases; indices: 0 → ε = 1, 2 → ε = 10, 3 → ε = ∞.
        string values = $"means: SW₂ {string.Join(", ", sw2)}; class SW₂ {string.Join(", ", classSw2)}; TSTR {string.Join(", ", accuracy)}; releases: {string.Join("; ", log)}";
        for (int i = 1; i < epsilons.Length; i++)
            Assert.IsTrue(classSw2[i] < classSw2[i - 1], $"class-conditional SW₂ must decrease with ε: {values}");
        Assert.IsTrue(accuracy[0] < accuracy[2], $"train-on-synthetic accuracy must be higher at ε = 10 than at ε = 1: {values}");
        for (int i = 0; i < 3; i++)
        {
            Assert.IsTrue(sw2[i] > sw2[^1], $"SW₂ must be smallest without noise: {values}");
            Assert.IsTrue(accuracy[i] < accuracy[^1], $"accuracy must be best without noise: {values}");
        }
        Assert.IsTrue(accuracy[^1] >= 0.85, $"train-on-synthetic accuracy without noise {accuracy[^1]} (the real rows give ≈ 0.94)");
    }

    /// <summary>Independent releases per finite ε in <see cref="DigitsUtilityIsMonotoneInEpsilonAndTheAuditStaysBelowIt"/>
    /// (about 7 CPU-s each; the test stays near 1.2 min on a quiet machine).</summary>
    private const int Repeats = 3;
}
