using Allauzen.ML.Torch;

namespace Allauzen.ML.Tests.TestSupport;

[TestClass]
public static class AssemblySetup
{
    /// <summary>Some tests call TorchSharp directly: load the native runtime before any of them.</summary>
    [AssemblyInitialize]
    public static void Init(TestContext _) => TorchRuntime.EnsureInitialized();
}
