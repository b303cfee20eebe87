using Allauzen.ML.Mlp;
using Allauzen.ML.Tests.TestSupport;
using Allauzen.ML.Torch;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Torch;

/// <summary>The native runtime settings: idle OpenMP workers sleep, matrix products are reproducible.</summary>
[TestClass]
public sealed class TorchRuntimeOptionsTests
{
    /// <summary>The variable as the test host inherited it (before Allauzen.ML set anything), read at class load.</summary>
    private static readonly string? InheritedWaitPolicy = Environment.GetEnvironmentVariable(NativeEnvironment.WaitPolicyVariable);
    private static readonly string? InheritedMkl = Environment.GetEnvironmentVariable(NativeEnvironment.MklReproducibilityVariable);

    [TestMethod]
    [OSCondition(OperatingSystems.Linux)]
    public void AfterLoad_TheNativeEnvironmentHasPassiveWaitingAndStrictMkl_UnlessTheUserSetThem()
    {
        TorchRuntime.EnsureInitialized();
        Assert.IsNotNull(TorchRuntime.NativeSettings);
        // libc's environment, where libgomp and oneMKL read them (not .NET's copy).
        Assert.AreEqual(InheritedWaitPolicy ?? "PASSIVE", NativeEnvironment.Get(NativeEnvironment.WaitPolicyVariable));
        Assert.AreEqual(InheritedMkl ?? NativeEnvironment.MklStrictAuto, NativeEnvironment.Get(NativeEnvironment.MklReproducibilityVariable));
        StringAssert.Contains(TorchRuntime.NativeSettings, "OMP_WAIT_POLICY=");
    }

    [TestMethod]
    public void Configure_AfterLoad_RejectsALoadTimeChange_NamingConfigure_AndAcceptsThreads()
    {
        TorchRuntime.EnsureInitialized();
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => TorchRuntime.Configure(new TorchRuntimeOptions { WaitPolicy = OpenMPWaitPolicy.Active }));
        StringAssert.Contains(e.Message, "TorchRuntime.Configure");
        var bad = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => TorchRuntime.Configure(new TorchRuntimeOptions { IntraOpThreads = -2 }));
        StringAssert.Contains(bad.Message, "IntraOpThreads");

        int previous = TorchSharp.torch.get_num_threads();
        try
        {
            TorchRuntime.Configure(new TorchRuntimeOptions { IntraOpThreads = 1 });
            Assert.AreEqual(1, TorchSharp.torch.get_num_threads());
        }
        finally
        {
            TorchRuntime.Configure(new TorchRuntimeOptions { IntraOpThreads = previous });
        }
    }

    [TestMethod]
    public void SameRowsScoredFromFreshlyAllocatedData_AreBitIdentical()
    {
        // With MKL_CBWR unset, oneMKL chooses kernels at run time (buffer layout among the criteria), and the same
        // rows scored from two separately built IDataViews differed in the last bit (seen on this project's
        // 2-core AMD EPYC machine, 5 runs out of 5, in RegistrationFreeLoadTests); AUTO,STRICT removes that.
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(TestData.Blobs(200));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [32, 16], Epochs = 2, BatchSize = 16 }))
            .Fit(train);
        double[][] reference = TestData.ReadColumn(model.Transform(ml.Data.LoadFromEnumerable(TestData.Blobs(200))), "Score");
        for (int trial = 0; trial < 6; trial++)
        {
            _ = new byte[trial * 4099]; // shift later allocations
            var again = TestData.ReadColumn(model.Transform(ml.Data.LoadFromEnumerable(TestData.Blobs(200))), "Score");
            Assert.AreEqual(0.0, TestData.MaxAbsDiff(reference, again), $"trial {trial}");
        }
    }
}
