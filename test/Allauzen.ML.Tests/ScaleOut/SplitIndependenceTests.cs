using Allauzen.ML.Data;
using Allauzen.ML.Smoothing;
using Allauzen.ML.Tests.Smoothing;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.ScaleOut;

/// <summary>RowKeyColumnName: a row's noise depends on (Seed, key) only, so shards and orders give identical certificates.</summary>
[TestClass]
public sealed class SplitIndependenceTests
{
    public sealed class KeyedRow
    {
        public int Id { get; set; }

        public string Name { get; set; } = "";

        [VectorType(2)]
        public float[] Features { get; set; } = [];

        [KeyType(2)]
        public uint Label { get; set; }
    }

    internal static KeyedRow[] Rows(int n) => [.. Enumerable.Range(0, n).Select(i => new KeyedRow
    {
        Id = 1000 + 7 * i, Name = $"img-{i:D4}", Features = [0.05f * (i % 9) - 0.2f, 0.1f], Label = (i % 9) * 0.05f - 0.2f > 0 ? 0u : 1u, // LoadFromEnumerable reads a [KeyType] uint as 0-based
    })];

    /// <summary>Certificate per key: (predicted key, radius bits, seed), keyed by the key's text.</summary>
    internal static Dictionary<string, (uint Pred, long Radius, ulong Seed)> ByKey(IDataView certified, string key)
    {
        var keys = certified.Schema[key].Type is TextDataViewType
            ? certified.GetColumn<string>(key).ToArray()
            : certified.GetColumn<int>(key).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var pred = certified.GetColumn<uint>(SmoothingColumnNames.PredictedLabel).ToArray();
        var radius = certified.GetColumn<double>(SmoothingColumnNames.CertifiedRadius).ToArray();
        var seed = certified.GetColumn<ulong>(SmoothingColumnNames.NoiseSeed).ToArray();
        return keys.Select((k, i) => (k, i)).ToDictionary(p => p.k, p => (pred[p.i], BitConverter.DoubleToInt64Bits(radius[p.i]), seed[p.i]));
    }

    private static RandomizedSmoothingTransformer Certifier(MLContext ml, IDataView data, string? key) =>
        ml.Transforms.CertifyRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = RandomizedSmoothingTests.LinearModel(ml), SelectionSamples = 20, EstimationSamples = 300, Alpha = 0.01, Seed = 3,
            BatchSize = 128, RowKeyColumnName = key,
        }).Fit(data);

    [TestMethod]
    [DataRow("Id")]
    [DataRow("Name")]
    public void ReversedRowsAndShardsInAnyOrderGiveBitIdenticalCertificatesPerKey(string key)
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows(30);
        var data = ml.Data.LoadFromEnumerable(rows);
        var certifier = Certifier(ml, data, key);
        var whole = ByKey(certifier.Transform(data), key);
        var reversed = ByKey(certifier.Transform(ml.Data.LoadFromEnumerable(rows.Reverse())), key);
        CollectionAssert.AreEquivalent(whole.ToList(), reversed.ToList());

        var shards = Enumerable.Range(0, 3).Select(i => data.Shard(i, 3, key)).ToArray();
        foreach (int[] order in new[] { new[] { 0, 1, 2 }, [2, 0, 1] })
        {
            var merged = new Dictionary<string, (uint, long, ulong)>();
            foreach (int s in order)
            {
                foreach (var (k, v) in ByKey(certifier.Transform(shards[s]), key))
                    merged.Add(k, v); // throws on a key certified twice
            }
            CollectionAssert.AreEquivalent(whole.ToList(), merged.ToList(), $"shard order {string.Join(",", order)}");
        }
        Assert.IsTrue(whole.Values.Select(v => v.Radius).Distinct().Count() > 3, "the rows must not all share one certificate");
    }

    [TestMethod]
    public void WithoutAKeyColumnTheNoiseFollowsTheRowIdAsBefore()
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows(6);
        var certifier = Certifier(ml, ml.Data.LoadFromEnumerable(rows), key: null);
        Assert.IsNull(certifier.RowKeyColumnName);
        var seeds = certifier.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<ulong>(SmoothingColumnNames.NoiseSeed).ToArray();
        for (int i = 0; i < seeds.Length; i++)
            Assert.AreEqual(SmoothingSampler.RowSeed(3, new DataViewRowId((ulong)i, 0)), seeds[i]);
        var reversedSeeds = certifier.Transform(ml.Data.LoadFromEnumerable(rows.Reverse())).GetColumn<ulong>(SmoothingColumnNames.NoiseSeed).ToArray();
        CollectionAssert.AreEqual(seeds, reversedSeeds, "position-seeded: the same positions get the same noise whatever the row");
    }

    [TestMethod]
    public void TheKeyColumnIsCheckedUpFrontAndPersisted()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Rows(4));
        var bad = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Certifier(ml, data, "Missing"));
        StringAssert.Contains(bad.Message, "'Missing'");
        var wrongType = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Certifier(ml, data, "Features"));
        StringAssert.Contains(wrongType.Message, "row key column 'Features'");

        var certifier = Certifier(ml, data, "Id");
        using var ms = new MemoryStream();
        ml.Model.Save(certifier, data.Schema, ms);
        ms.Position = 0;
        var loaded = ml.Model.Load(ms, out _);
        CollectionAssert.AreEquivalent(ByKey(certifier.Transform(data), "Id").ToList(), ByKey(loaded.Transform(data), "Id").ToList());
        var withoutKey = ml.Transforms.SelectColumns("Features", "Label").Fit(data).Transform(data);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => loaded.Transform(withoutKey));
    }

    [TestMethod]
    public void KeyHashesAreStableAcrossVersions()
    {
        // Pinned values (checked against an independent Python FNV-1a/SplitMix64): a change here re-deals every shard and
        // every keyed noise stream; never change it silently.
        Assert.AreEqual(0xECB9BD0C72376DE6UL, DataShards.KeyHash(0L), $"0x{DataShards.KeyHash(0L):X16}");
        Assert.AreEqual(0x31EBF4DB1E8EE993UL, DataShards.KeyHash("img-0001"), $"0x{DataShards.KeyHash("img-0001"):X16}");
        Assert.AreEqual(DataShards.KeyHash("é"), DataShards.KeyHash("\u00e9"));
        Assert.AreNotEqual(DataShards.KeyHash(1L), DataShards.KeyHash("1"));
    }
}
