using System.Runtime.InteropServices;
using Allauzen.ML.Foton;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Foton;

/// <summary>
/// The FOTON step's host kernels: the one-pass tanh difference and the triangular (symmetric) products of the
/// projection, each against an exact or libtorch computation. Not in parallel with other tests: two of them switch MKL's
/// triangular product off for a moment (a process-wide switch).
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class FotonKernelTests
{
    [TestMethod]
    public void TanhDifferenceKernel_MatchesFloat64_AndEveryLaneGivesTheScalarBits()
    {
        var rng = new Random(7);
        int n = 10_007; // not a multiple of the vector width: the scalar tail runs too
        var a = new double[n];
        var step = new double[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = rng.NextDouble() * 24 - 12;
            // Steps over 12 decades, both signs, up to |δ| = 1, and some around the Taylor/exponential switch (1/8); one
            // stretch of large steps only and one of small steps only, so that whole vectors take each branch alone.
            step[i] = i is >= 4000 and < 4400 ? (rng.NextDouble() * 0.8 + 0.2) * (rng.Next(2) * 2 - 1)
                : i is >= 6000 and < 6400 ? (rng.NextDouble() * 2 - 1) * 0.1
                : i % 10 == 0 ? (rng.NextDouble() * 0.02 + 0.115) * (rng.Next(2) * 2 - 1)
                : (rng.NextDouble() * 2 - 1) * Math.Pow(10, -12 * rng.NextDouble());
        }
        var h = a.Select(v => (float)Math.Tanh(v)).ToArray();
        var da = step.Select(v => (float)v).ToArray();
        var d = new float[n];
        Assert.IsTrue(ActivationKernels.Compute(h, da, d, maxStep: 1f));
        double maxAbs = 0, maxRel = 0;
        var one = new float[1];
        for (int i = 0; i < n; i++)
        {
            // The exact value of what the kernel computes for the float32 inputs it saw, t(1 − h²)/(1 − ht), t = tanh δ,
            // in float64 (h's own rounding is part of the input; the identity with tanh(a) − tanh(a − δ) is tested in
            // FotonFastPathTests through OrthogonalMlp.TanhDifference).
            double hi = h[i], t = Math.Tanh(da[i]), exact = t * (1 - hi * hi) / (1 - hi * t);
            double error = Math.Abs(d[i] - exact);
            maxAbs = Math.Max(maxAbs, error);
            maxRel = Math.Max(maxRel, error / Math.Max(Math.Abs(exact), 1e-30));
            Assert.IsTrue(ActivationKernels.Compute(h.AsSpan(i, 1), da.AsSpan(i, 1), one));
            Assert.AreEqual(BitConverter.SingleToInt32Bits(d[i]), BitConverter.SingleToInt32Bits(one[0]), $"element {i}: vector and scalar bits");
        }
        // A few float32 roundings: ≤ 1e-6 relative (e^{2δ} − 1 near the switch at |δ| = 1/8 loses three bits), ≤ 1e-7 absolute.
        Assert.IsLessThanOrEqualTo(1e-6, maxRel, $"max relative error {maxRel:G3}");
        Assert.IsLessThanOrEqualTo(1e-7, maxAbs, $"max absolute error {maxAbs:G3}");
        // With a dropout mask (0 or 1/0.9) the kernel forms δ = mask·da itself: the bits of the premultiplied input.
        var mask = Enumerable.Range(0, n).Select(i => i % 7 == 3 ? 0f : 1f / 0.9f).ToArray();
        var premultiplied = da.Select((v, i) => v * mask[i]).ToArray();
        var expected = new float[n];
        var masked = new float[n];
        Assert.IsTrue(ActivationKernels.Compute(h, premultiplied, expected, maxStep: 1.2f));
        Assert.IsTrue(ActivationKernels.Compute(h, da, masked, maxStep: 1.2f, mask));
        for (int i = 0; i < n; i++)
            Assert.AreEqual(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(masked[i]), $"masked element {i}");
        // The same mask as keep bytes and scale (no float mask): the same bits.
        var keep = mask.Select(v => v == 0 ? (byte)0 : (byte)1).ToArray();
        var fromBytes = new float[n];
        Assert.IsTrue(ActivationKernels.Compute(h, da, fromBytes, 1.2f, keep, 1f / 0.9f));
        for (int i = 0; i < n; i++)
            Assert.AreEqual(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(fromBytes[i]), $"keep-byte element {i}");
        // The bound applies to the masked step: |da| = 1.1 passes 1.2 alone, and fails it once scaled by 1/0.9.
        Assert.IsFalse(ActivationKernels.Compute([0f], [1.1f], new float[1], maxStep: 1.2f, [1f / 0.9f]));
    }

    [TestMethod]
    public void TanhDifferenceKernel_RefusesStepsAboveTheBoundAndNaN_ButComputesLargeStepsWhenUnbounded()
    {
        var h = new float[20];
        var da = new float[20];
        var d = new float[20];
        da[13] = 1.5f;
        Assert.IsFalse(ActivationKernels.Compute(h, da, d, maxStep: 1f), "a vector lane above the bound");
        da[13] = 0;
        da[19] = float.NaN;
        Assert.IsFalse(ActivationKernels.Compute(h, da, d, maxStep: 1f), "NaN in the scalar tail");
        da[19] = 0;
        // Unbounded: large steps saturate to ±1 (tanh 0 − tanh(−δ) = tanh δ), no overflow.
        da[0] = 60;
        da[1] = -60;
        da[2] = 3;
        Assert.IsTrue(ActivationKernels.Compute(h, da, d));
        Assert.AreEqual(1f, d[0]);
        Assert.AreEqual(-1f, d[1]);
        Assert.AreEqual(Math.Tanh(3), d[2], 2e-7);
        Assert.ThrowsExactly<ArgumentException>(() => ActivationKernels.Compute(h, da.AsSpan(1), d));
    }

    [TestMethod]
    public void TanhKernel_MatchesFloat64_WithAndWithoutMask_AndEveryLaneGivesTheScalarBits()
    {
        var rng = new Random(8);
        int n = 4_099;
        var a = new float[n];
        var mask = new float[n];
        for (int i = 0; i < n; i++)
        {
            // Saturated, mid-range, around the Taylor/exponential switch (1/8) and tiny pre-activations.
            a[i] = (i % 4) switch
            {
                0 => (float)(rng.NextDouble() * 40 - 20),
                1 => (float)(rng.NextDouble() * 4 - 2),
                2 => (float)((rng.NextDouble() * 0.02 + 0.115) * (rng.Next(2) * 2 - 1)),
                _ => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, -10 * rng.NextDouble())),
            };
            mask[i] = rng.Next(10) == 0 ? 0f : 1f / 0.9f;
        }
        var h = new float[n];
        var one = new float[1];
        foreach (bool masked in new[] { false, true })
        {
            ActivationKernels.Tanh(a, masked ? mask : default, h);
            double maxRel = 0;
            for (int i = 0; i < n; i++)
            {
                float x = masked ? a[i] * mask[i] : a[i];
                double exact = Math.Tanh(x);
                maxRel = Math.Max(maxRel, Math.Abs(h[i] - exact) / Math.Max(Math.Abs(exact), 1e-30));
                ActivationKernels.Tanh(a.AsSpan(i, 1), masked ? mask.AsSpan(i, 1) : default, one);
                Assert.AreEqual(BitConverter.SingleToInt32Bits(h[i]), BitConverter.SingleToInt32Bits(one[0]), $"element {i}: vector and scalar bits");
            }
            // A few float32 roundings (e^{2x} − 1 near the switch at |x| = 1/8 loses three bits); saturation gives ±1 exactly.
            Assert.IsLessThanOrEqualTo(1e-6, maxRel, $"masked {masked}: max relative error {maxRel:G3}");
        }
        // The mask as keep bytes and scale: the float mask's bits.
        ActivationKernels.Tanh(a, mask, h);
        var fromBytes = new float[n];
        ActivationKernels.Tanh(a, mask.Select(v => v == 0 ? (byte)0 : (byte)1).ToArray(), 1f / 0.9f, fromBytes);
        for (int i = 0; i < n; i++)
            Assert.AreEqual(BitConverter.SingleToInt32Bits(h[i]), BitConverter.SingleToInt32Bits(fromBytes[i]), $"keep-byte element {i}");
        Assert.ThrowsExactly<ArgumentException>(() => ActivationKernels.Tanh(a, mask.AsSpan(1), h));
        Assert.ThrowsExactly<ArgumentException>(() => ActivationKernels.Tanh(a, new byte[n - 1], 1f, h));
    }

    [TestMethod]
    public void ReluKernels_WithKeepBytes_GiveLibtorchsMaskAndReluValues_AndTheDifferenceOfTheMaskedStep()
    {
        using var scope = torch.NewDisposeScope();
        using var g = new Generator(13, torch.CPU);
        int n = 10_007; // the scalar tail runs too
        var a = torch.randn([n], generator: g);
        a[5] = torch.tensor(-0f); // a signed zero
        var da = torch.randn([n], generator: g);
        var keep = torch.rand([n], generator: g).ge(0.2).to(ScalarType.Byte);
        const float scale = 1f / 0.8f;
        var keepBytes = keep.data<byte>().ToArray();
        var m = keep.to(ScalarType.Float32) * scale;

        // Clean pass: Â = M ⊙ A in place (libtorch's product bit for bit), H = relu(Â) (values; ±0 compare equal).
        var masked = a.clone();
        var h = ActivationKernels.MaskRelu(masked, keepBytes, scale);
        var expectedA = a * m;
        Assert.IsTrue(masked.eq(expectedA).all().ToBoolean() && Bits(masked).SequenceEqual(Bits(expectedA)), "Â bit for bit");
        Assert.IsTrue(h.eq(expectedA.relu()).all().ToBoolean(), "relu values");
        Assert.IsTrue(h.ge(0).all().ToBoolean());

        // Modulated pass: d = min(M ⊙ δ, Â) − min(Â, 0) with the kernel's own mask = the three-pass kernel on libtorch's
        // masked step, bit for bit; and the clean output H again.
        var (d, h2) = ActivationKernels.ReluDifferenceAndOutput(expectedA, da, keepBytes, scale);
        var reference = ActivationKernels.ReluDifference(expectedA, da * m);
        Assert.IsTrue(Bits(d).SequenceEqual(Bits(reference)), "d bit for bit");
        Assert.IsTrue(h2.eq(expectedA.relu()).all().ToBoolean(), "H values");
        Assert.ThrowsExactly<ArgumentException>(() => ActivationKernels.MaskRelu(new float[3], new byte[2], 1f, new float[3]));
        Assert.ThrowsExactly<ArgumentException>(() => ActivationKernels.ReluDifferenceAndOutput(new float[3], new float[3], new byte[3], 1f, new float[2], new float[3]));

        static int[] Bits(Tensor t) => t.data<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
    }

    [TestMethod]
    public void ReluDifferenceKernel_GivesLibtorchsThreePassesBitForBit()
    {
        using var scope = torch.NewDisposeScope();
        using var g = new Generator(9, torch.CPU);
        // Both signs, exact zeros in a and δ, and a = δ (the branches' boundaries); 1,001 elements (a scalar tail).
        var a = torch.randn([1001], generator: g);
        var da = torch.randn([1001], generator: g) * 0.5;
        a[7] = 0f; da[8] = 0f; a[9] = 0f; da[9] = 0f; da[10] = a[10]; a[11] = -0f; da[12] = -0f;
        var expected = torch.minimum(da, a).sub_(a.clamp_max(0));
        var actual = ActivationKernels.ReluDifference(a, da);
        var e = expected.data<float>().ToArray();
        var f = actual.data<float>().ToArray();
        for (int i = 0; i < e.Length; i++)
            Assert.AreEqual(BitConverter.SingleToInt32Bits(e[i]), BitConverter.SingleToInt32Bits(f[i]), $"element {i}: {e[i]} vs {f[i]}");
        Assert.ThrowsExactly<ArgumentException>(() => ActivationKernels.ReluDifference(new float[3], new float[2], new float[3]));
    }

    [TestMethod]
    public void LanczosProduct_OfASymmetricMatrix_MatchesFloat64_ForSizesAroundTheVectorWidth()
    {
        // The centring's Lanczos steps multiply by P as Σ_j q_j·(row j of P) (P symmetric): against the float64 product.
        var rng = new Random(11);
        foreach (int n in new[] { 1, 3, 7, 8, 13, 64, 256 })
        {
            var p = new float[n * n];
            for (int i = 0; i < n; i++)
                for (int j = 0; j <= i; j++)
                    p[i * n + j] = p[j * n + i] = (float)(rng.NextDouble() * 2 - 1);
            var q = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var w = Enumerable.Repeat(float.NaN, n).ToArray(); // overwritten, not accumulated into
            Bjorck.SymmetricProduct(p, n, q, w);
            for (int i = 0; i < n; i++)
            {
                double exact = 0, scale = 0;
                for (int j = 0; j < n; j++)
                {
                    exact += (double)p[i * n + j] * q[j];
                    scale += Math.Abs((double)p[i * n + j] * q[j]);
                }
                Assert.AreEqual(exact, w[i], 2 * n * 6e-8 * scale + 1e-30, $"n={n}, row {i}");
            }
        }
    }

    [TestMethod]
    public unsafe void MirrorLower_CopiesTheLowerTriangleOntoTheUpper_ForEverySizeAndBothPrecisions()
    {
        var rng = new Random(3);
        // Multiples of eight take the 8×8 register transpose (float32 with AVX), the others the tiles.
        foreach (int n in new[] { 1, 5, 8, 16, 24, 33, 64, 256 })
        {
            var f = new float[n * n];
            var d = new double[n * n];
            for (int k = 0; k < f.Length; k++)
                d[k] = f[k] = (float)(rng.NextDouble() * 2 - 1);
            var lowerF = (float[])f.Clone();
            var lowerD = (double[])d.Clone();
            fixed (float* pf = f)
                MklTriangularProduct.MirrorLower(pf, n);
            fixed (double* pd = d)
                MklTriangularProduct.MirrorLower(pd, n);
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j <= i; j++)
                {
                    // The lower triangle and the diagonal are untouched; each upper entry is its mirror's value.
                    Assert.AreEqual(lowerF[i * n + j], f[i * n + j], $"float n={n} ({i},{j})");
                    Assert.AreEqual(lowerF[i * n + j], f[j * n + i], $"float n={n} ({j},{i})");
                    Assert.AreEqual(lowerD[i * n + j], d[i * n + j], $"double n={n} ({i},{j})");
                    Assert.AreEqual(lowerD[i * n + j], d[j * n + i], $"double n={n} ({j},{i})");
                }
            }
        }
    }

    [TestMethod]
    public void TriangularProduct_GivesTorchMmWithinFloat32Rounding_ExactlySymmetric_ForEveryOperandLayout()
    {
        using var scope = torch.NewDisposeScope();
        using var g = new Generator(21, torch.CPU);
        if (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
            && Environment.GetEnvironmentVariable("ALLAUZEN_ML_MKL_GEMMT") != "0")
            Assert.IsTrue(MklTriangularProduct.IsAvailable, $"the served libtorch has MKL's gemmt: {MklTriangularProduct.UnavailableReason}");
        if (!MklTriangularProduct.IsAvailable)
            return; // elsewhere the fallback (blocked products) is what Bjorck.SymmetricProduct runs; tested below
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            var wide = torch.randn([96, 250], dtype, generator: g);
            var square = wide.mm(wide.t());
            var cases = new (string Name, Tensor A, Tensor B)[]
            {
                ("W·Wᵀ", wide, wide.t()),
                ("Wᵀ·W", wide.t(), wide),
                ("S·S²", square, square.mm(square)),
                ("Wᵀ·W contiguous copies", wide.t().contiguous(), wide.contiguous()),
            };
            foreach (var (name, a, b) in cases)
            {
                var expected = a.mm(b);
                var actual = MklTriangularProduct.TryMultiply(a, b);
                Assert.IsNotNull(actual, name);
                // Each entry is a k-term dot product: both results are within k·ε·Σ|aᵢ||bᵢ| of the exact one.
                double eps = dtype == ScalarType.Float32 ? 6e-8 : 1.2e-16;
                var bound = a.abs().mm(b.abs()) * (2 * a.shape[1] * eps);
                Assert.IsTrue((actual! - expected).abs().le(bound).all().ToBoolean(), $"{dtype} {name}");
                Assert.AreEqual(0.0, (actual - actual.t()).abs().max().ToDouble(), $"{dtype} {name}: exactly symmetric");
            }
            // Not applicable: non-square result, a strided (sliced) operand, a dtype mix.
            Assert.IsNull(MklTriangularProduct.TryMultiply(wide, wide.t().narrow(1, 0, 50)));
            Assert.IsNull(MklTriangularProduct.TryMultiply(wide.narrow(1, 0, 100), wide.t().narrow(0, 0, 100)));
        }
        Assert.IsNull(MklTriangularProduct.TryMultiply(torch.randn(8, 8), torch.randn(8, 8, ScalarType.Float64)));
    }

    [TestMethod]
    public void SymmetricProduct_WithAndWithoutTheTriangularProduct_AgreesWithinFloat32Rounding()
    {
        using var scope = torch.NewDisposeScope();
        using var g = new Generator(22, torch.CPU);
        var wide = torch.randn([256, 784], generator: g);
        var gram = Bjorck.SymmetricProduct(wide, wide.t());
        bool enabled = MklTriangularProduct.Enabled;
        Tensor blocked;
        try
        {
            MklTriangularProduct.Enabled = false;
            blocked = Bjorck.SymmetricProduct(wide, wide.t());
        }
        finally
        {
            MklTriangularProduct.Enabled = enabled;
        }
        var bound = wide.abs().mm(wide.abs().t()) * (2 * 784 * 6e-8);
        Assert.IsTrue((gram - blocked).abs().le(bound).all().ToBoolean());
        Assert.AreEqual(0.0, (blocked - blocked.t()).abs().max().ToDouble());
        Assert.AreEqual(0.0, (gram - gram.t()).abs().max().ToDouble());
    }

    [TestMethod]
    public void WarmProjection_OnTheHostSide_GivesTheTorchSidesIterationsAndWeights_WithinFloat32Rounding()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var g = new Generator(23, torch.CPU);
        if (!MklTriangularProduct.IsAvailable)
            return; // then both runs below would take the torch side
        // Wide (the 784 → 256 first layer), square, tall and tiny (the output layer) weights, after steps of each size,
        // including ones that need the centring and a second iteration.
        foreach (var (rows, columns) in new[] { (256, 784), (256, 256), (300, 64), (10, 256) })
        {
            bool wide = rows < columns;
            var q = torch.linalg.qr(torch.randn([Math.Max(rows, columns), Math.Min(rows, columns)], ScalarType.Float64, generator: g)).Q;
            var start = (wide ? q.t() : q).contiguous();
            foreach (double size in new[] { 1e-3, 1e-2, 1e-1, 0.4 })
            {
                var w0 = (start + torch.randn(start.shape, ScalarType.Float64, generator: g) * (size / Math.Sqrt(Math.Min(rows, columns)))).to(ScalarType.Float32);
                var host = w0.clone();
                var reference = w0.clone();
                int hostIterations = Bjorck.ProjectWarm(host, 20, 4e-6, out double hostBound);
                int torchIterations;
                double torchBound;
                MklTriangularProduct.Enabled = false;
                try
                {
                    torchIterations = Bjorck.ProjectWarm(reference, 20, 4e-6, out torchBound);
                }
                finally
                {
                    MklTriangularProduct.Enabled = true;
                }
                string where = $"{rows}×{columns}, step {size}";
                Assert.AreEqual(torchIterations, hostIterations, where);
                Assert.AreEqual(torchBound, hostBound, 1e-3 * torchBound + 1e-9, where);
                // Both are the same polynomial in P applied once, in float32: entries agree to a few float32 roundings.
                double difference = (host - reference).abs().max().ToDouble();
                Assert.IsLessThanOrEqualTo(1e-6, difference, $"{where}: max weight difference {difference:G3}");
                Assert.IsLessThanOrEqualTo(4e-6 + 2e-6, Bjorck.OrthogonalityError(host.to(ScalarType.Float64)), where);
            }
        }
    }

    [TestMethod]
    public void FittedStep_LeavesASmallerResidualThanTaylorOverTheInterval_AsReported()
    {
        foreach (double radius in new[] { 0.05, 0.2, 0.45, 0.8 })
        {
            for (int degree = 1; degree <= 4; degree++)
            {
                var fit = Bjorck.FittedStep(degree, radius);
                Assert.IsNotNull(fit, $"radius {radius}, degree {degree}");
                var (c, reported) = fit.Value;
                // The residual 1 − (1 − r)p(r)² over |r| ≤ radius, on a grid eight times finer than the fit's own check.
                double worst = 0;
                for (int i = 0; i <= 2048; i++)
                {
                    double r = radius * (i / 1024.0 - 1), p = 0;
                    for (int j = c.Length - 1; j >= 0; j--)
                        p = p * r + c[j];
                    worst = Math.Max(worst, Math.Abs(1 - (1 - r) * p * p));
                }
                Assert.AreEqual(reported, worst, 0.05 * worst, $"radius {radius}, degree {degree}: reported residual");
                double taylor = Bjorck.ResidualNorm(degree, radius);
                Assert.IsLessThan(0.9 * taylor, worst, $"radius {radius}, degree {degree}: fitted {worst:G3}, Taylor {taylor:G3}");
            }
        }
        Assert.IsNull(Bjorck.FittedStep(2, 0.99), "no fit where the spectrum may reach 0");
    }

    [TestMethod]
    public void WarmProjection_WithFittedSteps_StillMeetsTheToleranceInFloat64()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var g = new Generator(24, torch.CPU);
        foreach (var (rows, columns) in new[] { (64, 160), (96, 96) })
        {
            var q = torch.linalg.qr(torch.randn([Math.Max(rows, columns), Math.Min(rows, columns)], ScalarType.Float64, generator: g)).Q;
            var start = (rows < columns ? q.t() : q).contiguous();
            foreach (double size in new[] { 0.2, 0.5 })
            {
                var w = start + torch.randn(start.shape, ScalarType.Float64, generator: g) * (size / Math.Sqrt(Math.Min(rows, columns)));
                int iterations = Bjorck.ProjectWarm(w, 20, 1e-9, out double bound);
                Assert.IsGreaterThanOrEqualTo(2, iterations, $"{rows}×{columns}, step {size}: a fitted step was taken");
                Assert.IsLessThanOrEqualTo(1e-9, bound);
                Assert.IsLessThanOrEqualTo(1e-9, Bjorck.OrthogonalityError(w), $"{rows}×{columns}, step {size}");
            }
        }
    }
}
