using System.Diagnostics;
using Allauzen.ML.Smoothing;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// <c>-- --smoothing-ratio [pairs] [serial] [overlap] [never-spin|spin-during-run] [mlp|cnn] [onnx]</c>: the <see cref="SmoothingBenchmarks"/> cases
/// timed back to back in one process (the baseline, then each certifier variant), printing each round's time ratios,
/// CPU-time ratios (process CPU time, every thread) and where the certifier's wall time went (noise, forward, votes),
/// then the medians: on a shared machine the load changes between BenchmarkDotNet's separate blocks of iterations, and
/// interleaving keeps both sides of a ratio under the same load.
/// </summary>
/// <remarks>
/// Variants: the sampler as configured by default for a CPU model (noise on all cores between forward passes), and with
/// <c>overlap</c> also the double-buffered sampler (next batch's noise drawn on a worker thread during the forward pass),
/// measured in the same rounds. <c>serial</c> draws the noise on the calling thread; by default the certifier's ONNX Runtime session
/// waits as ONNX Runtime does by default (threads spin, also after a forward pass returns); <c>never-spin</c> makes them
/// sleep whenever idle, <c>spin-during-run</c> lets them spin only until a pass returns. <c>mlp</c> or <c>cnn</c> keeps one base model,
/// <c>onnx</c> only its ONNX cases (for the MLP: the direct-noise path and the first-layer shortcut, each against the raw ORT forward).
/// </remarks>
internal static class SmoothingRatioProbe
{
    public static void Run(string[] args)
    {
        int pairs = args.Length > 1 && int.TryParse(args[1], out int p) ? p : 7;
        var flags = args.Skip(1).ToHashSet();
        if (flags.Contains("serial"))
            SmoothingSampler.ParallelNoise = false;
        OnnxBaseModel.Spinning = flags.Contains("never-spin") ? OnnxBaseModel.SpinPolicy.Never
            : flags.Contains("spin-during-run") ? OnnxBaseModel.SpinPolicy.DuringRun : OnnxBaseModel.SpinPolicy.OrtDefault;
        bool overlap = flags.Contains("overlap");
        bool mlp = !flags.Contains("cnn") || flags.Contains("mlp"), cnn = !flags.Contains("mlp") || flags.Contains("cnn");
        bool torchCases = !flags.Contains("onnx");
        Console.WriteLine($"noise drawn {(SmoothingSampler.ParallelNoise ? "on all cores" : "on the calling thread")}; certifier's ONNX threads spin: " +
            $"{OnnxBaseModel.Spinning}; {Environment.ProcessorCount} cores; load {Load()}");
        var b = new SmoothingBenchmarks();
        b.Setup();
        try
        {
            if (mlp)
            {
                if (torchCases)
                {
                    Measure("MLP Torch direct noise / raw forward", b.RawBatchedForward, () => b.CertifyCohenDirectNoise(), pairs, overlap);
                    Measure("MLP Torch shortcut / raw forward", b.RawBatchedForward, () => b.CertifyCohen(), pairs, false);
                }
                Console.WriteLine($"MLP ONNX certifier: {b.OnnxShortcut}");
                Measure("MLP ONNX direct noise / raw ORT forward", b.RawOrtForward, () => b.CertifyCohenOnnxDirectNoise(), pairs, overlap);
                Measure("MLP ONNX shortcut / raw ORT forward", b.RawOrtForward, () => b.CertifyCohenOnnx(), pairs, false);
                Measure("MLP ONNX shortcut, rest on ORT's pool / raw ORT forward", b.RawOrtForward, () => b.CertifyCohenOnnxPooledRest(), pairs, false);
            }
            if (cnn)
            {
                if (torchCases)
                    Measure("CNN Torch / raw forward", b.RawCnnForward, () => b.CertifyCnn(), pairs, overlap);
                Measure("CNN ONNX / raw ORT forward", b.RawCnnOrtForward, () => b.CertifyCnnOnnx(), pairs, overlap);
            }
        }
        finally
        {
            b.Cleanup();
        }
    }

    private static string Load() => File.ReadAllText("/proc/loadavg").Trim();

    private static void Measure(string name, Func<float> baseline, Action candidate, int pairs, bool overlap)
    {
        var variants = overlap ? new[] { false, true } : [false];
        baseline();
        foreach (bool v in variants)
        {
            SmoothingSampler.OverlapNoise = v;
            candidate();
        }
        var ratios = variants.Select(_ => new List<double>()).ToArray();
        var cpuRatios = variants.Select(_ => new List<double>()).ToArray();
        var process = Process.GetCurrentProcess();
        double Cpu()
        {
            process.Refresh();
            return process.TotalProcessorTime.TotalMilliseconds;
        }
        for (int i = 0; i < pairs; i++)
        {
            double c0 = Cpu();
            var sw = Stopwatch.StartNew();
            baseline();
            double tb = sw.Elapsed.TotalMilliseconds, cb = Cpu() - c0;
            var line = $"  {name}: baseline {tb:F0} ms (CPU {cb:F0})";
            for (int j = 0; j < variants.Length; j++)
            {
                SmoothingSampler.OverlapNoise = variants[j];
                SmoothingSampler.Profile.Reset();
                c0 = Cpu();
                sw.Restart();
                candidate();
                double tc = sw.Elapsed.TotalMilliseconds, cc = Cpu() - c0;
                var (draw, forward, count, batches) = SmoothingSampler.Profile.Read();
                ratios[j].Add(tc / tb);
                cpuRatios[j].Add(cc / cb);
                line += $"; {(variants[j] ? "overlap" : "certifier")} {tc:F0} ms (CPU {cc:F0}; noise {draw:F0}, forward {forward:F0}, votes {count:F1}, " +
                    $"{batches} batches) ratio {tc / tb:F2}, CPU ratio {cc / cb:F2}";
            }
            Console.WriteLine($"{line}; load {Load()}");
        }
        SmoothingSampler.OverlapNoise = null;
        for (int j = 0; j < variants.Length; j++)
        {
            ratios[j].Sort();
            cpuRatios[j].Sort();
            Console.WriteLine($"{name}{(variants[j] ? " (overlap)" : "")}: median time ratio {ratios[j][ratios[j].Count / 2]:F2} " +
                $"(range {ratios[j][0]:F2}–{ratios[j][^1]:F2}), median CPU-time ratio {cpuRatios[j][cpuRatios[j].Count / 2]:F2} " +
                $"(range {cpuRatios[j][0]:F2}–{cpuRatios[j][^1]:F2}) over {pairs} rounds");
        }
    }
}
