using Allauzen.ML.Core;
using Allauzen.ML.Smoothing;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Smoothing;

/// <summary>
/// The sampler's noise is the documented counter-based stream: vote counts equal those recomputed from
/// <see cref="SmoothingSampler.DrawSample"/>, and certificates depend on (Seed, row, phase, sample) only: not on
/// BatchSize, and the same seed gives the same certificate again.
/// </summary>
[TestClass]
public sealed class SmoothingNoiseTests
{
    private static IDataView Rows(MLContext ml, int count) =>
        ml.Data.LoadFromEnumerable(Enumerable.Range(0, count).Select(i => new RandomizedSmoothingTests.Row { Features = [0.04f * (i - 4), 0.2f], Label = 1 }));

    /// <summary>
    /// The binary linear toy has logits (x0, −x0): a sample votes class 0 iff x0 + σε0 ≥ 0 (ties go to the lower index),
    /// so the counts of both phases are known exactly from the documented streams (key = row seed, stream = sample
    /// index, domain = phase).
    /// </summary>
    [TestMethod]
    public void VoteCountsAreThoseOfTheDocumentedNoiseStreams()
    {
        var ml = new MLContext(seed: 1);
        var data = Rows(ml, 1);
        const int n0 = 37, n = 1234;
        const float sigma = 0.25f, x0 = 0.1f;
        var t = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = RandomizedSmoothingTests.LinearModel(ml), Sigma = sigma, SelectionSamples = n0, EstimationSamples = n, BatchSize = 100, Seed = 5,
        }).Fit(data);
        const ulong rowSeed = 0xABCDEF0123456789UL;
        var stats = new RowStatistics(2, 0);
        stats.Reset(rowSeed);
        float[] features = [x0, 0.2f];
        t.Sampler.Sample(features, 1, [stats], null, default);
        var x = new float[2];
        foreach (var (phase, samples, counts) in new[] { (0, n0, stats.Selection), (1, n, stats.Estimation) })
        {
            long zeros = 0;
            for (int i = 0; i < samples; i++)
            {
                SmoothingSampler.DrawSample(x, rowSeed, phase, i, sigma, features);
                zeros += x[0] >= -x[0] ? 1 : 0;
            }
            Assert.AreEqual(zeros, counts[0], $"phase {phase}: votes for class 0");
            Assert.AreEqual(samples - zeros, counts[1], $"phase {phase}: votes for class 1");
        }
    }

    /// <summary>
    /// Three rows in one call with BatchSize 100, which divides neither n0 = 37 nor n0 + n = 1271: forward batches
    /// straddle phases and rows. Every row's counts are still those of its own streams, whether the noise is drawn
    /// between forward passes (on all cores or on the calling thread) or during them (double buffering).
    /// </summary>
    [TestMethod]
    [DataRow(false, true)]
    [DataRow(false, false)]
    [DataRow(true, true)]
    public void PackedAndOverlappedBatchesCountEachRowsOwnStreams(bool overlap, bool parallel)
    {
        var ml = new MLContext(seed: 1);
        const int n0 = 37, n = 1234;
        const float sigma = 0.25f;
        var t = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = RandomizedSmoothingTests.LinearModel(ml), Sigma = sigma, SelectionSamples = n0, EstimationSamples = n, BatchSize = 100, Seed = 5,
        }).Fit(Rows(ml, 1));
        float[] features = [0.1f, 0.2f, -0.05f, 0.3f, 0.02f, -0.4f];
        var stats = Enumerable.Range(0, 3).Select(r =>
        {
            var s = new RowStatistics(2, 0);
            s.Reset(0x1234UL * (ulong)(r + 1));
            return s;
        }).ToArray();
        (bool? overlapBefore, bool parallelBefore) = (SmoothingSampler.OverlapNoise, SmoothingSampler.ParallelNoise);
        try
        {
            (SmoothingSampler.OverlapNoise, SmoothingSampler.ParallelNoise) = (overlap, parallel);
            t.Sampler.Sample(features, 3, stats, null, default);
        }
        finally
        {
            (SmoothingSampler.OverlapNoise, SmoothingSampler.ParallelNoise) = (overlapBefore, parallelBefore);
        }
        var x = new float[2];
        for (int r = 0; r < 3; r++)
        {
            var centre = features.AsSpan(2 * r, 2);
            foreach (var (phase, samples, counts) in new[] { (0, n0, stats[r].Selection), (1, n, stats[r].Estimation) })
            {
                long zeros = 0;
                for (int i = 0; i < samples; i++)
                {
                    SmoothingSampler.DrawSample(x, stats[r].Seed, phase, i, sigma, centre);
                    zeros += x[0] >= -x[0] ? 1 : 0;
                }
                Assert.AreEqual(zeros, counts[0], $"row {r}, phase {phase}: votes for class 0");
                Assert.AreEqual(samples - zeros, counts[1], $"row {r}, phase {phase}: votes for class 1");
            }
        }
    }

    [TestMethod]
    public void CertificatesDoNotDependOnBatchSizeAndRepeatWithTheSeed()
    {
        var ml = new MLContext(seed: 1);
        var data = Rows(ml, 9);
        double[] Radii(int batchSize, int seed)
        {
            var options = new RandomizedSmoothingOptions
            {
                BaseModel = RandomizedSmoothingTests.LinearModel(ml), SelectionSamples = 30, EstimationSamples = 700, Alpha = 0.01, Seed = seed, BatchSize = batchSize,
            };
            return ml.Transforms.CertifyRandomizedSmoothing(options).Fit(data).Transform(data).GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray();
        }
        var reference = Radii(1000, 3);
        CollectionAssert.AreEqual(reference, Radii(1000, 3), "same seed, same certificates");
        foreach (int batch in new[] { 1, 7, 64, 701 })
            CollectionAssert.AreEqual(reference, Radii(batch, 3), $"BatchSize {batch}");
        CollectionAssert.AreNotEqual(reference, Radii(1000, 4), "another seed, other noise");
    }
}
