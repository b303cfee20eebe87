using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Foton;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Per-step probes of the FOTON training step on the orthogonal MLP 784-[256]×depth-10 (batch 256 or
/// <c>--batch N</c>, dropout 0.1 or <c>--dropout p</c>; 10 steps, each on its own mini-batch: 10 Gaussian ones, or
/// with <c>--real</c> the first 10 of the benchmark data — repeating one batch would shrink the later steps and
/// their projections).
/// <list type="bullet">
/// <item><c>time</c>: backprop, FOTON storing activations (the default, "store"), FOTON recomputing them, FOTON without
/// its projection ("unprojected", timing only) and backprop with FOTON's projection ("backprop_ortho"), in one
/// process, two rounds (the second reported): ms per step and the ratio to backprop. <c>--only ALG</c> times one
/// of them against backprop (<c>--solo</c>: alone, for a profiler), <c>--each</c> prints every step's time.</item>
/// <item><c>memory ALGORITHM</c> (backprop, store, recompute): the peak RSS of the 10 steps over the RSS after a
/// warm-up step, the working set of training alone, without the data or the weights. Run each algorithm in its
/// own process, with <c>MALLOC_MMAP_THRESHOLD_=131072 DOTNET_GCgen0size=0x200000</c> as the sample does (freed
/// buffers leave the RSS), and without <c>--real</c> (loading the data leaves managed garbage whose collection
/// during the steps moves the RSS by tens of MB).</item>
/// <item><c>decompose</c>: the FOTON step taken apart (masks, clean forward, modulated pass and updates, optimizer,
/// projection, Fᵀ refresh, loss), ms and % of a step.</item>
/// <item><c>projection</c>: one 256×256 product in each layout, and <c>Bjorck.ProjectWarm</c> after steps of four sizes.</item>
/// </list>
/// </summary>
/// <example><c>dotnet test/Allauzen.ML.Benchmarks/bin/Release/net10.0/Allauzen.ML.Benchmarks.dll --foton-step time 50 --real</c></example>
public static class FotonStepProbe
{
    public static void Run(string[] args)
    {
        Torch.TorchRuntime.EnsureInitialized();
        string mode = args.Length > 1 ? args[1] : "time";
        int depth = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 50;
        int batch = TakeOption(ref args, "--batch") is string bs ? int.Parse(bs, CultureInfo.InvariantCulture) : 256;
        double dropout = TakeOption(ref args, "--dropout") is string ds ? double.Parse(ds, CultureInfo.InvariantCulture) : 0.1;
        int steps = TakeOption(ref args, "--steps") is string ss ? int.Parse(ss, CultureInfo.InvariantCulture) : 10;
        torch.random.manual_seed(1);
        var arch = new FotonArchitecture(784, [.. Enumerable.Repeat(256, depth)], 10, depth > 2 ? FotonActivation.Tanh : FotonActivation.Relu);
        var xs = Enumerable.Range(0, steps).Select(_ => torch.randn(batch, 784)).ToList();
        var ys = Enumerable.Range(0, steps).Select(_ => torch.randint(0, 10, [batch], dtype: ScalarType.Int64)).ToList();
        if (args.Contains("--real"))
        {
            // The first 10 mini-batches of the benchmark's data (Fashion-MNIST standardised as in FotonBenchmarks),
            // one per step: repeating one batch would shrink the later steps (and their projections).
            var ml = new MLContext(seed: 1);
            var (train, _, _) = BenchData.Prepared(ml);
            var rows = ml.Data.TakeRows(train, (long)batch * steps);
            var features = rows.GetColumn<float[]>("Features").ToArray();
            var labels = rows.GetColumn<uint>("Label").Select(l => (long)l - 1).ToArray();
            xs.Clear();
            ys.Clear();
            for (int k = 0; k + batch <= features.Length; k += batch)
            {
                xs.Add(torch.tensor(features.Skip(k).Take(batch).SelectMany(f => f).ToArray(), [batch, features[0].Length]));
                ys.Add(torch.tensor(labels.Skip(k).Take(batch).ToArray()));
            }
            args = [.. args.Where(a => a != "--real")];
        }
        var x = xs[0];
        var y = ys[0];
        FotonTrainStep Step(string algorithm)
        {
            using var g = new Generator(1, torch.CPU);
            var net = OrthogonalMlp.Create(arch, FotonInit.Orthogonal, g, ScalarType.Float32, torch.CPU);
            bool bp = algorithm.StartsWith("backprop", StringComparison.Ordinal);
            var o = new FotonOptions
            {
                Algorithm = bp ? FotonAlgorithm.Backprop : FotonAlgorithm.Foton, HiddenSizes = [.. arch.HiddenSizes],
                LearningRate = algorithm == "backprop" ? 0.1 : 0.5, RecomputeActivations = algorithm == "recompute", BatchSize = batch,
                ProjectBackprop = algorithm == "backprop_ortho", Dropout = dropout,
            };
            if (algorithm == "unprojected")
            {
                // FOTON's two passes and updates without the projection (timing only: at lr 0.5 it drifts and
                // diverges within a few steps, so a small rate keeps the 10 steps finite).
                o.ProjectionInterval = int.MaxValue;
                o.LearningRate = 0.01;
            }
            var step = new FotonTrainStep(net, o, 1, torch.CPU);
            step.BeginEpoch(1);
            using (torch.NewDisposeScope())
                step.TrainBatch(x, y); // warm-up (the output layer's first projection from its uniform init)
            return step;
        }
        if (mode == "projection")
        {
            // The projection alone: one 256×256 product, and ProjectWarm after an SGD-sized step of each size.
            var a = torch.randn(256, 256);
            var q = torch.linalg.qr(torch.randn(256, 256)).Q.contiguous();
            double Time(Action act, int n = 200)
            {
                act();
                var sw = Stopwatch.StartNew();
                for (int k = 0; k < n; k++)
                {
                    using var scope = torch.NewDisposeScope();
                    act();
                }
                return sw.Elapsed.TotalMilliseconds / n;
            }
            var b = torch.randn(256, 256);
            var wide = torch.randn(256, 784);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"256×256 products: AA {Time(() => a.mm(a)):F3} ms, AB {Time(() => a.mm(b)):F3}, ABᵀ {Time(() => a.mm(b.t())):F3}, AᵀB {Time(() => a.t().mm(b)):F3}, AAᵀ {Time(() => a.mm(a.t())):F3}, AᵀA {Time(() => a.t().mm(a)):F3}; 256×784: ZW {Time(() => a.mm(wide)):F3}, WWᵀ {Time(() => wide.mm(wide.t())):F3}, (WᵀZᵀ)ᵀ {Time(() => wide.t().mm(a.t()).t()):F3}"));
            // Symmetric products (Gram matrices, powers of R) against one general product, alternating, median thread CPU time.
            var sa = a.mm(a.t());
            foreach (var (name, left, right) in new[] { ("256×256×256", sa, sa), ("256×784×256 Gram", wide, wide.t()) })
            {
                var full = new List<double>();
                var sym = new List<double>();
                for (int rep = 0; rep < 15; rep++)
                {
                    full.Add(ThreadCpuMs(() => left.mm(right), 20));
                    sym.Add(ThreadCpuMs(() => Bjorck.SymmetricProduct(left, right), 20));
                }
                double err = (Bjorck.SymmetricProduct(left, right) - left.mm(right)).abs().max().ToDouble();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name}: mm {Median(full):F3} ms, symmetric blocks {Median(sym):F3} ms thread CPU (median of 15 × 20, alternating); max difference {err:G3}"));
            }
            foreach (double eta in new[] { 1e-3, 1e-2, 3e-2, 1e-1 })
            {
                var noise = torch.randn(256, 256).mul_(eta / 16);
                int iterations = 0;
                double bound = 0;
                double ms = Time(() =>
                {
                    var w = q.add(noise);
                    iterations = Bjorck.ProjectWarm(w, 10, 1e-6, out bound);
                }, 50);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {eta:G2}: ProjectWarm {ms:F3} ms, {iterations} iteration(s), bound {bound:G3}"));
            }
            return;
        }
        if (mode == "projection-loop")
        {
            // ProjectWarm alone on a 256×256 orthonormal matrix after a step of relative size η, in a loop (for a profiler).
            double eta = args.Length > 3 ? double.Parse(args[3], CultureInfo.InvariantCulture) : 0.01;
            int repetitions = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 2000;
            var q = torch.linalg.qr(torch.randn(256, 256)).Q.contiguous();
            var noise = torch.randn(256, 256).mul_(eta / 16);
            var w = torch.empty_like(q);
            int iterations = 0;
            var sw = Stopwatch.StartNew();
            for (int k = 0; k < repetitions; k++)
            {
                using var scope = torch.NewDisposeScope();
                w.copy_(q).add_(noise);
                iterations = Bjorck.ProjectWarm(w, 10, 4e-6, out _);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {eta:G2}: ProjectWarm {sw.Elapsed.TotalMilliseconds / repetitions:F3} ms, {iterations} iteration(s)"));
            return;
        }
        if (mode == "decompose")
        {
            Decompose(arch, xs, ys, batch, dropout, steps);
            return;
        }
        if (mode == "memory")
        {
            string algorithm = args.Length > 3 ? args[3] : "store";
            using var step = Step(algorithm);
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            File.WriteAllText("/proc/self/clear_refs", "5"); // reset VmHWM to the current RSS
            double baseline = StatusMb("VmRSS");
            for (int k = 0; k < steps; k++)
            {
                using var scope = torch.NewDisposeScope();
                step.TrainBatch(xs[k % xs.Count], ys[k % ys.Count]);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"depth {depth}, batch {batch}, {algorithm}: peak working set of a step {StatusMb("VmHWM") - baseline:F1} MB"));
            return;
        }
        var results = new Dictionary<string, double>();
        var cpuResults = new Dictionary<string, double>();
        int onlyAt = Array.IndexOf(args, "--only");
        string[] algorithms = onlyAt > 0 ? (args.Contains("--solo") ? [args[onlyAt + 1]] : ["backprop", args[onlyAt + 1]]) : ["backprop", "store", "recompute", "unprojected", "backprop_ortho"];
        // Two rounds over the algorithms; the second is the measurement (the first warms caches and the allocator).
        for (int round = 0; round < 2; round++)
        {
            foreach (var algorithm in algorithms)
            {
                using var step = Step(algorithm);
                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                var each = new List<double>();
                for (int k = 0; k < steps; k++)
                {
                    using var scope = torch.NewDisposeScope();
                    double t0 = sw.Elapsed.TotalMilliseconds;
                    step.TrainBatch(xs[k % xs.Count], ys[k % ys.Count]);
                    each.Add(sw.Elapsed.TotalMilliseconds - t0);
                }
                if (args.Contains("--each") && round == 1)
                    Console.WriteLine($"{algorithm}: " + string.Join(" ", each.Select(v => v.ToString("F0", CultureInfo.InvariantCulture))));
                results[algorithm] = sw.Elapsed.TotalMilliseconds / steps;
                // Process CPU time (one libtorch thread): on a machine loaded by other processes it counts this work only.
                cpuResults[algorithm] = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / steps;
                var d = step.EpochDiagnostics();
                if (round == 0)
                    continue;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"depth {depth}, batch {batch}, {algorithm}: {results[algorithm]:F1} ms/step, ×{results[algorithm] / results.GetValueOrDefault("backprop", double.NaN):F2} backprop (CPU {cpuResults[algorithm]:F1} ms/step, ×{cpuResults[algorithm] / cpuResults.GetValueOrDefault("backprop", double.NaN):F2}); Björck iterations/layer {d.GetValueOrDefault("bjorck_iterations"):F2}, max orthogonality error {d["ortho_err"]:G3}"));
            }
        }
    }

    /// <summary>
    /// The FOTON step (default options) taken apart, step by step on the same batches as <c>time</c>: the dropout
    /// masks' draw, the clean forward pass (timed on its own before the step, on the same weights), the modulated pass
    /// with the local updates (<see cref="FotonStep.Run"/> minus the clean pass and minus what it hands to the caller),
    /// the optimizer step, the projection, the refresh of Fᵀ and the rest (loss, accuracy). Second of two rounds.
    /// </summary>
    private static void Decompose(FotonArchitecture arch, List<Tensor> xs, List<Tensor> ys, int batch, double dropout, int steps)
    {
        var o = new FotonOptions { HiddenSizes = [.. arch.HiddenSizes], BatchSize = batch, Dropout = dropout };
        var widths = arch.FlatWidths();
        var offsets = new long[arch.HiddenSizes.Length + 1];
        for (int i = 0; i < arch.HiddenSizes.Length; i++)
            offsets[i + 1] = offsets[i] + widths[i + 1];
        var names = new[] { "dropout masks", "clean forward", "modulated pass + local updates", "optimizer step", "projection", "Fᵀ refresh", "loss, accuracy" };
        for (int round = 0; round < 2; round++)
        {
            using var g = new Generator(1, torch.CPU);
            using var net = OrthogonalMlp.Create(arch, FotonInit.Orthogonal, g, ScalarType.Float32, torch.CPU);
            using var optimizer = new WeightOptimizer(o.Optimizer, o.Momentum, o.WeightDecay);
            var f = net.FTranspose();
            var t = new double[names.Length];
            double total = 0, iterations = 0;
            using var noGrad = torch.no_grad();
            for (int k = 0; k <= steps; k++)
            {
                using var scope = torch.NewDisposeScope();
                var x = xs[k % xs.Count];
                var y = ys[k % ys.Count];
                var sw = Stopwatch.StartNew();
                using var masks = new DropoutMasks(dropout, 1, k + 1, batch, offsets, ScalarType.Float32, torch.CPU);
                for (int i = 0; i < arch.HiddenSizes.Length; i++)
                    masks.Layer(i)?.Dispose();
                double tMasks = sw.Elapsed.TotalMilliseconds;
                var targets = nn.functional.one_hot(y, arch.Classes).to(ScalarType.Float32);
                double tForward, tOptimizer = 0, tProjection = 0;
                using (torch.NewDisposeScope())
                {
                    var fw = Stopwatch.StartNew();
                    net.Forward(x, masks.All());
                    tForward = fw.Elapsed.TotalMilliseconds;
                }
                sw.Restart();
                optimizer.BeginStep();
                var logits = FotonStep.Run(net, x, targets, masks.Layer, f, 1.0, Math.Max(batch, o.BatchSize), (i, gi) =>
                {
                    var a = Stopwatch.StartNew();
                    optimizer.StepLayer(i, net.Weights.Length, net.Weights[i], gi, o.LearningRate);
                    double b = a.Elapsed.TotalMilliseconds;
                    iterations += Bjorck.ProjectWarm(net.Weights[i], o.BjorckIterations, o.OrthogonalityTolerance, out _);
                    tOptimizer += b;
                    tProjection += a.Elapsed.TotalMilliseconds - b;
                });
                double tRun = sw.Elapsed.TotalMilliseconds;
                sw.Restart();
                f.Dispose();
                f = net.FTranspose().DetachFromDisposeScope();
                double tF = sw.Elapsed.TotalMilliseconds;
                sw.Restart();
                nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).ToDouble();
                logits.argmax(1).eq(y).sum().ToInt64();
                double tLoss = sw.Elapsed.TotalMilliseconds;
                if (k == 0)
                    continue; // warm-up: the output layer's first projection from its uniform init
                double[] parts = [tMasks, tForward, tRun - tForward - tOptimizer - tProjection, tOptimizer, tProjection, tF, tLoss];
                for (int j = 0; j < parts.Length; j++)
                    t[j] += parts[j];
                total += tMasks + tRun + tF + tLoss;
            }
            f.Dispose();
            if (round == 0)
                continue;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"depth {arch.HiddenSizes.Length}, batch {batch}: FOTON step {total / steps:F1} ms; projection {iterations / steps / (arch.HiddenSizes.Length + 1):F2} iterations/layer"));
            for (int j = 0; j < names.Length; j++)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {names[j],-32} {t[j] / steps,8:F2} ms  {100 * t[j] / total,5:F1} %"));
        }
    }

    /// <summary>Removes "<paramref name="name"/> VALUE" from <paramref name="args"/> and returns VALUE (null when absent).</summary>
    private static string? TakeOption(ref string[] args, string name)
    {
        int at = Array.IndexOf(args, name);
        if (at < 0)
            return null;
        string value = args[at + 1];
        args = [.. args.Take(at), .. args.Skip(at + 2)];
        return value;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec ts);

    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>CPU time of the calling thread in ms (CLOCK_THREAD_CPUTIME_ID): what another process's load does not count.</summary>
    internal static double ThreadCpuMs()
    {
        ClockGetTime(3, out var ts);
        return ts.Seconds * 1e3 + ts.Nanoseconds / 1e6;
    }

    private static double ThreadCpuMs(Action act, int n = 200)
    {
        act();
        double t0 = ThreadCpuMs();
        for (int k = 0; k < n; k++)
        {
            using var scope = torch.NewDisposeScope();
            act();
        }
        return (ThreadCpuMs() - t0) / n;
    }

    private static double Median(List<double> v)
    {
        var sorted = v.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    private static double StatusMb(string key) =>
        double.Parse(File.ReadAllLines("/proc/self/status").First(l => l.StartsWith(key + ":", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
}
