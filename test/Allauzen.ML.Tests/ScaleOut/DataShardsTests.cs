using Allauzen.ML.Data;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Smoothing;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.ScaleOut;

[TestClass]
public sealed class DataShardsTests
{
    [TestMethod]
    [DataRow("Id")]
    [DataRow("Name")]
    public void ShardsPartitionTheRowsWhateverTheOrder(string key)
    {
        var ml = new MLContext(seed: 1);
        var rows = SplitIndependenceTests.Rows(200);
        var data = ml.Data.LoadFromEnumerable(rows);
        var reversed = ml.Data.LoadFromEnumerable(rows.Reverse());
        var all = new List<int>();
        for (int s = 0; s < 4; s++)
        {
            var ids = data.Shard(s, 4, key).GetColumn<int>("Id").ToArray();
            CollectionAssert.AreEquivalent(ids, reversed.Shard(s, 4, key).GetColumn<int>("Id").ToArray(), $"shard {s}");
            Assert.IsTrue(ids.Length is > 20 and < 80, $"shard {s} has {ids.Length} of 200 rows");
            all.AddRange(ids);
        }
        CollectionAssert.AreEquivalent(rows.Select(r => r.Id).ToArray(), all.ToArray());
        CollectionAssert.AreEqual(rows.Select(r => r.Id).ToArray(), data.Shard(0, 1, key).GetColumn<int>("Id").ToArray());
    }

    [TestMethod]
    public void ShardArgumentsAreChecked()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(SplitIndependenceTests.Rows(3));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => data.Shard(3, 3, "Id"));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => data.Shard(0, 0, "Id"));
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => data.Shard(0, 2, "Features"));
        StringAssert.Contains(e.Message, "'Features'");
    }

    [TestMethod]
    public void ConcatenateByKeyRestoresKeyOrderAndRefusesDuplicates()
    {
        var ml = new MLContext(seed: 1);
        var rows = SplitIndependenceTests.Rows(50);
        var data = ml.Data.LoadFromEnumerable(rows.Reverse());
        var shards = Enumerable.Range(0, 3).Select(i => data.Shard(i, 3, "Id")).Reverse().ToArray();
        var dir = Directory.CreateTempSubdirectory("shards-").FullName;
        try
        {
            // through the binary IDataView format, as shard outputs travel between machines
            var files = shards.Select((s, i) =>
            {
                string path = Path.Combine(dir, $"s{i}.idv");
                using (var f = File.Create(path))
                    ml.Data.SaveAsBinary(s, f);
                return ml.Data.LoadFromBinary(path);
            }).ToArray();
            var merged = DataShards.ConcatenateByKey(files, "Id");
            CollectionAssert.AreEqual(rows.Select(r => r.Id).ToArray(), merged.GetColumn<int>("Id").ToArray());
            CollectionAssert.AreEqual(rows.SelectMany(r => r.Features).ToArray(), merged.GetColumn<float[]>("Features").SelectMany(f => f).ToArray());
            CollectionAssert.AreEqual(rows.Select(r => r.Name).ToArray(), merged.GetColumn<string>("Name").ToArray());
            Assert.AreEqual(50L, merged.GetRowCount());

            var twice = Assert.ThrowsExactly<ArgumentException>(() => DataShards.ConcatenateByKey([files[0], files[1], files[0]], "Id"));
            StringAssert.Contains(twice.Message, "shard 2 and shard 0");
            var other = ml.Transforms.SelectColumns("Id", "Features").Fit(files[1]).Transform(files[1]);
            Assert.ThrowsExactly<ArgumentException>(() => DataShards.ConcatenateByKey([files[0], other], "Id"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void CertifiedAccuracyCountsOfShardsAddUpToTheWholeCurve()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(SplitIndependenceTests.Rows(60));
        using var certifier = ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = Smoothing.RandomizedSmoothingTests.LinearModel(ml), SelectionSamples = 20, EstimationSamples = 300, Alpha = 0.01, Seed = 3,
            RowKeyColumnName = "Id",
        }).Fit(data);
        double[] radii = [0, 0.05, 0.1, 0.2];
        var whole = ml.MulticlassClassification.EvaluateCertified(certifier.Transform(data), radii: radii, saturationRadius: certifier.SaturationRadius);
        var parts = Enumerable.Range(0, 3).Select(i => ml.MulticlassClassification.EvaluateCertified(certifier.Transform(data.Shard(i, 3, "Id")),
            radii: radii, saturationRadius: certifier.SaturationRadius).Counts).ToArray();
        var merged = CertifiedAccuracyCounts.Sum(parts.Reverse()).ToMetrics();
        Assert.AreEqual(60L, merged.Rows);
        Assert.IsTrue(whole.AbstainRate > 0 && whole.Curve[1].CertifiedAccuracy > 0, whole.ToTable());
        Assert.AreEqual(whole.AbstainRate, merged.AbstainRate);
        Assert.AreEqual(whole.Accuracy, merged.Accuracy);
        CollectionAssert.AreEqual(whole.Curve.ToArray(), merged.Curve.ToArray());
        Assert.ThrowsExactly<ArgumentException>(() => CertifiedAccuracyCounts.Sum([parts[0], new CertifiedAccuracyCounts([0.0], [1], 1, 1, 0, parts[0].SaturationRadius)]));
    }
}
