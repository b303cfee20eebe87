using System.Globalization;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Synthetic;
using Microsoft.ML;

namespace Allauzen.ML.Benchmarks.Synthetic;

/// <summary>
/// The accounting and utility tables of docs/results/synthetic-privacy.md: <c>dotnet run -c Release --project
/// test/Allauzen.ML.Benchmarks -- --synthetic-privacy [accounting|utility]</c> (both tables by default).
/// </summary>
internal static class SyntheticPrivacyProbe
{
    private const double Delta = 1e-5;

    public static void Run(string[] args)
    {
        string table = args.Length > 1 ? args[1] : "both";
        if (table is not ("both" or "accounting" or "utility"))
            throw new ArgumentException($"usage: --synthetic-privacy [accounting|utility]; got '{table}'");
        if (table != "utility")
            AccountingOfTheReferenceMnistConfiguration();
        if (table != "accounting")
            UtilityOfBothMechanismsOnTheTwoModeToy();
    }

    private static void AccountingOfTheReferenceMnistConfiguration()
    {
        // The reference's MNIST DPSWflow-r run: K = 70, d = 8, batches of 250 from its second half of the training
        // set (30 000 rows), 35 epochs, δ = 1e-5.
        const int k = 70, d = 8, n = 30_000, batch = 250;
        const double q = (double)batch / n;
        const int steps = 35 * n / batch;
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"q = {q:G4}, T = {steps}; the shipped config's z = 1e-6 gives ε = {ReferenceEpsilon(1e-6, q, steps):G3} by the reference's own accountant"));
        Console.WriteLine("| target ε | fixed σ | z (reference accounting) | σ | z (sampled Gaussian, Mironov) | σ | z (ours: per-row release) | σ (ours) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        double refSensitivity = DpSlicedWasserstein.Sensitivity(k, d, Delta);
        double ourSensitivity = DpSlicedWasserstein.Sensitivity(k, d, Delta / steps);
        foreach (double eps in new[] { 1.0, 5.0, 10.0 })
        {
            double zRef = RdpAccountant.CalibrateNoiseMultiplier(eps, z => ReferenceEpsilon(z, q, steps));
            double zSgm = RdpAccountant.CalibrateNoiseMultiplier(eps, Delta, (a, z) => a.AddSampledGaussian(z, q, steps));
            double zOurs = RdpAccountant.CalibrateNoiseMultiplier(eps, Delta / 2, (a, z) => a.AddSampledRowRelease(z, q, steps));
            Console.WriteLine(string.Create(inv,
                $"| {eps} | {DpSlicedWasserstein.NoiseScale(k, d, eps, Delta):F3} | {zRef:F4} | {zRef * refSensitivity:F3} | {zSgm:F4} | {zSgm * refSensitivity:F3} | {zOurs:F4} | {zOurs * ourSensitivity:F3} |"));
        }
        Console.WriteLine(string.Create(inv, $"Δ (reference, fixed) = {refSensitivity:F4}; Δ per step (ours, failure δ/(2T)) = {ourSensitivity:F4}"));
    }

    /// <summary>
    /// The reference's accounting (its gaussian_moments.py as called by swf_moment.py): orders λ = 1..32 of the moments
    /// accountant (RDP order λ + 1), the log moments summed over λ' ≤ λ (its loop never resets the sum), ε at the full δ.
    /// </summary>
    private static double ReferenceEpsilon(double z, double q, int steps)
    {
        double cumulative = 0, best = double.PositiveInfinity;
        for (int lambda = 1; lambda <= 32; lambda++)
        {
            cumulative += steps * lambda * RdpAccountant.SampledGaussianRdp(lambda + 1, z, q);
            best = Math.Min(best, (cumulative - Math.Log(Delta)) / lambda);
        }
        return best;
    }

    private static void UtilityOfBothMechanismsOnTheTwoModeToy()
    {
        const int n = 2000, d = SyntheticToy.Dimensions;
        var ml = new MLContext(1);
        var raw = SyntheticToy.TwoModes(n, 11);
        var data = SyntheticToy.Load(ml, raw, d);
        var target = new VectorSet(raw, n, d);
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine("| mechanism | ε | q | T | σ | reported ε | SW₂ to the data |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (double eps in new[] { double.PositiveInfinity, 10.0, 5.0, 1.0 })
        {
            foreach (var (mechanism, q) in new[] { (PrivateSyntheticMechanism.FixedProjections, 1.0), (PrivateSyntheticMechanism.ResampledProjections, 1.0), (PrivateSyntheticMechanism.ResampledProjections, 0.1) })
            {
                var options = new PrivateSyntheticDataOptions
                {
                    Mechanism = mechanism, SamplingRate = q, Epsilon = eps, ClipNorm = 12, Steps = 300, Seed = 1,
                };
                var generator = ml.Transforms.PrivateSyntheticData(options).Fit(data);
                var x = VectorSet.Read(generator.Generate(n, 2), "Features", "feature", d, null, 0);
                double sw = VectorSetMetrics.SlicedWasserstein(x, target, 200, 3);
                var r = generator.PrivacyReport;
                Console.WriteLine(string.Create(inv, $"| {mechanism} | {eps} | {q} | {r.Steps} | {r.Sigma:F3} | {r.Epsilon:F3} | {sw:F3} |"));
            }
        }
    }
}
