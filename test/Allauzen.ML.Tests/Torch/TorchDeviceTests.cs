using Allauzen.ML.Torch;
using TorchSharp;

namespace Allauzen.ML.Tests.Torch;

[TestClass]
public sealed class TorchDeviceTests
{
    private static readonly Func<bool> Available = () => true;
    private static readonly Func<bool> Unavailable = () => false;
    private static readonly Func<int> TwoDevices = () => 2;
    private static readonly Func<int> NoCount = () => throw new AssertFailedException("the device count must not be queried");

    [TestMethod]
    public void Resolve_Cpu_IsCanonicalAndCaseInsensitive()
    {
        Assert.AreEqual("cpu", TorchDevice.Resolve("cpu"));
        Assert.AreEqual("cpu", TorchDevice.Resolve("CPU "));
        Assert.AreEqual("cpu", TorchDevice.Resolve("  Cpu\t", gpuDeviceId: 3));
        Assert.AreEqual("cpu", TorchDevice.Resolve("cpu", null, false, Available, NoCount));
    }

    [TestMethod]
    public void Resolve_Auto_OnThisMachine_MatchesCudaAvailability()
    {
        var expected = TorchRuntime.IsCudaAvailable ? "cuda:0" : "cpu";

        Assert.AreEqual(expected, TorchDevice.Resolve("auto"));
        Assert.AreEqual(expected, TorchDevice.Resolve(" AUTO"));
        Assert.AreEqual(expected, TorchDevice.Resolve(null));
    }

    [TestMethod]
    public void Resolve_Auto_WithInjectedCuda()
    {
        Assert.AreEqual("cuda:0", TorchDevice.Resolve("auto", null, false, Available, TwoDevices));
        Assert.AreEqual("cuda:1", TorchDevice.Resolve("auto", 1, false, Available, TwoDevices));
        Assert.AreEqual("cpu", TorchDevice.Resolve("auto", null, false, Unavailable, NoCount));
        Assert.AreEqual("cpu", TorchDevice.Resolve("auto", 1, false, Unavailable, NoCount));
        Assert.ThrowsExactly<InvalidOperationException>(() => TorchDevice.Resolve("auto", 5, false, Available, TwoDevices));
    }

    [TestMethod]
    public void Resolve_Cuda_WithInjectedCuda()
    {
        Assert.AreEqual("cuda:0", TorchDevice.Resolve("cuda", null, false, Available, TwoDevices));
        Assert.AreEqual("cuda:1", TorchDevice.Resolve("cuda", 1, false, Available, TwoDevices));
        Assert.AreEqual("cuda:1", TorchDevice.Resolve("cuda:1", null, false, Available, TwoDevices));
        Assert.AreEqual("cuda:1", TorchDevice.Resolve(" CUDA:1 ", 1, false, Available, TwoDevices));
        Assert.AreEqual("cuda:0", TorchDevice.Resolve("Cuda:0", null, true, Available, TwoDevices));
    }

    [TestMethod]
    public void Resolve_CudaIndexOutOfRange_NamesDeviceCount()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => TorchDevice.Resolve("cuda:2", null, false, Available, TwoDevices));
        Assert.IsTrue(e.Message.Contains("cuda:2", StringComparison.Ordinal), e.Message);
        Assert.IsTrue(e.Message.Contains("only 2 CUDA device(s)", StringComparison.Ordinal), e.Message);
        Assert.IsTrue(e.Message.Contains("cuda:0 to cuda:1", StringComparison.Ordinal), e.Message);

        e = Assert.ThrowsExactly<InvalidOperationException>(() => TorchDevice.Resolve("cuda", 7, true, Available, () => 1));
        Assert.IsTrue(e.Message.Contains("only 1 CUDA device(s)", StringComparison.Ordinal), e.Message);
    }

    [TestMethod]
    public void Resolve_CudaUnavailable_ExplainsBackend()
    {
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => TorchDevice.Resolve("cuda", null, false, Unavailable, NoCount));
        Assert.AreEqual(
            "Device 'cuda:0' was requested but CUDA is not available: this process uses the CPU build of libtorch (TorchSharp-cpu). " +
            "Build with -p:TorchBackend=cuda (package TorchSharp-cuda-linux) on a machine with an NVIDIA driver, or set Device = \"cpu\".",
            e.Message);

        e = Assert.ThrowsExactly<InvalidOperationException>(() => TorchDevice.Resolve("cuda:1", null, false, Unavailable, NoCount, () => true));
        Assert.IsTrue(e.Message.StartsWith("Device 'cuda:1' was requested but CUDA is not available", StringComparison.Ordinal), e.Message);
        Assert.IsTrue(e.Message.Contains("TorchSharp-cuda-linux", StringComparison.Ordinal), e.Message);
        Assert.IsTrue(e.Message.Contains("nvidia-smi", StringComparison.Ordinal), e.Message);
    }

    [TestMethod]
    public void Resolve_CudaUnavailable_FallsBackToCpuWhenAllowed()
    {
        Assert.AreEqual("cpu", TorchDevice.Resolve("cuda", null, true, Unavailable, NoCount));
        Assert.AreEqual("cpu", TorchDevice.Resolve("cuda:3", null, true, Unavailable, NoCount));
    }

    [TestMethod]
    public void Resolve_RealCuda_OnCpuBuild_ThrowsOrFallsBack()
    {
        if (TorchRuntime.IsCudaAvailable)
        {
            Assert.AreEqual("cuda:0", TorchDevice.Resolve("cuda"));
            return;
        }

        var e = Assert.ThrowsExactly<InvalidOperationException>(() => TorchDevice.Resolve("cuda"));
        Assert.IsTrue(e.Message.Contains("TorchSharp-cuda-linux", StringComparison.Ordinal), e.Message);
        Assert.AreEqual("cpu", TorchDevice.Resolve("cuda", fallbackToCpu: true));
    }

    [TestMethod]
    [DataRow("gpu")]
    [DataRow("cuda:x")]
    [DataRow("")]
    [DataRow("   ")]
    [DataRow("cuda:")]
    [DataRow("cuda:-1")]
    [DataRow("cuda:1.5")]
    [DataRow("cuda 1")]
    [DataRow("mps")]
    public void Resolve_InvalidString_ThrowsArgumentExceptionWithValue(string value)
    {
        var e = Assert.ThrowsExactly<ArgumentException>(() => TorchDevice.Resolve(value, null, false, Available, TwoDevices));
        Assert.AreEqual("Device", e.ParamName);
        Assert.IsTrue(e.Message.Contains($"'{value}'", StringComparison.Ordinal), e.Message);
        Assert.IsTrue(e.Message.Contains("\"cuda:N\"", StringComparison.Ordinal), e.Message);
    }

    [TestMethod]
    public void Resolve_GpuDeviceIdConflictsOrNegative_Throws()
    {
        var conflict = Assert.ThrowsExactly<ArgumentException>(() => TorchDevice.Resolve("cuda:1", 0, false, Available, TwoDevices));
        Assert.IsTrue(conflict.Message.Contains("GpuDeviceId", StringComparison.Ordinal), conflict.Message);

        var negative = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => TorchDevice.Resolve("cuda", -1, false, Available, TwoDevices));
        Assert.AreEqual("GpuDeviceId", negative.ParamName);
    }

    [TestMethod]
    public void ToTorch_ConvertsCanonicalStrings()
    {
        var cpu = TorchDevice.ToTorch("cpu");
        Assert.AreEqual(DeviceType.CPU, cpu.type);

        var cuda = TorchDevice.ToTorch("cuda:1");
        Assert.AreEqual(DeviceType.CUDA, cuda.type);
        Assert.AreEqual(1, cuda.index);

        Assert.ThrowsExactly<ArgumentException>(() => TorchDevice.ToTorch("CUDA"));
        Assert.ThrowsExactly<ArgumentException>(() => TorchDevice.ToTorch("auto"));
    }
}
