using Allauzen.ML.Data;
using Allauzen.ML.Foton;

namespace Allauzen.ML.Tests.Core;

/// <summary>
/// The one SplitMix64: the reference stream (Steele, Lea and Flood; Vigna's splitmix64.c, seed 0), and the values the
/// copies still in the tree compute (row keys, FOTON's auxiliary seeds), so replacing them changes no seed.
/// </summary>
[TestClass]
public sealed class SplitMix64Tests
{
    [TestMethod]
    public void StreamMatchesTheReferenceOutputs()
    {
        var rng = new SplitMix64(0);
        Assert.AreEqual(0xE220A8397B1DCDAFUL, rng.Next());
        Assert.AreEqual(0x6E789E6AA1B965F4UL, rng.Next());
        Assert.AreEqual(0x06C45D188009454FUL, rng.Next());
        Assert.AreEqual(0xE220A8397B1DCDAFUL, SplitMix64.Mix(0));
    }

    [TestMethod]
    public void CopiesInTheTreeComputeTheSameValues()
    {
        var gen = new SplitMix64(12345);
        for (int i = 0; i < 1000; i++)
        {
            ulong z = gen.Next();
            Assert.AreEqual(RowKeys.SplitMix(z), SplitMix64.Mix(z), "RowKeys.SplitMix");
            int seed = (int)z;
            ulong stream = z >> 40;
            Assert.AreEqual(FotonTrainStep.DeriveSeed(seed, stream), SplitMix64.Scramble((ulong)(uint)seed + stream * SplitMix64.Gamma), "FotonTrainStep.DeriveSeed");
        }
    }
}
