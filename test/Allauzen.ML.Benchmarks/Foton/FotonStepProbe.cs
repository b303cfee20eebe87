using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Foton;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Per-step probes of the FOTON training step on the orthogonal MLP 784-[256]×depth-10 (batch 256, dropout 0.1,
/// one random batch): <c>time</c> runs backprop, FOTON storing activations (the default) and FOTON recomputing them
/// in one process and prints ms per step and the ratios to backprop (<c>--real</c>: the first 256 images of the
/// benchmark data instead of a Gaussian batch); <c>memory ALGORITHM</c> (backprop, store,
/// recompute) prints the peak RSS of 10 steps over the RSS after a warm-up step (run each algorithm in its own
/// process, with <c>MALLOC_MMAP_THRESHOLD_=131072 DOTNET_GCgen0size=0x200000</c> as the sample does, so freed
/// buffers leave the RSS): the working set of training alone, without the data or the weights.
/// </summary>
/// <example><c>dotnet test/Allauzen.ML.Benchmarks/bin/Release/net10.0/Allauzen.ML.Benchmarks.dll --foton-step time 50</c></example>
public static class FotonStepProbe
{
    public static void Run(string[] args)
    {
        Torch.TorchRuntime.EnsureInitialized();
        string mode = args.Length > 1 ? args[1] : "time";
        int depth = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 50;
        torch.random.manual_seed(1);
        var arch = new FotonArchitecture(784, [.. Enumerable.Repeat(256, depth)], 10, depth > 2 ? FotonActivation.Tanh : FotonActivation.Relu);
        var x = torch.randn(256, 784);
        var y = torch.randint(0, 10, [256], dtype: ScalarType.Int64);
        if (args.Contains("--real"))
        {
            // The first 256 rows of the benchmark's data (Fashion-MNIST scaled to [0, 1] as in FotonBenchmarks).
            var ml = new MLContext(seed: 1);
            var (train, _, _) = BenchData.Prepared(ml);
            var rows = ml.Data.TakeRows(train, 256);
            var features = rows.GetColumn<float[]>("Features").SelectMany(f => f).ToArray();
            var labels = rows.GetColumn<uint>("Label").Select(l => (long)l - 1).ToArray();
            x = torch.tensor(features, [256, features.Length / 256]);
            y = torch.tensor(labels);
            args = [.. args.Where(a => a != "--real")];
        }
        FotonTrainStep Step(string algorithm)
        {
            using var g = new Generator(1, torch.CPU);
            var net = OrthogonalMlp.Create(arch, FotonInit.Orthogonal, g, ScalarType.Float32, torch.CPU);
            bool bp = algorithm == "backprop";
            var o = new FotonOptions
            {
                Algorithm = bp ? FotonAlgorithm.Backprop : FotonAlgorithm.Foton, HiddenSizes = [.. arch.HiddenSizes],
                LearningRate = bp ? 0.1 : 0.5, RecomputeActivations = algorithm == "recompute",
            };
            var step = new FotonTrainStep(net, o, 1, torch.CPU);
            step.BeginEpoch(1);
            using (torch.NewDisposeScope())
                step.TrainBatch(x, y); // warm-up (the output layer's first projection from its uniform init)
            return step;
        }
        if (mode == "memory")
        {
            string algorithm = args.Length > 3 ? args[3] : "store";
            using var step = Step(algorithm);
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            File.WriteAllText("/proc/self/clear_refs", "5"); // reset VmHWM to the current RSS
            double baseline = StatusMb("VmRSS");
            for (int k = 0; k < 10; k++)
            {
                using var scope = torch.NewDisposeScope();
                step.TrainBatch(x, y);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"depth {depth}, {algorithm}: peak working set of a step {StatusMb("VmHWM") - baseline:F1} MB"));
            return;
        }
        var results = new Dictionary<string, double>();
        foreach (var algorithm in new[] { "backprop", "store", "recompute" })
        {
            using var step = Step(algorithm);
            var sw = Stopwatch.StartNew();
            const int steps = 10;
            for (int k = 0; k < steps; k++)
            {
                using var scope = torch.NewDisposeScope();
                step.TrainBatch(x, y);
            }
            results[algorithm] = sw.Elapsed.TotalMilliseconds / steps;
            var d = step.EpochDiagnostics();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"depth {depth}, {algorithm}: {results[algorithm]:F1} ms/step, ×{results[algorithm] / results["backprop"]:F2} backprop; Björck iterations/layer {d.GetValueOrDefault("bjorck_iterations"):F2}, max orthogonality error {d["ortho_err"]:G3}"));
        }
    }

    private static double StatusMb(string key) =>
        double.Parse(File.ReadAllLines("/proc/self/status").First(l => l.StartsWith(key + ":", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
}
