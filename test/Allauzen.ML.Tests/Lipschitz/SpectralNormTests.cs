using Allauzen.ML.Lipschitz;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Lipschitz;

[TestClass]
public sealed class SpectralNormTests
{
    private static readonly string[] ConvCases = ["conv_16x16x3x3_n16", "conv_32x16x3x3_n8", "conv_64x64x3x3_n32"];

    private static (float[] K, int Co, int Ci, int Kh, int Kw, int N) Conv(string name)
    {
        var c = Golden.Case(name);
        var shape = c.GetProperty("kernel_shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        return (Golden.FlatF(c.GetProperty("K")), shape[0], shape[1], shape[2], shape[3], c.GetProperty("n").GetInt32());
    }

    [TestMethod]
    public void Dense64x32_GramMatchesGoldenAndBoundsExactAtEveryIteration()
    {
        var c = Golden.Case("dense_64x32");
        var w = Golden.FlatF(c.GetProperty("W"));
        double exactGolden = c.GetProperty("exact_sigma1").GetDouble();
        var exact = SpectralNorm.DenseExact(w, 64, 32);
        Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(exact.Value, exactGolden), "exact σ1 vs golden");
        double previous = double.PositiveInfinity;
        foreach (var (t, golden) in Golden.ByIter(c.GetProperty("gram_bound_by_iter")))
        {
            var g = SpectralNorm.Dense(w, 64, 32, t);
            Assert.IsTrue(g.IsUpperBound);
            Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(g.Value, golden), $"Gram t={t} vs golden");
            Assert.IsGreaterThanOrEqualTo(exact.Value * (1 - 1e-12), g.Value, $"Gram t={t} is an upper bound");
            Assert.IsLessThanOrEqualTo(previous * (1 + 1e-14), g.Value, $"Gram monotone at t={t}");
            previous = g.Value;
            double rel = g.Value / exact.Value - 1;
            if (t == 6)
                Assert.IsLessThanOrEqualTo(1e-3, rel);
            if (t >= 8)
                Assert.IsLessThanOrEqualTo(1e-12, Math.Abs(rel), $"t={t}");
        }
        foreach (int iters in new[] { 1, 5, 10, 50, 100, 1000 })
        {
            foreach (int seed in new[] { 0, 1, 2 })
            {
                var p = SpectralNorm.DensePowerIteration(w, 64, 32, iters, seed);
                Assert.IsFalse(p.IsUpperBound);
                Assert.IsLessThanOrEqualTo(exact.Value * (1 + 1e-12), p.Value, $"power iteration {iters} seed {seed} is a lower bound");
            }
        }
    }

    [TestMethod]
    public void Dense500x400_GramAboveExactWithIterationDependentTolerance()
    {
        // The golden 500×400 matrix is not stored: a Gaussian matrix of the same shape has the same small spectral gap.
        var rng = new Random(42);
        var w = Enumerable.Range(0, 500 * 400).Select(_ => (float)Allauzen.ML.Tests.TestSupport.TestData.Gaussian(rng)).ToArray();
        double exact = SpectralNorm.DenseExact(w, 500, 400).Value;
        foreach (int t in new[] { 0, 2, 4, 6, 8, 10, 12 })
        {
            double g = SpectralNorm.Dense(w, 500, 400, t).Value;
            Assert.IsGreaterThanOrEqualTo(exact * (1 - 1e-12), g, $"t={t}");
            // Worst case (flat spectrum): rank^{2^-(t+1)} − 1.
            Assert.IsLessThanOrEqualTo(Math.Pow(400, Math.Pow(2, -(t + 1))) - 1 + 1e-12, g / exact - 1, $"t={t} a-priori rate");
            if (t >= 10)
                Assert.IsLessThanOrEqualTo(1e-9, g / exact - 1, $"t={t} converged");
        }
        // Transposed matrix: same norm.
        var wt = new float[w.Length];
        for (int i = 0; i < 500; i++)
        {
            for (int j = 0; j < 400; j++)
                wt[j * 500 + i] = w[i * 400 + j];
        }
        Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(SpectralNorm.Dense(wt, 400, 500, 10).Value, SpectralNorm.Dense(w, 500, 400, 10).Value));
    }

    [TestMethod]
    [DataRow("conv_16x16x3x3_n16")]
    [DataRow("conv_32x16x3x3_n8")]
    public void Circular_GramMatchesGoldenAndBoundsFftSvdExact(string name)
    {
        var (k, co, ci, kh, kw, n) = Conv(name);
        var c = Golden.Case(name).GetProperty("circular");
        var exact = SpectralNorm.ConvCircularExact(k, co, ci, kh, kw, n, n);
        Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(exact.Value, c.GetProperty("exact_fft_svd").GetDouble()), "FFT+SVD vs golden");
        var iters = Golden.ByIter(c.GetProperty("gram_bound_by_iter"));
        var run = co == 64 ? new[] { 6, 7 } : iters.Keys.ToArray();
        foreach (int t in run)
        {
            var g = SpectralNorm.ConvCircular(k, co, ci, kh, kw, n, n, t);
            Assert.IsTrue(g.IsUpperBound);
            Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(g.Value, iters[t]), $"Gram t={t} vs golden");
            Assert.IsGreaterThanOrEqualTo(exact.Value * (1 - 1e-12), g.Value, $"Gram t={t} ≥ exact");
            if (t == 6)
                Assert.IsLessThanOrEqualTo(2e-6, g.Value / exact.Value - 1);
            if (t == 7)
                Assert.IsLessThanOrEqualTo(1e-9, g.Value / exact.Value - 1);
        }
        var p = SpectralNorm.ConvCircularPowerIteration(k, co, ci, kh, kw, n, n, 50, seed: 3);
        Assert.IsFalse(p.IsUpperBound);
        Assert.IsLessThanOrEqualTo(exact.Value * (1 + 1e-12), p.Value, "power iteration ≤ exact");
        Assert.IsGreaterThanOrEqualTo(0.9 * exact.Value, p.Value, "power iteration is a sensible estimate");
    }

    /// <summary>The 64×64 kernel at n = 32 (about 15 s): acceptance-sized, so not in the default run.</summary>
    [TestMethod]
    [TestCategory("Slow")]
    [DataRow("conv_64x64x3x3_n32")]
    public void Circular_GramMatchesGoldenAndBoundsFftSvdExact_Large(string name) => Circular_GramMatchesGoldenAndBoundsFftSvdExact(name);

    [TestMethod]
    [DataRow(8, 4, 3, 5, 7)]
    [DataRow(4, 6, 5, 12, 9)]
    [DataRow(3, 2, 1, 4, 4)]
    public void SymbolParts_EqualTheRfft2HalfSpectrum(int co, int ci, int k, int h, int w)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(co * 100 + h);
        var kt = torch.randn(co, ci, k, k, dtype: ScalarType.Float64);
        var (re, im) = GramIteration.SymbolParts(kt, h, w);
        var sym = GramIteration.Symbol(kt, h, w);
        CollectionAssert.AreEqual(sym.shape, re.shape);
        Assert.IsLessThanOrEqualTo(1e-12, (re - sym.real).abs().max().item<double>(), "real part");
        Assert.IsLessThanOrEqualTo(1e-12, (im - sym.imag).abs().max().item<double>(), "imaginary part");
        // The real-arithmetic Hermitian Gram path agrees with the exact value from the complex symbol's SVD at high t.
        double exact = torch.linalg.svdvals(sym).max().item<double>();
        double bound = GramIteration.Circular(kt, h, w, 12).item<double>();
        Assert.IsLessThanOrEqualTo(1e-10, Math.Abs(bound / exact - 1), "converged Gram bound");
        Assert.IsGreaterThanOrEqualTo(exact * (1 - 1e-12), GramIteration.Circular(kt, h, w, 3).item<double>(), "t = 3 bound");
        Assert.AreEqual(sym.abs().square().sum([1, 2]).sqrt().max().item<double>(), GramIteration.Circular(kt, h, w, 0).item<double>(), 1e-12,
            "t = 0 is the largest per-frequency Frobenius norm");
    }

    [TestMethod]
    public void Circular_FftSvdEqualsUnrolledCirculantSvd()
    {
        var (k, co, ci, kh, kw, n) = Conv("conv_32x16x3x3_n8");
        double fft = SpectralNorm.ConvCircularExact(k, co, ci, kh, kw, n, n).Value;
        // Unroll the circular convolution: circular padding then a valid conv, applied to every basis image.
        using var scope = torch.NewDisposeScope();
        var kt = torch.tensor(k, [co, ci, kh, kw]).to(ScalarType.Float64);
        long nin = ci * n * n;
        var eye = torch.eye(nin, dtype: ScalarType.Float64).reshape(nin, ci, n, n);
        var padded = nn.functional.pad(eye, [1, 1, 1, 1], PaddingModes.Circular);
        var m = nn.functional.conv2d(padded, kt).reshape(nin, -1);
        double unrolled = torch.linalg.svdvals(m)[0].item<double>();
        Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(fft, unrolled), "FFT+SVD vs unrolled circulant SVD");
        double golden = Golden.Case("conv_32x16x3x3_n8").GetProperty("circular").GetProperty("exact_dense_unrolled_svd").GetDouble();
        Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(unrolled, golden), "unrolled vs golden");
    }

    [TestMethod]
    [DataRow("conv_32x16x3x3_n8")]
    public void ZeroPadding_ExactBelowCircularAtNPlusKMinus1BelowBound(string name)
    {
        var (k, co, ci, kh, kw, n) = Conv(name);
        var z = Golden.Case(name).GetProperty("zero");
        double zeroExact = z.TryGetProperty("exact_dense_unrolled_svd", out var u) ? u.GetDouble() : z.GetProperty("lanczos_svds_tol1e-13").GetDouble();
        if (co * n * n <= 4096 && ci * n * n <= 4096)
        {
            var mine = SpectralNorm.ConvZeroPaddingExact(k, co, ci, kh, kw, n, n);
            Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(mine.Value, zeroExact), "unrolled zero-padding SVD vs golden");
        }
        double circNk = SpectralNorm.ConvCircularExact(k, co, ci, kh, kw, n + kh - 1, n + kw - 1).Value;
        Assert.IsLessThanOrEqualTo(1e-12, Golden.Rel(circNk, z.GetProperty("circular_exact_at_n_plus_k_minus_1").GetDouble()));
        Assert.IsLessThanOrEqualTo(circNk, zeroExact * (1 - 1e-12), "zero exact ≤ circ(n+k−1)");
        foreach (int t in new[] { 2, 4, 6, 8 })
        {
            var b = SpectralNorm.ConvZeroPadding(k, co, ci, kh, kw, n, n, t);
            Assert.IsTrue(b.IsUpperBound);
            Assert.IsGreaterThanOrEqualTo(circNk * (1 - 1e-12), b.Value, $"circ(n+k−1) ≤ bound t={t}");
        }
        var p = SpectralNorm.ConvZeroPaddingPowerIteration(k, co, ci, kh, kw, n, n, 100, seed: 2);
        Assert.IsLessThanOrEqualTo(zeroExact * (1 + 1e-12), p.Value, "zero-padding power iteration ≤ exact");
    }

    /// <summary>The 16×16 kernel at n = 16 (unrolled 4096 × 4096 SVD, about 30 s): acceptance-sized, not in the default run.</summary>
    [TestMethod]
    [TestCategory("Slow")]
    [DataRow("conv_16x16x3x3_n16")]
    public void ZeroPadding_ExactBelowCircularAtNPlusKMinus1BelowBound_Large(string name) => ZeroPadding_ExactBelowCircularAtNPlusKMinus1BelowBound(name);

    [TestMethod]
    [DataRow("conv_16x16x3x3_n16")]
    [DataRow("conv_32x16x3x3_n8")]
    public void ZeroPaddingToeplitz_MatchesGoldenDecreasesAndBoundsEveryChain(string name)
    {
        var (k, co, ci, kh, kw, n) = Conv(name);
        var z = Golden.Case(name).GetProperty("zero");
        double zeroExact = z.TryGetProperty("exact_dense_unrolled_svd", out var u) ? u.GetDouble() : z.GetProperty("lanczos_svds_tol1e-13").GetDouble();
        double circNk = z.GetProperty("circular_exact_at_n_plus_k_minus_1").GetDouble();
        double sup = z.GetProperty("sup_symbol_fft_grid").GetProperty("value").GetDouble();
        double circN = SpectralNorm.ConvCircularExact(k, co, ci, kh, kw, n, n).Value;
        double previous = double.PositiveInfinity;
        // t ≤ 5 keeps the self-correlation small (support 2^t(k−1)+1 = 65); t = 6 is checked against golden in the same way.
        foreach (var (t, golden) in Golden.ByIter(z.GetProperty("norm2toep_delattre2024_by_iter")).Where(p => p.Key <= 5))
        {
            var b = SpectralNorm.ConvZeroPaddingToeplitz(k, co, ci, kh, kw, t);
            Assert.IsTrue(b.IsUpperBound);
            Assert.IsLessThanOrEqualTo(1e-10, Golden.Rel(b.Value, golden), $"norm2toep t={t} vs golden");
            Assert.IsLessThan(previous, b.Value, $"strictly decreasing at t={t}");
            previous = b.Value;
            // exact zero ≤ circ(n+k−1) ≤ sup_ω σ1(K̂(ω)) ≤ norm2toep, and it also bounds circular padding at n.
            Assert.IsGreaterThanOrEqualTo(sup * (1 - 1e-12), b.Value, $"sup symbol ≤ norm2toep t={t}");
            Assert.IsGreaterThanOrEqualTo(circN * (1 - 1e-12), b.Value, $"circular(n) ≤ norm2toep t={t}");
        }
        Assert.IsLessThanOrEqualTo(circNk * (1 + 1e-12), zeroExact);
        Assert.IsLessThanOrEqualTo(sup * (1 + 1e-12), circNk);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => SpectralNorm.ConvZeroPaddingToeplitz(k, co, ci, kh, kw, 0));
    }

    [TestMethod]
    public void SelfCorrelation_FftEqualsConv2d()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(5);
        var a = torch.randn(6, 3, 11, 11, dtype: ScalarType.Float64);
        var fft = GramIteration.SelfCorrelation(a);
        var direct = nn.functional.conv2d(a, a, padding: [10, 10]);
        CollectionAssert.AreEqual(direct.shape, fft.shape);
        Assert.IsLessThanOrEqualTo(1e-10, (fft - direct).abs().max().item<double>());
    }

    [TestMethod]
    public void ZeroPadding_CircularAtInputSizeCanBeBelowTheTrueNormButTheBoundIsNot()
    {
        // As in zc_check.py: c = 2, n = 5, 3×3 Gaussian kernels; circ(n) < zero(n) happens for a few percent of them.
        var rng = new Random(136);
        int found = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            var k = Enumerable.Range(0, 2 * 2 * 9).Select(_ => (float)Allauzen.ML.Tests.TestSupport.TestData.Gaussian(rng)).ToArray();
            double zero = SpectralNorm.ConvZeroPaddingExact(k, 2, 2, 3, 3, 5, 5).Value;
            double circ = SpectralNorm.ConvCircularExact(k, 2, 2, 3, 3, 5, 5).Value;
            double bound = SpectralNorm.ConvZeroPadding(k, 2, 2, 3, 3, 5, 5, 8).Value;
            Assert.IsGreaterThanOrEqualTo(zero * (1 - 1e-12), bound, $"trial {trial}: zero-padding bound");
            if (circ < zero * (1 - 1e-9))
                found++;
        }
        Assert.IsGreaterThanOrEqualTo(1, found, "some kernels have circ(n) < zero(n): the circular value at n is not a zero-padding bound");
    }

    [TestMethod]
    public void Float32DifferentiableGram_MatchesFloat64AndHasGradient()
    {
        var c = Golden.Case("dense_64x32");
        var w = Golden.FlatF(c.GetProperty("W"));
        using var scope = torch.NewDisposeScope();
        var wt = torch.tensor(w, [64, 32]).requires_grad_(true);
        var b = GramIteration.Dense(wt, 6, detachScale: true);
        b.backward();
        Assert.IsLessThanOrEqualTo(1e-5, Golden.Rel(b.item<float>(), Golden.ByIter(c.GetProperty("gram_bound_by_iter"))[6]));
        // d‖W‖/dW ≈ u1 v1ᵀ: unit Frobenius norm.
        Assert.AreEqual(1.0, wt.grad!.norm().item<float>(), 1e-3);
        var (k, co, ci, kh, kw, n) = Conv("conv_16x16x3x3_n16");
        var kt = torch.tensor(k, [co, ci, kh, kw]).requires_grad_(true);
        var bc = GramIteration.Circular(kt, n, n, 6);
        bc.backward();
        double golden = Golden.Case("conv_16x16x3x3_n16").GetProperty("circular").GetProperty("gram_bound_by_iter").GetProperty("6").GetDouble();
        Assert.IsLessThanOrEqualTo(1e-5, Golden.Rel(bc.item<float>(), golden));
        Assert.IsGreaterThan(0f, kt.grad!.norm().item<float>());
    }

    [TestMethod]
    public void BadInput_NonFiniteOrWrongSizeWeights_ClearErrors()
    {
        var w = new float[12];
        w[7] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => SpectralNorm.Dense(w, 3, 4, 6));
        StringAssert.Contains(e.Message, "non-finite");
        StringAssert.Contains(e.Message, "index 7");
        var k = new float[2 * 2 * 9];
        k[3] = float.PositiveInfinity;
        Assert.Throws<ArgumentException>(() => SpectralNorm.ConvCircular(k, 2, 2, 3, 3, 8, 8, 6));
        Assert.Throws<ArgumentException>(() => SpectralNorm.ConvZeroPadding(k, 2, 2, 3, 3, 8, 8, 6));
        var e2 = Assert.Throws<ArgumentException>(() => SpectralNorm.Dense(new float[11], 3, 4, 6));
        StringAssert.Contains(e2.Message, "3 × 4");
        Assert.Throws<ArgumentOutOfRangeException>(() => SpectralNorm.Dense(new float[12], 3, 4, -1));
        Assert.Throws<ArgumentException>(() => SpectralNorm.ConvCircular(new float[2 * 2 * 9], 2, 2, 3, 3, 2, 2, 6));
    }
}
