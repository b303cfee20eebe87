using System.Globalization;
using Allauzen.ML.Diachronic;
using Allauzen.ML.Plots;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Diachronic;

/// <summary>The estimator contract, the model object's API, and bad input.</summary>
[TestClass]
public sealed class DiachronicEmbeddingsTests
{
    private sealed class FloatTimeRow
    {
        public string[] Tokens { get; set; } = [];

        public float Slice { get; set; }
    }

    private sealed class NoTimeRow
    {
        public string[] Tokens { get; set; } = [];
    }

    [TestMethod]
    public void MeetsTheEstimatorContract()
    {
        var ml = new MLContext(seed: 1);
        var data = DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(3, 40, 1));
        var o = DiachronicTestData.Options(DiachronicModel.IncrementalSkipGram);
        o.TokenEmbeddingsColumnName = "TokenVectors";
        var estimator = ml.Transforms.Text.DiachronicEmbeddings(o);
        var badType = ml.Data.LoadFromEnumerable(new[] { new FloatTimeRow { Tokens = ["a1"], Slice = 0.5f } });
        var missing = ml.Data.LoadFromEnumerable(new[] { new NoTimeRow { Tokens = ["a1"] } });
        var report = EstimatorContract.Check(estimator, data, data, ["Embedding", "TokenVectors"],
            [(badType, "Slice", true), (missing, "Slice", true)], onnx: false);
        Assert.AreEqual(0.0, report.RowMapperMaxDiff);
        var model = (DiachronicEmbeddingsTransformer)report.Transformer;

        // the row vector is the mean of the token vectors of the row's slice
        var first = DiachronicTestData.Synthetic(3, 40, 1).OrderBy(s => s.Slice).First();
        var expected = new float[o.Dimensions];
        int n = 0;
        foreach (var tok in first.Tokens)
        {
            if (model.GetVector(tok, first.Slice) is { } v)
            {
                for (int j = 0; j < v.Length; j++)
                    expected[j] += v[j];
                n++;
            }
        }
        var row = ml.Data.CreateEnumerable<OutRow>(model.Transform(data), reuseRowObject: false).First();
        for (int j = 0; j < expected.Length; j++)
            Assert.AreEqual(expected[j] / n, row.Embedding[j], 1e-6);
        Assert.AreEqual(first.Tokens.Length * o.Dimensions, row.TokenVectors.Length);

        // no ONNX export for a lookup table: a clear error
        var e = Assert.Throws<Exception>(() => ml.Model.ExportToOnnx(model, data, new MemoryStream()));
        StringAssert.Contains(e.Message, "Diachronic");
    }

    private sealed class OutRow
    {
        public float[] Embedding { get; set; } = [];

        public float[] TokenVectors { get; set; } = [];
    }

    [TestMethod]
    public void AcceptsATextColumnAndDateTimeFreeIntegerYears()
    {
        var ml = new MLContext(seed: 1);
        var rows = DiachronicTestData.Synthetic(2, 40, 2).Select(s => new TextRow { Text = string.Join(' ', s.Tokens), Year = 2000 + 2 * s.Slice }).ToList();
        var o = DiachronicTestData.Options(DiachronicModel.AlignedSkipGram);
        o.TokensColumnName = nameof(TextRow.Text);
        o.TimeColumnName = nameof(TextRow.Year);
        o.SliceWidth = 2;
        using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.AreEqual(2, m.SliceCount);
        Assert.AreEqual(2000, m.SliceOrigin);
        Assert.AreEqual(1, m.GetSlice(2003));
        Assert.IsNull(m.GetSlice(2004));
        Assert.IsNotNull(m.GetVector("a1", 1));
    }

    private sealed class DateRow
    {
        public string[] Tokens { get; set; } = [];

        public DateTime Date { get; set; }
    }

    [DataRow(TimeGranularity.Year)]
    [DataRow(TimeGranularity.Month)]
    [DataRow(TimeGranularity.Day)]
    [TestMethod]
    public void BinsADateTimeColumnByTheDeclaredGranularityInFitAndTransform(TimeGranularity granularity)
    {
        var ml = new MLContext(seed: 1);
        var sentences = DiachronicTestData.Synthetic(3, 30, 4);
        // slice s: dates inside the s-th period of width 2 (years, months or days) starting 2010-03-05
        var start = new DateTime(2010, 3, 5, 13, 45, 0);
        DateTime DateOf(int slice, int i) => granularity switch
        {
            TimeGranularity.Year => start.AddYears(2 * slice + i % 2).AddDays(i % 200),
            TimeGranularity.Month => new DateTime(2010, 3, 1).AddMonths(2 * slice + i % 2).AddDays(i % 28).AddHours(i % 24),
            _ => start.Date.AddDays(2 * slice + i % 2).AddMinutes(i % 1439),
        };
        var rows = sentences.OrderBy(s => s.Slice).Select((s, i) => new DateRow { Tokens = s.Tokens, Date = DateOf(s.Slice, i) })
            .OrderBy(r => r.Date).ToList();
        var o = DiachronicTestData.Options(DiachronicModel.IncrementalSkipGram);
        o.TimeColumnName = nameof(DateRow.Date);
        o.Granularity = granularity;
        o.SliceWidth = 2;
        var data = ml.Data.LoadFromEnumerable(rows);
        using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(data);
        long origin = granularity switch
        {
            TimeGranularity.Year => 2010,
            TimeGranularity.Month => 2010 * 12 + 2,
            _ => new DateTime(2010, 3, 5).Ticks / TimeSpan.TicksPerDay,
        };
        Assert.AreEqual(3, m.SliceCount);
        Assert.AreEqual(origin, m.SliceOrigin);
        // the per-slice counts follow the binning: every sentence of slice s was dated inside period s
        foreach (var w in new[] { "a1", "s2", "st0" })
        {
            for (int t = 0; t < 3; t++)
                Assert.AreEqual(sentences.Where(x => x.Slice == t).Sum(x => x.Tokens.Count(tok => tok == w)), m.GetCount(w, t), $"{w} in slice {t}");
        }
        // Transform bins the DateTime of each row the same way: the row vector is the mean of its tokens in its slice
        var probe = new[]
        {
            new DateRow { Tokens = ["a1", "a2"], Date = DateOf(0, 1) },
            new DateRow { Tokens = ["a1", "a2"], Date = DateOf(2, 0) },
            new DateRow { Tokens = ["a1", "a2"], Date = DateOf(0, 0).AddYears(-30) },
        };
        var outRows = ml.Data.CreateEnumerable<EmbeddingRow>(m.Transform(ml.Data.LoadFromEnumerable(probe)), reuseRowObject: false).ToList();
        for (int r = 0; r < 2; r++)
        {
            int slice = r == 0 ? 0 : 2;
            var a1 = m.GetVector("a1", slice)!;
            var a2 = m.GetVector("a2", slice)!;
            for (int j = 0; j < o.Dimensions; j++)
                Assert.AreEqual((a1[j] + a2[j]) / 2, outRows[r].Embedding[j], 1e-6, $"row {r}, slice {slice}");
        }
        Assert.IsFalse(m.GetVector("a1", 0)!.SequenceEqual(m.GetVector("a1", 2)!), "slices 0 and 2 differ");
        Assert.IsTrue(outRows[2].Embedding.All(x => x == 0), "a date before the first slice maps to no slice: zero vector");
    }

    private sealed class EmbeddingRow
    {
        public float[] Embedding { get; set; } = [];
    }

    [TestMethod]
    public void UnknownWordsAndSlicesGiveDocumentedEmptyResults()
    {
        var ml = new MLContext(seed: 1);
        using var m = ml.Transforms.Text.DiachronicEmbeddings(DiachronicTestData.Options(DiachronicModel.IncrementalSkipGram))
            .Fit(DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(2, 30, 3)));
        Assert.IsNull(m.GetVector("never-seen", 0));
        Assert.IsNull(m.GetVector("a1", 7));
        Assert.IsNull(m.GetVector("a1", -1));
        Assert.AreEqual(0, m.GetNearestNeighbors("never-seen", 0).Count);
        Assert.AreEqual(0, m.GetTrajectory("never-seen").Length);
        Assert.AreEqual(0L, m.GetCount("never-seen", 0));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => m.GetDriftRanking(0, 5, 1));
        StringAssert.Contains(e.Message, "slices 0..1");
        // drift ranking: sorted by decreasing drift, restricted by the count in every compared slice
        var ranking = m.GetDriftRanking(0, 1, 20);
        for (int i = 1; i < ranking.Count; i++)
            Assert.IsGreaterThanOrEqualTo(ranking[i].Drift, ranking[i - 1].Drift);
        Assert.IsTrue(ranking.All(x => m.GetCount(x.Word, 0) >= 20 && m.GetCount(x.Word, 1) >= 20));
    }

    [TestMethod]
    public void RejectsEmptySlicesAndConfigurationsThatDoNotFit()
    {
        var ml = new MLContext(seed: 1);
        var sentences = DiachronicTestData.Synthetic(3, 20, 4);
        var gap = DiachronicTestData.ToDataView(ml, sentences.Where(s => s.Slice != 1));
        var e2 = Assert.Throws<InvalidDataException>(() => ml.Transforms.Text.DiachronicEmbeddings(DiachronicTestData.Options(DiachronicModel.IncrementalSkipGram)).Fit(gap));
        StringAssert.Contains(e2.Message, "empty slice");
        StringAssert.Contains(e2.Message, "slice 1");
        var allow = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        allow.AllowEmptySlices = true;
        using (var m = ml.Transforms.Text.DiachronicEmbeddings(allow).Fit(gap))
            Assert.IsNotNull(m.GetVector("a1", 1), "the dynamic model interpolates an empty slice through its prior");

        var big = DiachronicTestData.Options(DiachronicModel.DynamicBernoulli);
        big.MemoryLimitBytes = 10_000;
        var e3 = Assert.Throws<InsufficientMemoryException>(() => ml.Transforms.Text.DiachronicEmbeddings(big).Fit(DiachronicTestData.ToDataView(ml, sentences)));
        StringAssert.Contains(e3.Message, "bytes");
        long need = DiachronicEmbeddingsEstimator.RequiredBytes(DiachronicModel.DynamicBernoulli, 38, 16, 3);
        StringAssert.Contains(e3.Message, need.ToString("N0", CultureInfo.CurrentCulture));

        Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.Text.DiachronicEmbeddings(new DiachronicEmbeddingsOptions { Dimensions = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ml.Transforms.Text.DiachronicEmbeddings(new DiachronicEmbeddingsOptions { ContextSize = 3 }));
    }

    [TestMethod]
    public void ExportsWord2VecTextAndAPngPlot()
    {
        var ml = new MLContext(seed: 1);
        using var m = ml.Transforms.Text.DiachronicEmbeddings(DiachronicTestData.Options(DiachronicModel.AlignedSkipGram))
            .Fit(DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(3, 40, 5)));
        string dir = Path.Combine(Path.GetTempPath(), "alz-diachronic-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string path = Path.Combine(dir, "slice1.txt");
            m.ExportWord2Vec(1, path);
            var lines = File.ReadAllLines(path);
            var header = lines[0].Split(' ');
            Assert.AreEqual(lines.Length - 1, int.Parse(header[0], CultureInfo.InvariantCulture));
            Assert.AreEqual(16, int.Parse(header[1], CultureInfo.InvariantCulture));
            var parts = lines[1].Split(' ');
            var vector = parts.Skip(1).Select(x => float.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            CollectionAssert.AreEqual(m.GetVector(parts[0], 1), vector);
            Assert.AreEqual(0, Directory.GetFiles(dir, "*.tmp").Length);

            string png = Path.Combine(dir, "drift.png");
            m.SaveDriftPlot(png, ["s0", "a1", "st0", "unknown"]);
            var bytes = File.ReadAllBytes(png);
            CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes.Take(4).ToArray());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [TestMethod]
    public void ShiftedWordsTopTheDriftRankingOfEveryModel()
    {
        var ml = new MLContext(seed: 1);
        var data = DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(4, 150, 8));
        foreach (var model in Enum.GetValues<DiachronicModel>())
        {
            using var m = ml.Transforms.Text.DiachronicEmbeddings(DiachronicTestData.Options(model)).Fit(data);
            var top = m.GetDriftRanking(0, 3, 5).Take(4).Select(x => x.Word).ToArray();
            CollectionAssert.AreEquivalent(new[] { "s0", "s1", "s2", "s3" }, top, $"{model}: {string.Join(", ", m.GetDriftRanking(0, 3, 5).Take(8))}");
            var traj = m.GetTrajectory("s0");
            Assert.AreEqual(0.0, traj[0], 1e-6);
            Assert.IsGreaterThan(traj[1], traj[3], $"{model}: s0 moves away from its first-slice position");
        }
    }
}
