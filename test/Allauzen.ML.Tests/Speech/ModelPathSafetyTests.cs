using System.Diagnostics;
using System.Security.Cryptography;
using Allauzen.ML.Persistence;
using Allauzen.ML.Speech;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Speech;

/// <summary>Issue #14 row 4: a featurizer that references its ONNX file by path is loaded only on opt-in, reads only a
/// regular file of bounded size, and never prints a file's hash.</summary>
[TestClass]
[DoNotParallelize]
public sealed class ModelPathSafetyTests
{
    private string _dir = "";

    [TestInitialize]
    public void Init()
    {
        _dir = Path.Combine(Path.GetTempPath(), "alz-model-path-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TestCleanup]
    public void Cleanup()
    {
        AppContext.SetSwitch(SslFeaturizerOptions.AllowReferencedModelFilesSwitch, false);
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Saves a by-path featurizer of a private copy of the tiny model; returns (zip, model copy).</summary>
    private (string Zip, string Model) SaveByPath()
    {
        string model = Path.Combine(_dir, "model.onnx");
        File.Copy(SpeechFixtures.Tiny, model);
        var ml = new MLContext(seed: 1);
        var data = SpeechFixtures.Paths(ml, SpeechFixtures.Wav);
        using var t = ml.Transforms.Speech.SslFeaturizer(new SslFeaturizerOptions { ModelPath = model, EmbedModel = false }).Fit(data);
        string zip = Path.Combine(_dir, "featurizer.zip");
        ml.Model.Save(t, data.Schema, zip);
        return (zip, model);
    }

    private static string LoadFails(string zip)
    {
        var ml = new MLContext(seed: 2).UseAllauzen();
        var e = Assert.Throws<Exception>(() => ml.Model.Load(zip, out _));
        return Persistence.PersistenceFixture.AllMessages(e);
    }

    [TestMethod]
    public void ReferencedModel_IsRefusedWithoutOptIn_NamingTheSwitchAndPath()
    {
        var (zip, model) = SaveByPath();
        string m = LoadFails(zip);
        StringAssert.Contains(m, SslFeaturizerOptions.AllowReferencedModelFilesSwitch);
        StringAssert.Contains(m, model);
        StringAssert.Contains(m, "EmbedModel = true");

        AppContext.SetSwitch(SslFeaturizerOptions.AllowReferencedModelFilesSwitch, true);
        var loaded = new MLContext(seed: 2).UseAllauzen().Model.Load(zip, out _);
        Assert.IsInstanceOfType<SslFeaturizerTransformer>(loaded);
        ((IDisposable)loaded).Dispose();
    }

    [TestMethod]
    public void ReferencedPathToDevice_IsRejectedImmediately()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Inconclusive("/dev/zero");
            return;
        }
        var (zip, model) = SaveByPath();
        File.Delete(model);
        File.CreateSymbolicLink(model, "/dev/zero");
        AppContext.SetSwitch(SslFeaturizerOptions.AllowReferencedModelFilesSwitch, true);
        var sw = Stopwatch.StartNew();
        string m = LoadFails(zip);
        Assert.IsLessThan(10.0, sw.Elapsed.TotalSeconds);
        StringAssert.Contains(m, model);
        StringAssert.Contains(m, "not a regular file (it is a character device)");
    }

    [TestMethod]
    public void ReferencedPathToFifoOrFolder_IsRejectedWithoutBlocking()
    {
        var (zip, model) = SaveByPath();
        AppContext.SetSwitch(SslFeaturizerOptions.AllowReferencedModelFilesSwitch, true);
        File.Delete(model);
        Directory.CreateDirectory(model);
        StringAssert.Contains(LoadFails(zip), "not a regular file (it is a directory)");
        Directory.Delete(model);
        if (!OperatingSystem.IsLinux())
            return;
        using (var mkfifo = Process.Start("mkfifo", [model]))
        {
            mkfifo.WaitForExit();
            if (mkfifo.ExitCode != 0)
                return;
        }
        var load = Task.Run(() => LoadFails(zip));
        Assert.IsTrue(load.Wait(TimeSpan.FromSeconds(30)), "opening a FIFO would block");
        StringAssert.Contains(load.Result, "named pipe (FIFO)");
    }

    [TestMethod]
    public void ForeignFileAtTheReferencedPath_FailsWithoutPrintingAnyHash()
    {
        var (zip, model) = SaveByPath();
        byte[] original = File.ReadAllBytes(model);
        byte[] foreign = "root:x:0:0:root:/root:/bin/bash\n"u8.ToArray();
        File.WriteAllBytes(model, foreign);
        AppContext.SetSwitch(SslFeaturizerOptions.AllowReferencedModelFilesSwitch, true);
        string m = LoadFails(zip);
        StringAssert.Contains(m, "does not match the hash recorded in the model");
        StringAssert.Contains(m, model);
        Assert.DoesNotContain(Convert.ToHexStringLower(SHA256.HashData(foreign)), m, "the foreign file's hash");
        Assert.DoesNotContain(Convert.ToHexStringLower(SHA256.HashData(original)), m, "the recorded hash");
        Assert.DoesNotContain("SHA-256 ", m);
    }

    [TestMethod]
    public void RegularFileAboveTheSizeLimit_IsRejected()
    {
        string file = Path.Combine(_dir, "big.onnx");
        File.WriteAllBytes(file, new byte[100]);
        var e = Assert.ThrowsExactly<InvalidDataException>(() => UnixFile.RequireRegularFile(file, 99, "SslFeaturizer: the ONNX model file"));
        StringAssert.Contains(e.Message, "100 bytes, more than the limit of 99 bytes");
        Assert.AreEqual(100L, UnixFile.RequireRegularFile(file, 100, "x"));
    }
}
