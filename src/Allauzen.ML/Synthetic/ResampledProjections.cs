using System.Globalization;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Synthetic;

/// <summary>
/// The persisted accounting of a DPSWflow-r release (per class; each class spends the whole (ε, δ), parallel composition).
/// </summary>
/// <param name="Steps">T: releases per class, one per flow step.</param>
/// <param name="SamplingRate">q: the Poisson sampling rate of each step.</param>
/// <param name="NoiseMultiplier">z = σ/Δ of every step (0 when the noise is off).</param>
/// <param name="StepSensitivity">Δ of one step's K fresh directions, whose failure probability is δ_c/(2T).</param>
/// <param name="EpsilonPerClass">The accounted ε of one class's T releases at δ_c/2 (+∞ without noise).</param>
internal sealed record ResampledRelease(int Steps, double SamplingRate, double NoiseMultiplier, double StepSensitivity,
    double EpsilonPerClass)
{
    /// <summary>The payload entry of this record.</summary>
    public const string PayloadName = "resampled";
}

/// <summary>
/// DPSWflow-r (resampled projections). At each step t = 1..T of the flow a Poisson sample B_t of the clipped rows
/// (rate q) is projected on K fresh unit directions Θ_t and every projected value gets N(0, σ²) noise; the M
/// quantiles of each direction are kept. All T releases happen at <c>Fit</c> (they are all the flow needs of the
/// data) and <see cref="Run"/> replays the flow against them for any number of particles and any seed.
/// </summary>
/// <remarks>
/// Accounting, per class with (ε_c, δ_c) = (ε, δ) (the classes hold disjoint rows: parallel composition, see
/// <see cref="PrivacyReport"/>):
/// <list type="bullet">
/// <item>Θ_t is public randomness (from <c>Seed</c>); for a given pair of neighbouring data sets the bound
/// ‖Θ_t(y − y′)‖ ≤ Δ fails with probability δ_c/(2T) (<see cref="DpSlicedWasserstein.Sensitivity"/> at δ_c/T), so
/// δ_c/2 over the T steps (union bound).</item>
/// <item>Given Θ_t, each sampled row is released as its own Gaussian-noised vector: the step is the per-row sampled
/// release of <see cref="RdpAccountant.AddSampledRowRelease"/> (replace-one adjacency, which rows were sampled treated
/// as public), with z = σ/Δ; the T steps compose in RDP and convert at δ_c/2.</item>
/// <item>The sampling and the noise come from the operating system's generator (<see cref="SecretSeed"/>), never
/// from <c>Seed</c>: amplification by subsampling needs the sample to be secret, and the Gaussian mechanism needs
/// the noise to be.</item>
/// </list>
/// The reference code instead draws shuffled fixed-size batches, charges them with the moments accountant of a
/// Poisson-sampled sum query, and does not count the per-step failure of Δ (docs/components/synthetic-data.md).
/// </remarks>
internal static class ResampledProjections
{
    /// <summary>The generator's limit on kept values (the loader's limit too).</summary>
    private const long MaxReleasedValues = 1L << 28;

    /// <summary>Calibrates (or, with a given noise multiplier, accounts) the release for the options.</summary>
    public static ResampledRelease Plan(PrivateSyntheticDataOptions o, int dimensions, int classes)
    {
        int steps = o.Steps;
        long size = (long)classes * steps * o.NumberOfProjections * Math.Max(o.Percentiles, dimensions);
        if (size > MaxReleasedValues)
            throw new ArgumentOutOfRangeException(nameof(o.Steps), steps,
                $"ResampledProjections keeps C·T·K·max(M, d) = {size} values (C = {classes}, T = Steps = {steps}, K = {o.NumberOfProjections}, M = {o.Percentiles}, d = {dimensions}); at most {MaxReleasedValues}: lower Steps, NumberOfProjections or Percentiles.");
        double q = o.SamplingRate, deltaC = o.Delta;
        double sensitivity = StepSensitivity(o.NumberOfProjections, dimensions, deltaC, steps);
        double z = o.NoiseMultiplier ?? RdpAccountant.CalibrateNoiseMultiplier(o.Epsilon, deltaC / 2,
            (a, zz) => a.AddSampledRowRelease(zz, q, steps));
        return new ResampledRelease(steps, q, z, sensitivity, AccountedEpsilon(z, q, steps, deltaC));
    }

    /// <summary>Δ of one step: the sensitivity bound at δ_c/T (failure probability δ_c/(2T)).</summary>
    public static double StepSensitivity(int projections, int dimensions, double deltaPerClass, int steps) =>
        DpSlicedWasserstein.Sensitivity(projections, dimensions, deltaPerClass / steps);

    /// <summary>The accounted ε of T per-row sampled releases at noise multiplier z, converted at δ_c/2 (+∞ for z = 0).</summary>
    public static double AccountedEpsilon(double z, double q, int steps, double deltaPerClass) =>
        z == 0 ? double.PositiveInfinity : new RdpAccountant().AddSampledRowRelease(z, q, steps).Epsilon(deltaPerClass / 2);

    /// <summary>The settings a resampled release implies: per-step σ = z·Δ, ε = ε_c (what is reported; parallel composition over the classes).</summary>
    public static SyntheticSettings Apply(SyntheticSettings settings, ResampledRelease r) =>
        settings with { Sigma = r.NoiseMultiplier * r.StepSensitivity, Epsilon = r.EpsilonPerClass };

    /// <summary>The T·K public directions (row-major T·K×d): step t's K directions from (Seed, t).</summary>
    public static float[] Directions(int steps, int projections, int dimensions, int seed)
    {
        var theta = new float[(long)steps * projections * dimensions];
        for (int t = 0; t < steps; t++)
        {
            SlicedWassersteinFlow.UnitDirections(projections, dimensions, unchecked((int)VectorSet.Hash((ulong)(uint)seed, (ulong)t + 1)))
                .CopyTo(theta, (long)t * projections * dimensions);
        }
        return theta;
    }

    /// <summary>
    /// The T releases of one class: for each step, the M quantiles (K×M) of Θ_t·Y_Bᵀ + N(0, σ²); a step whose Poisson
    /// sample is empty releases nothing and is stored as NaN (the flow skips it). Returns T·K×M, row-major.
    /// </summary>
    public static float[] Release(List<float[]> rows, int dimensions, float[] theta, int projections, int percentiles,
        ResampledRelease r, double sigma, CancellationToken cancellationToken)
    {
        var sampler = new Random(); // seeded by the runtime from system entropy, never from Seed
        int km = projections * percentiles, kd = projections * dimensions;
        var result = new float[(long)r.Steps * km];
        var batch = new List<float[]>(rows.Count);
        for (int t = 0; t < r.Steps; t++)
        {
            if ((t & 15) == 0)
                cancellationToken.ThrowIfCancellationRequested();
            batch.Clear();
            foreach (var row in rows)
            {
                if (r.SamplingRate >= 1 || sampler.NextDouble() < r.SamplingRate)
                    batch.Add(row);
            }
            if (batch.Count == 0)
            {
                result.AsSpan(t * km, km).Fill(float.NaN);
                continue;
            }
            var q = SlicedWassersteinFlow.ReleaseQuantiles(batch.SelectMany(b => b).ToArray(), batch.Count, dimensions,
                theta.AsSpan(t * kd, kd).ToArray(), projections, percentiles, sigma, SecretSeed.Next());
            q.CopyTo(result, (long)t * km);
        }
        return result;
    }

    /// <summary>
    /// Replays the flow for <paramref name="rows"/> particles against one class's T releases (T·K×M) on the T·K
    /// directions; deterministic in <paramref name="seed"/>. Returns rows×d, row-major.
    /// </summary>
    public static float[] Run(float[] theta, int projections, int dimensions, float[] stepQuantiles, int percentiles,
        FlowSettings settings, int rows, int seed, Action<int>? onStep, CancellationToken cancellationToken)
    {
        TorchRuntime.EnsureInitialized();
        using var outer = torch.NewDisposeScope();
        using var gen = new torch.Generator((ulong)(uint)seed, torch.CPU);
        var th = torch.tensor(theta, [(long)settings.Steps * projections, dimensions]);
        var qs = torch.tensor(stepQuantiles, [(long)settings.Steps * projections, percentiles]);
        var pct = SlicedWassersteinFlow.Percentiles(percentiles);
        var x = torch.randn([rows, dimensions], generator: gen);
        for (int t = 0; t < settings.Steps; t++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!float.IsNaN(stepQuantiles[(long)t * projections * percentiles]))
            {
                using var scope = torch.NewDisposeScope();
                var thetaT = th.narrow(0, (long)t * projections, projections);
                var qT = qs.narrow(0, (long)t * projections, projections);
                x = SlicedWassersteinFlow.Step(x, thetaT, qT, pct, settings, gen).MoveToOuterDisposeScope();
            }
            onStep?.Invoke(t + 1);
        }
        return x.contiguous().data<float>().ToArray();
    }

    /// <summary>
    /// Checks a loaded release: its accounting must be the one its settings imply (Δ from K, d, δ and T; ε_c from
    /// z, q and T), σ = z·Δ, and the reported ε at least ε_c, so that a file cannot claim more privacy than its noise gives.
    /// </summary>
    public static void Validate(ModelPayloadReader payload, SyntheticSettings s, ResampledRelease? r)
    {
        payload.Require(r is not null, ResampledRelease.PayloadName, "record", "is missing");
        payload.Require(r!.Steps == s.Steps && r.Steps >= 1, ResampledRelease.PayloadName, nameof(r.Steps), $"must equal the settings' Steps {s.Steps} (got {r.Steps})");
        payload.Require(r.SamplingRate is > 0 and <= 1, ResampledRelease.PayloadName, nameof(r.SamplingRate), $"must be in (0, 1] (got {r.SamplingRate})");
        payload.Require(r.NoiseMultiplier >= 0 && double.IsFinite(r.NoiseMultiplier), ResampledRelease.PayloadName, nameof(r.NoiseMultiplier),
            $"must be finite and non-negative (got {r.NoiseMultiplier})");
        double deltaC = s.Delta;
        double sensitivity = StepSensitivity(s.Projections, s.Dimensions, deltaC, r.Steps);
        payload.Require(Math.Abs(r.StepSensitivity - sensitivity) <= 1e-9 * sensitivity, ResampledRelease.PayloadName, nameof(r.StepSensitivity),
            $"must be {sensitivity} (K = {s.Projections}, d = {s.Dimensions}, δ = {deltaC}, T = {r.Steps}) (got {r.StepSensitivity})");
        double eps = AccountedEpsilon(r.NoiseMultiplier, r.SamplingRate, r.Steps, deltaC);
        payload.Require(r.EpsilonPerClass >= eps * (1 - 1e-9) && s.Epsilon >= eps * (1 - 1e-9), ResampledRelease.PayloadName, nameof(r.EpsilonPerClass),
            $"must be at least the accounted ε {eps} per class (got {r.EpsilonPerClass}, total {s.Epsilon})");
        double sigma = r.NoiseMultiplier * sensitivity;
        payload.Require(Math.Abs(s.Sigma - sigma) <= 1e-9 * Math.Max(1, sigma), "settings", nameof(s.Sigma),
            $"must be z·Δ = {sigma} (got {s.Sigma})");
    }

    /// <summary>True when direction row <paramref name="row"/> belongs to a step that released nothing (all its K×M values NaN).</summary>
    public static bool IsEmptyStep(float[] quantiles, long row, int projections, int percentiles)
    {
        long block = (long)projections * percentiles, start = row / projections * block;
        if (!float.IsNaN(quantiles[row * percentiles]))
            return false;
        for (long i = start; i < start + block; i++)
        {
            if (!float.IsNaN(quantiles[i]))
                return false;
        }
        return true;
    }

    /// <summary>The report's mechanism sentence and per-step Δ.</summary>
    public static PrivacyReport Amend(PrivacyReport report, SyntheticSettings s, ResampledRelease r)
    {
        var inv = CultureInfo.InvariantCulture;
        string noise = r.NoiseMultiplier == 0
            ? "no noise (ε = ∞): NOT differentially private"
            : string.Create(inv, $"Gaussian mechanism per step, σ = z·Δ with z = {r.NoiseMultiplier:G6}, Poisson sampling rate q = {r.SamplingRate:G6}, " +
                $"T = {r.Steps} releases per class composed with the Rényi-DP accountant (per-row sampled release, replace-one adjacency), converted at δ/2; Δ holds with probability 1 − δ/2 over the T steps");
        string classes = s.Classes == 1 ? "one class" : $"{s.Classes} classes on disjoint rows, each (ε, δ): parallel composition, for neighbouring data sets that differ in one row's features with its class unchanged (the class of a row and the class sizes are not protected)";
        return report with
        {
            Sensitivity = r.StepSensitivity,
            Steps = r.Steps,
            SamplingRate = r.SamplingRate,
            Mechanism = $"DPSWflow-r, resampled projections: {noise}; rows clipped to the unit ball (ClipNorm {s.ClipNorm.ToString(inv)}), " +
                $"K = {s.Projections} fresh directions per step, M = {s.Percentiles} quantiles kept per direction; {classes}; generation replays the releases (post-processing).",
        };
    }
}
