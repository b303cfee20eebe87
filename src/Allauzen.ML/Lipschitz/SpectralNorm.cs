using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Lipschitz;

/// <summary>How a <see cref="SpectralNormResult"/> was computed.</summary>
public enum SpectralNormMethod
{
    /// <summary>Gram iteration: a guaranteed upper bound, tight after a few iterations.</summary>
    GramIteration,

    /// <summary>Power iteration: a lower bound (never use it to certify).</summary>
    PowerIteration,

    /// <summary>Singular value decomposition: the exact value (up to float64 rounding).</summary>
    Exact,
}

/// <summary>
/// A spectral norm (largest singular value, i.e. the l2 Lipschitz constant of a linear map) or a bound on it.
/// </summary>
/// <param name="Value">The value, computed in float64.</param>
/// <param name="IsUpperBound">True when <see cref="Value"/> is guaranteed ≥ the true norm (Gram iteration, exact SVD); false for power iteration (a lower bound).</param>
/// <param name="Method">The algorithm used.</param>
/// <param name="Iterations">Iterations run (0 for SVD).</param>
public readonly record struct SpectralNormResult(double Value, bool IsUpperBound, SpectralNormMethod Method, int Iterations);

/// <summary>
/// Spectral norms of dense layers and 2-D convolutions (stride 1) from plain row-major arrays, in float64:
/// Gram-iteration upper bounds (Delattre et al., ICML 2023 and 2024), power-iteration lower bounds, exact values.
/// Convolution kernels are laid out (outChannels, inChannels, kernelHeight, kernelWidth) as in PyTorch.
/// </summary>
/// <remarks>
/// A convolution's Lipschitz constant is <b>not</b> the norm of its reshaped kernel matrix (what
/// <c>torch.nn.utils.spectral_norm</c> computes). Circular padding: the norm is the maximum over the DFT
/// frequencies of the c_out × c_in symbol matrices at the actual input size. Zero padding: the circular value
/// at size n can be <i>below</i> the true norm; <see cref="ConvZeroPadding"/> uses the circular bound on an
/// (n+k−1) grid, which is valid for any padding ≤ k−1 because a zero-padded convolution is an isometric
/// embedding, a circular convolution of size n+k−1 and a crop; <see cref="ConvZeroPaddingToeplitz"/> is the size-independent
/// "norm2toep" bound of Delattre, Barthélemy and Allauzen (2024).
/// </remarks>
public static class SpectralNorm
{
    /// <summary>Gram-iteration upper bound on σ1 of a rows × cols matrix (row-major).</summary>
    /// <param name="weights">rows × cols values, row-major.</param>
    /// <param name="rows">Number of rows (outputs).</param>
    /// <param name="cols">Number of columns (inputs).</param>
    /// <param name="iterations">Gram iterations (0 gives the Frobenius norm; 6 to 10 is typical; at most 30).</param>
    public static SpectralNormResult Dense(float[] weights, int rows, int cols, int iterations)
    {
        CheckIterations(iterations, 30);
        using var scope = torch.NewDisposeScope();
        var w = Matrix(weights, rows, cols);
        double v = GramIteration.Dense(w, iterations).item<double>();
        return new(v, true, SpectralNormMethod.GramIteration, iterations);
    }

    /// <summary>Power-iteration estimate of σ1 (a lower bound), from a random start vector drawn with <paramref name="seed"/>.</summary>
    public static SpectralNormResult DensePowerIteration(float[] weights, int rows, int cols, int iterations, int seed = 0)
    {
        CheckIterations(iterations, int.MaxValue);
        using var scope = torch.NewDisposeScope();
        var w = Matrix(weights, rows, cols);
        using var gen = new torch.Generator((ulong)(uint)seed);
        var v = torch.randn([cols, 1], dtype: ScalarType.Float64, generator: gen);
        v = v / v.norm();
        using var kept = new KeptScalars();
        var tiny = kept.Of(1e-300);
        for (int i = 0; i < iterations; i++)
        {
            var u = w.matmul(v);
            u = u / u.norm().clamp_min(tiny);
            v = w.t().matmul(u);
            v = v / v.norm().clamp_min(tiny);
        }
        // ‖Wv‖ with ‖v‖ = 1 never exceeds σ1.
        double s = w.matmul(v).norm().item<double>();
        return new(s, false, SpectralNormMethod.PowerIteration, iterations);
    }

    /// <summary>Exact σ1 by singular value decomposition (float64).</summary>
    public static SpectralNormResult DenseExact(float[] weights, int rows, int cols)
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(weights, rows, cols);
        double s = torch.linalg.svdvals(w)[0].item<double>();
        return new(s, true, SpectralNormMethod.Exact, 0);
    }

    /// <summary>
    /// Gram-iteration upper bound on the spectral norm of a 2-D convolution with circular padding and stride 1 on an
    /// inputHeight × inputWidth input: the batched Gram iteration over the per-frequency matrices of the 2-D DFT.
    /// </summary>
    /// <param name="kernel">outChannels × inChannels × kernelHeight × kernelWidth values, row-major.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="kernelHeight">Kernel height (≤ inputHeight).</param>
    /// <param name="kernelWidth">Kernel width (≤ inputWidth).</param>
    /// <param name="inputHeight">The actual input height: the bound holds at this size only.</param>
    /// <param name="inputWidth">The actual input width.</param>
    /// <param name="iterations">Gram iterations (6 gives about 1e-6 relative error on typical kernels; at most 30).</param>
    public static SpectralNormResult ConvCircular(float[] kernel, int outChannels, int inChannels, int kernelHeight, int kernelWidth,
        int inputHeight, int inputWidth, int iterations)
    {
        CheckIterations(iterations, 30);
        using var scope = torch.NewDisposeScope();
        var k = Kernel(kernel, outChannels, inChannels, kernelHeight, kernelWidth, inputHeight, inputWidth);
        double v = GramIteration.Circular(k, inputHeight, inputWidth, iterations).item<double>();
        return new(v, true, SpectralNormMethod.GramIteration, iterations);
    }

    /// <summary>Exact spectral norm of the circular convolution (FFT, then the SVD of every frequency's matrix).</summary>
    public static SpectralNormResult ConvCircularExact(float[] kernel, int outChannels, int inChannels, int kernelHeight, int kernelWidth,
        int inputHeight, int inputWidth)
    {
        using var scope = torch.NewDisposeScope();
        var k = Kernel(kernel, outChannels, inChannels, kernelHeight, kernelWidth, inputHeight, inputWidth);
        var sym = GramIteration.Symbol(k, inputHeight, inputWidth);
        double v = torch.linalg.svdvals(sym).max().item<double>();
        return new(v, true, SpectralNormMethod.Exact, 0);
    }

    /// <summary>
    /// Power iteration on the circular convolution operator (applied through the FFT): a lower bound.
    /// </summary>
    public static SpectralNormResult ConvCircularPowerIteration(float[] kernel, int outChannels, int inChannels, int kernelHeight,
        int kernelWidth, int inputHeight, int inputWidth, int iterations, int seed = 0)
    {
        CheckIterations(iterations, int.MaxValue);
        using var scope = torch.NewDisposeScope();
        var k = Kernel(kernel, outChannels, inChannels, kernelHeight, kernelWidth, inputHeight, inputWidth);
        double v = PowerIterationCircular(k, inputHeight, inputWidth, iterations, seed).item<double>();
        return new(v, false, SpectralNormMethod.PowerIteration, iterations);
    }

    /// <summary>
    /// Upper bound on the spectral norm of a 2-D convolution with zero padding (any padding ≤ k−1, stride 1) on an
    /// inputHeight × inputWidth input: the circular Gram bound on an (h+kh−1) × (w+kw−1) grid. It never uses the
    /// circular value at the input size, which can be below the zero-padding norm.
    /// </summary>
    public static SpectralNormResult ConvZeroPadding(float[] kernel, int outChannels, int inChannels, int kernelHeight, int kernelWidth,
        int inputHeight, int inputWidth, int iterations)
    {
        CheckIterations(iterations, 30);
        using var scope = torch.NewDisposeScope();
        var k = Kernel(kernel, outChannels, inChannels, kernelHeight, kernelWidth, inputHeight, inputWidth);
        double v = GramIteration.Circular(k, inputHeight + kernelHeight - 1, inputWidth + kernelWidth - 1, iterations).item<double>();
        return new(v, true, SpectralNormMethod.GramIteration, iterations);
    }

    /// <summary>
    /// The "norm2toep" upper bound (Delattre, Barthélemy, Allauzen 2024) on the spectral norm of a 2-D convolution with zero
    /// padding (any padding, stride 1) at <b>every</b> input size: Gram iteration in the spatial domain on the kernel of KKᵀ,
    /// then the largest absolute row sum. It bounds the bi-infinite Toeplitz operator, so it also bounds circular padding at
    /// any size and tends to sup_ω σ1(K̂(ω)) as the iterations grow. Usually looser than <see cref="ConvZeroPadding"/> at a
    /// known input size, but independent of it. The kernel support grows as 2^t(k−1)+1, so memory grows as
    /// c²·4^t·k²: at most 8 iterations.
    /// </summary>
    /// <param name="kernel">outChannels × inChannels × kernelHeight × kernelWidth values, row-major.</param>
    /// <param name="outChannels">Output channels.</param>
    /// <param name="inChannels">Input channels.</param>
    /// <param name="kernelHeight">Kernel height.</param>
    /// <param name="kernelWidth">Kernel width.</param>
    /// <param name="iterations">Spatial Gram iterations, in [1, 8] (4 to 6 is typical).</param>
    public static SpectralNormResult ConvZeroPaddingToeplitz(float[] kernel, int outChannels, int inChannels, int kernelHeight, int kernelWidth,
        int iterations)
    {
        if (iterations < 1 || iterations > 8)
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "iterations must be in [1, 8] (a row sum of K itself is no ℓ2 bound).");
        using var scope = torch.NewDisposeScope();
        var k = Kernel(kernel, outChannels, inChannels, kernelHeight, kernelWidth, kernelHeight, kernelWidth);
        double v = GramIteration.Toeplitz(k, iterations).item<double>();
        return new(v, true, SpectralNormMethod.GramIteration, iterations);
    }

    /// <summary>
    /// Exact spectral norm of the zero-padded "same" convolution (padding (k−1)/2, odd kernels) by the SVD of the
    /// unrolled operator. Cost grows as (c·h·w)³: meant for small layers and tests (at most 4,096 inputs and outputs).
    /// </summary>
    public static SpectralNormResult ConvZeroPaddingExact(float[] kernel, int outChannels, int inChannels, int kernelHeight, int kernelWidth,
        int inputHeight, int inputWidth)
    {
        if (kernelHeight % 2 == 0 || kernelWidth % 2 == 0)
            throw new ArgumentException($"ConvZeroPaddingExact needs odd kernel sizes for 'same' padding (got {kernelHeight}×{kernelWidth}).");
        long nin = (long)inChannels * inputHeight * inputWidth, nout = (long)outChannels * inputHeight * inputWidth;
        if (nin > 4096 || nout > 4096)
            throw new ArgumentOutOfRangeException(nameof(inputHeight), $"ConvZeroPaddingExact unrolls the operator: {nout}×{nin} exceeds 4096×4096.");
        using var scope = torch.NewDisposeScope();
        var k = Kernel(kernel, outChannels, inChannels, kernelHeight, kernelWidth, inputHeight, inputWidth);
        var eye = torch.eye(nin, dtype: ScalarType.Float64).reshape(nin, inChannels, inputHeight, inputWidth);
        var cols = nn.functional.conv2d(eye, k, padding: [(kernelHeight - 1) / 2, (kernelWidth - 1) / 2]).reshape(nin, nout);
        double v = torch.linalg.svdvals(cols)[0].item<double>();
        return new(v, true, SpectralNormMethod.Exact, 0);
    }

    /// <summary>Power iteration on the zero-padded "same" convolution (conv2d / conv_transpose2d): a lower bound.</summary>
    public static SpectralNormResult ConvZeroPaddingPowerIteration(float[] kernel, int outChannels, int inChannels, int kernelHeight,
        int kernelWidth, int inputHeight, int inputWidth, int iterations, int seed = 0)
    {
        CheckIterations(iterations, int.MaxValue);
        using var scope = torch.NewDisposeScope();
        var k = Kernel(kernel, outChannels, inChannels, kernelHeight, kernelWidth, inputHeight, inputWidth);
        long[] pad = [(kernelHeight - 1) / 2, (kernelWidth - 1) / 2];
        using var gen = new torch.Generator((ulong)(uint)seed);
        var x = torch.randn([1, inChannels, inputHeight, inputWidth], dtype: ScalarType.Float64, generator: gen);
        x = x / x.norm();
        using var kept = new KeptScalars();
        var tiny = kept.Of(1e-300);
        for (int i = 0; i < iterations; i++)
        {
            var y = nn.functional.conv2d(x, k, padding: pad);
            y = y / y.norm().clamp_min(tiny);
            x = nn.functional.conv_transpose2d(y, k, padding: pad);
            if (x.shape[2] != inputHeight || x.shape[3] != inputWidth)
                throw new ArgumentException("ConvZeroPaddingPowerIteration needs odd kernel sizes ('same' padding).");
            x = x / x.norm().clamp_min(tiny);
        }
        double v = nn.functional.conv2d(x, k, padding: pad).norm().item<double>();
        return new(v, false, SpectralNormMethod.PowerIteration, iterations);
    }

    /// <summary>Power iteration on the circular convolution (tensor version, float64 or float32), used by benchmarks.</summary>
    internal static Tensor PowerIterationCircular(Tensor k, int h, int w, int iterations, int seed)
    {
        var ci = k.shape[1];
        var khat = torch.fft.rfft2(k, s: [h, w]);                         // (co, ci, h, w/2+1)
        using var gen = new torch.Generator((ulong)(uint)seed);
        var x = torch.randn([ci, h, w], dtype: k.dtype, generator: gen);
        x = x / x.norm();
        Tensor Apply(Tensor input) =>
            torch.fft.irfft2((khat * torch.fft.rfft2(input).unsqueeze(0)).sum(1), s: [h, w]);
        Tensor ApplyT(Tensor y) =>
            torch.fft.irfft2((khat.conj() * torch.fft.rfft2(y).unsqueeze(1)).sum(0L), s: [h, w]);
        using var kept = new KeptScalars();
        var tiny = kept.Of(1e-300);
        for (int i = 0; i < iterations; i++)
        {
            var y = Apply(x);
            y = y / y.norm().clamp_min(tiny);
            x = ApplyT(y);
            x = x / x.norm().clamp_min(tiny);
        }
        return Apply(x).norm();
    }

    internal static Tensor Matrix(float[] weights, int rows, int cols)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (rows < 1)
            throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows must be at least 1.");
        if (cols < 1)
            throw new ArgumentOutOfRangeException(nameof(cols), cols, "cols must be at least 1.");
        if (weights.Length != (long)rows * cols)
            throw new ArgumentException($"weights has {weights.Length} values; rows × cols = {rows} × {cols} = {(long)rows * cols}.", nameof(weights));
        CheckFinite(weights, nameof(weights));
        TorchRuntime.EnsureInitialized();
        return torch.tensor(weights, [rows, cols]).to(ScalarType.Float64);
    }

    internal static Tensor Kernel(float[] kernel, int co, int ci, int kh, int kw, int h, int w)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        void Pos(int v, string name)
        {
            if (v < 1)
                throw new ArgumentOutOfRangeException(name, v, $"{name} must be at least 1.");
        }
        Pos(co, "outChannels");
        Pos(ci, "inChannels");
        Pos(kh, "kernelHeight");
        Pos(kw, "kernelWidth");
        Pos(h, "inputHeight");
        Pos(w, "inputWidth");
        if (kh > h || kw > w)
            throw new ArgumentException($"The kernel ({kh}×{kw}) is larger than the input ({h}×{w}).", nameof(kernel));
        long n = (long)co * ci * kh * kw;
        if (kernel.Length != n)
            throw new ArgumentException($"kernel has {kernel.Length} values; outChannels × inChannels × kernelHeight × kernelWidth = {n}.", nameof(kernel));
        CheckFinite(kernel, nameof(kernel));
        TorchRuntime.EnsureInitialized();
        return torch.tensor(kernel, [co, ci, kh, kw]).to(ScalarType.Float64);
    }

    internal static void CheckFinite(ReadOnlySpan<float> values, string name)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
                throw new ArgumentException($"{name} has a non-finite value ({values[i]}) at index {i}: a spectral norm needs finite weights.", name);
        }
    }

    private static void CheckIterations(int iterations, int max)
    {
        if (iterations < 0 || iterations > max)
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations, $"iterations must be in [0, {max}].");
    }
}
