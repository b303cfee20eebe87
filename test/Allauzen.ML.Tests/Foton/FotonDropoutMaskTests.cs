using Allauzen.ML.Core;
using Allauzen.ML.Foton;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Foton;

/// <summary>
/// The dropout masks of FOTON, PEPITA and backprop in the trainer come from the counter-based uniform stream of
/// <see cref="GaussianNoise.FillBits"/>: element r·width + j of the stream (key of the run, stream = step, domain =
/// layer) keeps unit j of row r when the word is below (1 − p)·2³².
/// </summary>
[TestClass]
public sealed class FotonDropoutMaskTests
{
    [TestMethod]
    [DataRow(ScalarType.Float32)]
    [DataRow(ScalarType.Float64)]
    public void Mask_IsTheThresholdedCounterStream_ScaledByOneOverKeep(ScalarType dtype)
    {
        using var scope = torch.NewDisposeScope();
        const double p = 0.3;
        const int batch = 16, seed = 7, step = 5;
        long[] offsets = [0, 24, 40];
        using var masks = new DropoutMasks(p, seed, step, batch, offsets, dtype, torch.CPU);
        for (int layer = 0; layer < 2; layer++)
        {
            int width = (int)(offsets[layer + 1] - offsets[layer]);
            var words = new uint[batch * width];
            GaussianNoise.FillBits(words, DropoutMasks.Key(seed), step, (uint)layer, NoiseIsa.Scalar);
            var mask = masks.Layer(layer)!;
            Assert.AreEqual(dtype, mask.dtype);
            CollectionAssert.AreEqual(new long[] { batch, width }, mask.shape);
            var values = mask.to(ScalarType.Float64).data<double>().ToArray();
            for (int e = 0; e < words.Length; e++)
            {
                // (1 − p)·2³² = 3006477107.2: words up to 3006477106 keep the unit.
                double expected = words[e] < 3006477107u ? 1 / (1 - p) : 0;
                Assert.AreEqual(expected, values[e], dtype == ScalarType.Float32 ? 1e-7 : 0, $"layer {layer}, element {e}");
            }
        }
    }

    [TestMethod]
    public void KeepBytes_GiveTheFloatMasksValues_AndTheSweepReadingThem_GivesTheSameUpdatesBitForBit()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        const double p = 0.2;
        const int batch = 24;
        var arch = new FotonArchitecture(20, [16, 16, 12], 4, FotonActivation.Tanh);
        long[] offsets = [0, 16, 32, 44];
        using var masks = new DropoutMasks(p, 3, 2, batch, offsets, ScalarType.Float32, torch.CPU);
        for (int layer = 0; layer < 3; layer++)
        {
            Assert.IsTrue(masks.TryKeep(layer, out var keep, out float scale));
            var floats = masks.Layer(layer)!.data<float>().ToArray();
            Assert.HasCount(floats.Length, keep.ToArray());
            for (int e = 0; e < floats.Length; e++)
                Assert.AreEqual(BitConverter.SingleToInt32Bits(floats[e]), BitConverter.SingleToInt32Bits(keep[e] * scale), $"layer {layer}, element {e}");
        }
        using (var none = new DropoutMasks(0, 3, 2, batch, offsets, ScalarType.Float32, torch.CPU))
            Assert.IsFalse(none.TryKeep(0, out _, out _), "no dropout, no keep bytes");
        using (var doubles = new DropoutMasks(p, 3, 2, batch, offsets, ScalarType.Float64, torch.CPU))
            Assert.IsFalse(doubles.TryKeep(0, out _, out _), "float64 masks go through the tensors");

        // The FOTON sweep (float32, stored activations: the host kernels, tanh and ReLU) reading the keep bytes instead of
        // the float masks computes the same products of the same values: identical updates.
        using var g = new Generator(8, torch.CPU);
        var x = torch.randn([batch, 20], generator: g);
        var t = nn.functional.one_hot(torch.randint(4, [batch], generator: g), 4).to(ScalarType.Float32);
        foreach (var activation in new[] { FotonActivation.Tanh, FotonActivation.Relu })
        {
            torch.random.manual_seed(8);
            using var net = OrthogonalMlp.Create(arch with { Activation = activation }, FotonInit.Orthogonal, g, ScalarType.Float32, torch.CPU);
            var f = net.FTranspose();
            Tensor[] Updates(DropoutMasks? keep)
            {
                var updates = new Tensor[net.Weights.Length];
                FotonStep.Run(net, x, t, masks.Layer, f, 1.0, batch, (i, gi) => updates[i] = gi.clone().DetachFromDisposeScope(), keep: keep);
                return updates;
            }
            var fromFloats = Updates(null);
            var fromBytes = Updates(masks);
            for (int i = 0; i < fromFloats.Length; i++)
            {
                Assert.IsGreaterThan(0.0, fromFloats[i].abs().max().ToDouble(), $"{activation} layer {i} has an update");
                Assert.IsTrue(fromFloats[i].eq(fromBytes[i]).all().ToBoolean(), $"{activation} layer {i}: bit for bit");
            }
        }
    }

    [TestMethod]
    public void KeepFraction_IsOneMinusP_AndMasksDifferAcrossLayersAndSteps()
    {
        using var scope = torch.NewDisposeScope();
        const double p = 0.1;
        const int batch = 256;
        long[] offsets = [0, 256, 512];
        using var a = new DropoutMasks(p, 1, 1, batch, offsets, ScalarType.Float32, torch.CPU);
        using var b = new DropoutMasks(p, 1, 2, batch, offsets, ScalarType.Float32, torch.CPU);
        var m0 = a.Layer(0)!.gt(0).to(ScalarType.Float64);
        var m1 = a.Layer(1)!.gt(0).to(ScalarType.Float64);
        var n0 = b.Layer(0)!.gt(0).to(ScalarType.Float64);
        const double n = batch * 256;
        // Binomial(65536, 0.9): standard deviation 0.00117 of the fraction; 5σ.
        foreach (var (m, name) in new[] { (m0, "step 1 layer 0"), (m1, "step 1 layer 1"), (n0, "step 2 layer 0") })
            Assert.AreEqual(1 - p, m.mean().ToDouble(), 5 * Math.Sqrt(p * (1 - p) / n), name);
        // Independent masks: the fraction kept by both is (1 − p)² within 5σ (σ of a Bernoulli(0.81) fraction).
        double both = 0.81, sd = 5 * Math.Sqrt(both * (1 - both) / n);
        Assert.AreEqual(both, (m0 * m1).mean().ToDouble(), sd, "layers 0 and 1 of a step");
        Assert.AreEqual(both, (m0 * n0).mean().ToDouble(), sd, "layer 0 of steps 1 and 2");
        // The same (seed, step, layer) gives the same mask in another object; another seed another mask.
        using var again = new DropoutMasks(p, 1, 1, batch, offsets, ScalarType.Float32, torch.CPU);
        using var other = new DropoutMasks(p, 2, 1, batch, offsets, ScalarType.Float32, torch.CPU);
        Assert.AreEqual(0.0, (again.Layer(0)!.gt(0).to(ScalarType.Float64) - m0).abs().sum().ToDouble());
        Assert.IsGreaterThan(0.0, (other.Layer(0)!.gt(0).to(ScalarType.Float64) - m0).abs().sum().ToDouble());
    }

    [TestMethod]
    public void ZeroDropout_GivesNoMasks()
    {
        using var masks = new DropoutMasks(0, 1, 1, 8, [0, 4], ScalarType.Float32, torch.CPU);
        Assert.IsNull(masks.Layer(0));
        Assert.IsNull(masks.All());
    }
}
