using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Torch;

/// <summary>
/// <see cref="KeptScalars"/> replaces TorchSharp's implicit (finalizer-freed) Scalars: it must make the very Scalar the
/// implicit conversion makes, so every result is bit-identical (same machine, same native call: exact comparison).
/// </summary>
[TestClass]
public sealed class KeptScalarsTests
{
    private static float[] Values(Tensor t) => t.contiguous().data<float>().ToArray();

    private static void AssertSameBits(Tensor expected, Tensor actual, string what)
    {
        Assert.AreEqual(expected.dtype, actual.dtype, what);
        CollectionAssert.AreEqual(
            Values(expected).Select(BitConverter.SingleToInt32Bits).ToArray(),
            Values(actual).Select(BitConverter.SingleToInt32Bits).ToArray(), what);
    }

    [TestMethod]
    public void KeptScalars_GiveTheImplicitConversionsBits()
    {
        using var scope = NewDisposeScope();
        using var gen = new Generator(7);
        var x = randn([257], generator: gen) * 3;
        double h = 1.0 / 3, p = Math.Pow(2, -5);
        float f = 0.1f;
        using var kept = new KeptScalars();
        AssertSameBits(h * x, kept.Of(h) * x, "double * tensor");
        AssertSameBits(x * f, x * kept.Of(f), "tensor * float");
        AssertSameBits(2 * x, kept.Of(2) * x, "int * tensor");
        AssertSameBits(x / h, x / kept.Of(h), "tensor / double");
        AssertSameBits(x - 7L + 3, x - kept.Of(7L) + kept.Of(3), "tensor - long + int");
        AssertSameBits(1 / x, kept.Of(1) / x, "int / tensor");
        AssertSameBits(x.abs().pow(p), x.abs().pow(kept.Of(p)), "pow(double)");
        AssertSameBits(x.clamp_min(1e-30), x.clamp_min(kept.Of(1e-30)), "clamp_min(double)");
        AssertSameBits(x.masked_fill(x > 0, 1), x.masked_fill(x > kept.Of(0), kept.Of(1)), "masked_fill");
    }

    [TestMethod]
    public void LeakyRelu_MatchesTorchSharpModule()
    {
        using var scope = NewDisposeScope();
        using var gen = new Generator(3);
        var x = randn([64, 9], generator: gen);
        using var reference = nn.LeakyReLU(0.01);
        using var ours = new LeakyRelu(0.01);
        AssertSameBits(reference.forward(x), ours.forward(x), "LeakyReLU(0.01)");
    }

    [TestMethod]
    public void Dispose_FreesEveryScalar()
    {
        using var x = ones(3);
        Scalar s;
        using (var kept = new KeptScalars())
        {
            s = kept.Of(0.5);
            using var y = x * s;
            Assert.AreEqual(0.5f, y[0].item<float>());
        }
        Assert.ThrowsExactly<InvalidOperationException>(() => x * s);
    }
}
