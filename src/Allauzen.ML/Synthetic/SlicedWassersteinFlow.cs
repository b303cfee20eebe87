using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Synthetic;

/// <summary>The settings of one run of the flow (post-processing: none of them touches the private data).</summary>
/// <param name="SubProjections">S: directions drawn (with replacement) among the K released ones at each step.</param>
/// <param name="Steps">Number of Euler steps.</param>
/// <param name="StepSize">dt.</param>
/// <param name="Lambda">λ: the entropic term √(2·dt·λ)·z of the update (0 = deterministic drift).</param>
/// <param name="Sigma">σ of the Gaussian smoothing applied to the particles' projections (the released target was
/// smoothed with the same σ).</param>
internal readonly record struct FlowSettings(int SubProjections, int Steps, double StepSize, double Lambda, double Sigma);

/// <summary>
/// The fixed-projection sliced-Wasserstein flow of DPSWflow. The private data enter only once, through
/// <see cref="ReleaseQuantiles"/>: their projections on K fixed unit directions Θ, smoothed by N(0, σ²) (the Gaussian
/// mechanism), summarised by M quantiles per direction. <see cref="Run"/> then moves particles x ∈ ℝ^{n×d}, started
/// from N(0, I), with the drift ∇ = mean_θ θ·(X̃_θ − F⁻¹_Ỹθ(F_X̃θ(X̃_θ))) where X̃_θ = θᵀx + N(0, σ²) (step 4–5 of the
/// notes), reading nothing but Θ and the released quantiles, so the particles are post-processing of the release.
/// </summary>
/// <remarks>
/// The reference code re-noises the data projections at every step; releasing them once and reusing the release is
/// what makes the single-release (ε, δ) of <see cref="DpSlicedWasserstein.NoiseScale"/> the guarantee of the whole
/// run. At each step S of the K released directions are drawn with replacement (again post-processing).
/// </remarks>
internal static class SlicedWassersteinFlow
{
    /// <summary>K unit directions of ℝ^d (row-major K×d), uniform on the sphere, from <paramref name="seed"/> only.</summary>
    public static float[] UnitDirections(int projections, int dimensions, int seed)
    {
        var rng = new Random(seed);
        var theta = new float[projections * dimensions];
        for (int k = 0; k < projections; k++)
        {
            double norm;
            var g = new double[dimensions];
            do
            {
                norm = 0;
                for (int t = 0; t < dimensions; t++)
                {
                    // Box–Muller on two uniforms in (0, 1].
                    double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
                    g[t] = Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                    norm += g[t] * g[t];
                }
            }
            while (norm < 1e-24);
            norm = Math.Sqrt(norm);
            for (int t = 0; t < dimensions; t++)
                theta[k * dimensions + t] = (float)(g[t] / norm);
        }
        return theta;
    }

    /// <summary>
    /// The Gaussian mechanism: Ỹ = ΘYᵀ + N(0, σ²) (K×n, noise from <paramref name="seed"/>), then the quantiles of each
    /// row of Ỹ at the M percentiles linspace(0, 1, M) (K×M, row-major). Rows of <paramref name="y"/> must already lie
    /// in the unit ball (the caller enforces it).
    /// </summary>
    public static float[] ReleaseQuantiles(float[] y, int rows, int dimensions, float[] theta, int projections, int percentiles,
        double sigma, ulong seed)
    {
        if (rows < 1)
            throw new ArgumentException("The private data set is empty.", nameof(y));
        TorchRuntime.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        using var gen = new torch.Generator(seed, torch.CPU);
        var Y = torch.tensor(y, [rows, dimensions]);
        var Th = torch.tensor(theta, [projections, dimensions]);
        var proj = torch.mm(Th, Y.t());
        if (sigma > 0)
            proj = proj + sigma * torch.randn([projections, rows], generator: gen);
        var q = Quantiles(proj, Percentiles(percentiles)).contiguous();
        return q.data<float>().ToArray();
    }

    /// <summary>
    /// Runs the flow for <paramref name="rows"/> particles against the released quantiles (K×M) and returns them
    /// (rows×d, row-major). Deterministic in <paramref name="seed"/> (start, sub-projection draws, smoothing noise).
    /// </summary>
    public static float[] Run(float[] theta, int projections, int dimensions, float[] targetQuantiles, int percentiles,
        FlowSettings settings, int rows, int seed, Action<int>? onStep = null, CancellationToken cancellationToken = default)
    {
        TorchRuntime.EnsureInitialized();
        using var outer = torch.NewDisposeScope();
        using var gen = new torch.Generator((ulong)(uint)seed, torch.CPU);
        var pick = new Random(unchecked(seed * 31 + 7));
        var Th = torch.tensor(theta, [projections, dimensions]);
        var Q = torch.tensor(targetQuantiles, [projections, percentiles]);
        var pct = Percentiles(percentiles);
        int s = settings.SubProjections;
        var x = torch.randn([rows, dimensions], generator: gen);
        var idx = new long[s];
        for (int step = 0; step < settings.Steps; step++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            for (int i = 0; i < s; i++)
                idx[i] = pick.Next(projections);
            using var index = torch.tensor(idx);
            x = Step(x, Th.index_select(0, index), Q.index_select(0, index), pct, settings, gen).MoveToOuterDisposeScope();
            onStep?.Invoke(step + 1);
        }
        return x.contiguous().data<float>().ToArray();
    }

    /// <summary>
    /// One Euler step of the flow against the target quantiles <paramref name="qTarget"/> (S×M) on the directions
    /// <paramref name="theta"/> (S×d): x − dt·mean_θ θ·(X̃_θ − F⁻¹_Ỹ(F_X̃(X̃_θ))) + √(2·dt·λ)·z.
    /// </summary>
    internal static Tensor Step(Tensor x, Tensor theta, Tensor qTarget, Tensor pct, FlowSettings settings, torch.Generator gen)
    {
        long s = theta.shape[0], rows = x.shape[0], percentiles = pct.shape[0];
        double dt = settings.StepSize, noise = Math.Sqrt(2 * dt * settings.Lambda);
        var x_proj = torch.mm(theta, x.t());                                 // S×n
        if (settings.Sigma > 0)
            x_proj = x_proj + settings.Sigma * torch.randn([s, rows], generator: gen);
        var x_quant = Quantiles(x_proj, pct);                                // S×M
        var cdf = Interpolate(x_quant, pct.expand(s, percentiles), x_proj);  // F_X̃(X̃_θ)
        var q = Interpolate(pct.expand(s, percentiles), qTarget, cdf);       // F⁻¹_Ỹ(F_X̃(X̃_θ))
        var nabla = torch.mm((x_proj - q).t(), theta) / s;                   // n×d: mean_θ θ·(X̃_θ − q)
        var next = x - dt * nabla;
        if (noise > 0)
            next = next + noise * torch.randn([rows, x.shape[1]], generator: gen);
        return next;
    }

    /// <summary>linspace(0, 1, M).</summary>
    internal static Tensor Percentiles(int m) => m == 1 ? torch.tensor(new[] { 0.5f }) : torch.linspace(0, 1, m, dtype: ScalarType.Float32);

    /// <summary>Quantiles of each row of <paramref name="a"/> (R×n) at <paramref name="p"/> (M), linear between order statistics.</summary>
    internal static Tensor Quantiles(Tensor a, Tensor p)
    {
        long n = a.shape[1];
        var sorted = a.sort(1).Values;
        var pos = p * (n - 1);
        var lo = pos.floor().clamp(0, n - 1);
        var hi = (lo + 1).clamp(0, n - 1);
        var w = (pos - lo).unsqueeze(0);
        long r = a.shape[0];
        var loI = lo.to(ScalarType.Int64).unsqueeze(0).expand(r, -1);
        var hiI = hi.to(ScalarType.Int64).unsqueeze(0).expand(r, -1);
        var s0 = sorted.gather(1, loI);
        var s1 = sorted.gather(1, hiI);
        return s0 + w * (s1 - s0);
    }

    /// <summary>
    /// Row-wise piecewise-linear interpolation of the function with knots (<paramref name="xs"/>, <paramref name="ys"/>)
    /// (both R×M, xs sorted) at <paramref name="xNew"/> (R×P), extended linearly beyond the end knots.
    /// </summary>
    internal static Tensor Interpolate(Tensor xs, Tensor ys, Tensor xNew)
    {
        long m = xs.shape[1];
        if (m == 1)
            return ys.expand(xNew.shape[0], 1).expand(xNew.shape[0], xNew.shape[1]).clone();
        var xsC = xs.contiguous();
        var ind = (torch.searchsorted(xsC, xNew.contiguous()) - 1).clamp(0, m - 2);
        var x0 = xsC.gather(1, ind);
        var x1 = xsC.gather(1, ind + 1);
        var ysC = ys.contiguous();
        var y0 = ysC.gather(1, ind);
        var y1 = ysC.gather(1, ind + 1);
        var slope = (y1 - y0) / (x1 - x0 + 1.1920929e-07f);
        return y0 + slope * (xNew - x0);
    }
}
