using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

[TestClass]
public sealed class AllauzenLoadersTests
{
    [TestMethod]
    public void RegisterIsIdempotentForTheSameType()
    {
        TestScaleTransformer.EnsureRegistered();
        TestScaleTransformer.EnsureRegistered();
        var loader = AllauzenLoaders.TryGet(TestScaleTransformer.Signature);
        Assert.IsNotNull(loader);
        Assert.AreEqual(TestScaleTransformer.Name, loader.ComponentName);
        Assert.AreEqual(typeof(TestScaleTransformer), loader.TransformerType);
        Assert.AreEqual(1, AllauzenLoaders.All.Count(l => l.Signature == TestScaleTransformer.Signature));
    }

    [TestMethod]
    public void SignatureTakenByAnotherTypeIsRejected()
    {
        TestScaleTransformer.EnsureRegistered();
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => AllauzenLoaders.Register(
            TestScaleTransformer.Signature.ToLowerInvariant(), "Other", typeof(NativeBridgeTests.LateTransformer), (_, _) => new NativeBridgeTests.LateTransformer()));
        StringAssert.Contains(ex.Message, TestScaleTransformer.Name);
        StringAssert.Contains(ex.Message, "Other");
    }

    [TestMethod]
    public void InvalidRegistrationsAreRejected()
    {
        Assert.ThrowsExactly<ArgumentException>(() => AllauzenLoaders.Register("TOOLONG!!", "X", typeof(TestScaleTransformer), TestScaleTransformer.Load));
        Assert.ThrowsExactly<ArgumentException>(() => AllauzenLoaders.Register("ALZTSTR_", "X", typeof(string), TestScaleTransformer.Load));
        Assert.IsNull(AllauzenLoaders.TryGet("ALZNOPE_"));
    }

    [TestMethod]
    public void UnavailableMessageNamesMlNetVersionAndFallback()
    {
        string message = NativeBridge.Unavailable("method X.Y was not found");
        StringAssert.Contains(message, "method X.Y was not found");
        StringAssert.Contains(message, typeof(MLContext).Assembly.GetName().Version!.ToString());
        StringAssert.Contains(message, "Microsoft.ML 5.0.1");
        StringAssert.Contains(message, "written for and tested against ML.NET 5.0.1");
        StringAssert.Contains(message, "AllauzenModel.Save/AllauzenModel.Load");
    }
}
