using System.Buffers.Binary;
using System.IO.Compression;
using Allauzen.ML.Datasets;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Datasets;

[TestClass]
public sealed class FashionMnistTests
{
    private static string WriteIdx(string dir, string name, int magic, int[] dims, byte[] payload, bool gz)
    {
        var header = new byte[4 + 4 * dims.Length];
        BinaryPrimitives.WriteInt32BigEndian(header, magic);
        for (int i = 0; i < dims.Length; i++)
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), dims[i]);
        var path = Path.Combine(dir, name + (gz ? ".gz" : ""));
        using var fs = File.Create(path);
        using Stream s = gz ? new GZipStream(fs, CompressionLevel.Fastest) : fs;
        s.Write(header);
        s.Write(payload);
        return path;
    }

    private static string MakeFolder(int count, bool gz)
    {
        var dir = Directory.CreateTempSubdirectory("fmnist").FullName;
        foreach (var prefix in new[] { "train", "t10k" })
        {
            var px = new byte[count * 784];
            for (int i = 0; i < px.Length; i++)
                px[i] = (byte)(i / 784 * 10 + i % 7);
            WriteIdx(dir, $"{prefix}-images-idx3-ubyte", 0x803, [count, 28, 28], px, gz);
            WriteIdx(dir, $"{prefix}-labels-idx1-ubyte", 0x801, [count], Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray(), gz);
        }
        return dir;
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void ReadsIdxFiles_PlainAndGzip(bool gz)
    {
        var dir = MakeFolder(12, gz);
        Assert.IsTrue(FashionMnist.IsAvailable(dir));
        var rows = FashionMnist.Read(train: false, dir);
        Assert.AreEqual(12, rows.Count);
        Assert.AreEqual("Ankle boot", rows[9].Label);
        Assert.AreEqual(30f + 784 % 7 * 0 + 0, rows[3].Features[0]);
        Assert.AreEqual(30f + 5, rows[3].Features[5]);
        var view = FashionMnist.Load(new MLContext(), true, dir, maxRows: 5);
        Assert.AreEqual(5, view.GetColumn<string>("Label").Count());
        Directory.Delete(dir, true);
    }

    [TestMethod]
    public void MissingOrForeignFiles_ClearErrors()
    {
        var empty = Directory.CreateTempSubdirectory("fmnist-empty").FullName;
        Assert.IsFalse(FashionMnist.IsAvailable(empty));
        var e = Assert.Throws<FileNotFoundException>(() => FashionMnist.Read(true, empty));
        StringAssert.Contains(e.Message, "apt-get install dataset-fashion-mnist");
        var dir = MakeFolder(3, gz: false);
        File.WriteAllBytes(Path.Combine(dir, "t10k-labels-idx1-ubyte"), [0x89, 0x50, 0x4E, 0x47, 0, 0, 0, 3, 1, 2, 3]);
        var f = Assert.Throws<InvalidDataException>(() => FashionMnist.Read(false, dir));
        StringAssert.Contains(f.Message, "t10k-labels-idx1-ubyte");
    }

    [TestMethod]
    [FashionMnistInstalled]
    public void DebianPackage_HasTheFullSplits()
    {
        // CI installs dataset-fashion-mnist (.ci/run); this checks the real files.
        Assert.IsTrue(FashionMnist.IsAvailable(), "dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)");
        var test = FashionMnist.Read(train: false);
        Assert.AreEqual(10_000, test.Count);
        var counts = test.GroupBy(r => r.Label).ToDictionary(g => g.Key, g => g.Count());
        Assert.AreEqual(10, counts.Count);
        Assert.IsTrue(counts.Values.All(c => c == 1000), "the test split has 1,000 images per class");
        Assert.AreEqual(255f, test.Max(r => r.Features.Max()));
    }
}
