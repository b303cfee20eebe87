using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Allauzen.ML.Synthetic;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Benchmarks.Synthetic;

/// <summary>
/// The .NET side of the flow-speed comparison with the reference code (reference_driver.py, same settings, same data
/// distributions): <c>ml.Transforms.PrivateSyntheticData</c> with fixed projections, Fit (the release) timed once,
/// then Generate timed per step through <see cref="PrivateSyntheticDataOptions.Progress"/>, the first steps untimed.
/// Run: <c>-- --synthetic-speed latent|tabular [percentiles] [steps] [rows] [private-rows] [warmup] [threads]</c>.
/// </summary>
/// <remarks>
/// latent: d = 8, the two-mode toy (±2.65 per coordinate + N(0, 1), alternating rows) divided by its largest row norm,
/// 30 000 private rows, 10 000 particles; tabular: the 64-column digits table, pixels (p − 8)/16, ClipNorm 4, all 1797
/// rows private, 1797 particles. K = 70, S = 25, dt = 3, λ = 0, ε = 5, δ = 1e-5, one libtorch thread.
/// </remarks>
internal static class SyntheticSpeedProbe
{
    private const int LatentDimensions = SyntheticToy.Dimensions;

    private sealed class StepClock(int warmup, int total) : IProgress<SyntheticDataProgress>
    {
        public (double Wall, double Cpu) Start, End;

        public void Report(SyntheticDataProgress value)
        {
            if (value.Step == warmup)
                Start = Now();
            else if (value.Step == total)
                End = Now();
        }
    }

    private static (double Wall, double Cpu) Now() =>
        (Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency, Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds);

    public static void Run(string[] args)
    {
        var inv = CultureInfo.InvariantCulture;
        int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], inv) : fallback;
        bool tabular = args.Length > 1 && args[1] == "tabular";
        if (args.Length > 1 && args[1] is not ("latent" or "tabular"))
            throw new ArgumentException($"usage: --synthetic-speed latent|tabular [percentiles] [steps] [rows] [private-rows] [warmup] [threads]; got '{args[1]}'");
        int percentiles = Arg(2, 100), steps = Arg(3, 120), rows = Arg(4, tabular ? 1797 : 10_000);
        int privateRows = Arg(5, 30_000), warmup = Arg(6, 20), threads = Arg(7, 1);
        Torch.TorchRuntime.SetThreads(threads);

        var ml = new MLContext(1);
        var (data, d) = tabular ? Digits(ml) : (Latent(ml, privateRows), LatentDimensions);
        var clock = new StepClock(warmup, warmup + steps);
        var options = new PrivateSyntheticDataOptions
        {
            Epsilon = 5, Delta = 1e-5, NumberOfProjections = 70, SubProjections = 25, Percentiles = percentiles,
            Steps = warmup + steps, StepSize = 3, Lambda = 0, ClipNorm = tabular ? 4 : 1, Seed = 1, Progress = clock,
        };
        var (w0, c0) = Now();
        var generator = ml.Transforms.PrivateSyntheticData(options).Fit(data);
        var (w1, c1) = Now();
        var generated = generator.Generate(rows, 2);
        var values = generated.GetColumn<VBuffer<float>>("Features").SelectMany(v => v.DenseValues()).ToArray();
        double wall = clock.End.Wall - clock.Start.Wall, cpu = clock.End.Cpu - clock.Start.Cpu;
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            implementation = $"Allauzen.ML PrivateSyntheticData (TorchSharp, {threads} thread)",
            @case = tabular ? "tabular" : "latent", d, private_rows = (int)data.GetRowCount()!.Value, rows,
            K = 70, S = 25, M = percentiles, dt = 3.0, epsilon = 5.0, sigma = generator.PrivacyReport.Sigma,
            warmup, steps, release_s = w1 - w0, release_cpu_s = c1 - c0,
            steps_per_s = steps / wall, steps_per_cpu_s = steps / cpu,
            ms_per_step = wall / steps * 1000, cpu_ms_per_step = cpu / steps * 1000,
            finite = values.All(float.IsFinite),
        }));
    }

    /// <summary>The two-mode toy in d = 8, scaled by its largest row norm into the unit ball.</summary>
    private static IDataView Latent(MLContext ml, int n)
    {
        var y = SyntheticToy.TwoModes(n, 1);
        double max = 0;
        for (int i = 0; i < n; i++)
        {
            double norm2 = 0;
            for (int t = 0; t < LatentDimensions; t++)
                norm2 += (double)y[i * LatentDimensions + t] * y[i * LatentDimensions + t];
            max = Math.Max(max, Math.Sqrt(norm2));
        }
        return SyntheticToy.Load(ml, y.Select(v => (float)(v / max)).ToArray(), LatentDimensions);
    }

    /// <summary>The digits table as 64 pixel columns, (p − 8)/16 so that every row has norm ≤ 4.</summary>
    private static (IDataView Data, int Dimensions) Digits(MLContext ml)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Data", "digits.csv");
        var values = File.ReadLines(path).Where(l => l.Length > 0)
            .SelectMany(l => l.Split(',').Take(64).Select(s => (float.Parse(s, CultureInfo.InvariantCulture) - 8f) / 16f)).ToArray();
        return (SyntheticToy.Load(ml, values, 64), 64);
    }
}
