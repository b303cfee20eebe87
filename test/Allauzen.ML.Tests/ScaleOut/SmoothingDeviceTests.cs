using Allauzen.ML.Smoothing;
using Allauzen.ML.Tests.Smoothing;
using Microsoft.ML;

namespace Allauzen.ML.Tests.ScaleOut;

/// <summary>Smoothing's Device ("auto" as the trainers) and the ONNX base model's CUDA execution provider on a CPU-only machine.</summary>
[TestClass]
public sealed class SmoothingDeviceTests
{
    [TestMethod]
    public void DeviceDefaultsToAutoAndAnExplicitDeviceMustBeTheModels()
    {
        Assert.AreEqual("auto", new RandomizedSmoothingOptions().Device);
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(SplitIndependenceTests.Rows(4));
        var options = new RandomizedSmoothingOptions { BaseModel = RandomizedSmoothingTests.LinearModel(ml), SelectionSamples = 10, EstimationSamples = 50, Alpha = 0.01 };
        ml.Transforms.CertifyRandomizedSmoothing(options).Fit(data).Dispose();
        options.Device = "cpu";
        ml.Transforms.CertifyRandomizedSmoothing(options).Fit(data).Dispose();
        options.Device = "cuda:0";
        var e = Assert.Throws<Exception>(() => ml.Transforms.CertifyRandomizedSmoothing(options).Fit(data));
        Assert.IsTrue(e is InvalidOperationException or ArgumentOutOfRangeException, e.GetType().Name);
        StringAssert.Contains(e.Message, "cuda");
    }

    [TestMethod]
    public void OnnxBaseModelRunsOnTheCpuAndAGpuRequestFailsClearlyOrFallsBack()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(SplitIndependenceTests.Rows(6));
        string path = Path.Combine(Path.GetTempPath(), $"rs-device-{Guid.NewGuid():N}.onnx");
        try
        {
            ml.Model.ExportToOnnx(RandomizedSmoothingTests.LinearModel(ml), ml.Transforms.SelectColumns("Features").Fit(data).Transform(data), path);
            RandomizedSmoothingOptions Options(int? gpu = null, bool? fallback = null) => new()
            {
                BaseModelOnnxPath = path, OnnxInputName = "Features", OnnxOutputName = "Score.output", BaseModelOutputsProbabilities = true,
                SelectionSamples = 10, EstimationSamples = 200, Alpha = 0.01, Seed = 2, RowKeyColumnName = "Id", GpuDeviceId = gpu, FallbackToCpu = fallback,
            };
            using var cpu = ml.Transforms.CertifyRandomizedSmoothing(Options()).Fit(data);
            Assert.AreEqual("CPU", ((OnnxBaseModel)cpu.BaseModel).ExecutionProvider);
            var expected = SplitIndependenceTests.ByKey(cpu.Transform(data), "Id");

            var noGpu = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.CertifyRandomizedSmoothing(Options(gpu: 0)).Fit(data));
            StringAssert.Contains(noGpu.Message, "GpuDeviceId = 0");
            StringAssert.Contains(noGpu.Message, "FallbackToCpu");

            using var fallback = ml.Transforms.CertifyRandomizedSmoothing(Options(gpu: 0, fallback: true)).Fit(data);
            Assert.AreEqual("CPU", ((OnnxBaseModel)fallback.BaseModel).ExecutionProvider);
            CollectionAssert.AreEquivalent(expected.ToList(), SplitIndependenceTests.ByKey(fallback.Transform(data), "Id").ToList());

            // the context's GpuDeviceId / FallbackToCpu apply when the options leave them unset, as for ApplyOnnxModel
            var gpuContext = new MLContext(seed: 1) { GpuDeviceId = 0, FallbackToCpu = false };
            Assert.ThrowsExactly<InvalidOperationException>(() => gpuContext.Transforms.CertifyRandomizedSmoothing(Options()).Fit(data));
            gpuContext.FallbackToCpu = true;
            using var viaContext = gpuContext.Transforms.CertifyRandomizedSmoothing(Options()).Fit(data);
            Assert.AreEqual("CPU", ((OnnxBaseModel)viaContext.BaseModel).ExecutionProvider);
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.CertifyRandomizedSmoothing(Options(gpu: -1)));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
