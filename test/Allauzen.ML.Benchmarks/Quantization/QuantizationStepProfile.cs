using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Quantization;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Benchmarks.Quantization;

/// <summary>
/// Where the time of one competitive-learning step goes (not BenchmarkDotNet): the step rebuilt stage by stage on the
/// benchmark's shapes (batch 64 of 16 features, trunk 64×64, one thread), each stage a full backprop step, timed
/// per batch over one pass of 20,000 rows in process CPU time (with one libtorch thread, the time the step computes:
/// on a shared machine, wall time mostly measures the wait for a core); rounds alternate the stages, and the median
/// over rounds is reported with its difference to the plain-MSE stage.
/// Usage: -- --quantization-epoch profile [rounds (default 7)] [points (default 2)]
/// </summary>
internal static class QuantizationStepProfile
{
    public static void Run(string[] args)
    {
        int rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 7;
        int points = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 2;
        TorchRuntime.EnsureInitialized();
        TorchRuntime.SetThreads(1);
        torch.random.manual_seed(1);
        const int rows = 20_000, nx = 16, batch = 64;
        var xy = torch.rand(rows, nx + 1).DetachFromDisposeScope();
        var mean = torch.zeros(1, 1).DetachFromDisposeScope();
        var inv = torch.ones(1, 1).DetachFromDisposeScope();
        (string Name, int N, bool Sorted, Func<Stage, Tensor, double> Body)[] stages =
        [
            ("plain MSE (n = 1)", 1, false, (s, b) => s.Mse(b)),
            ($"n = {points} unsorted: min + cross-entropy", points, false, (s, b) => s.Competitive(b, false, false, false)),
            ($"n = {points} sorted: min + cross-entropy", points, true, (s, b) => s.Competitive(b, false, false, false)),
            ($"  sorted by where + softplus + cumsum", points, false, (s, b) => s.Competitive(b, false, false, false, Cumsum)),
            ($"  sorted by cat + softplus + cumsum", points, false, (s, b) => s.Competitive(b, false, false, false, CatCumsum)),
            ($"  sorted, gradient written out (Competitive)", points, true, (s, b) => s.Manual(b)),
            ($"  autograd + win counts (bincount)", points, true, (s, b) => s.Competitive(b, true, false, false)),
            ($"  autograd + hit rate, stacked transfer", points, true, (s, b) => s.Competitive(b, true, true, false)),
            ($"  autograd + hit rate, two item() reads", points, true, (s, b) => s.Competitive(b, true, true, true)),
            ("trainer's step, plain MSE baseline", 1, false, (s, b) => s.Trainer(b)),
            ($"trainer's step, n = {points} sorted", points, true, (s, b) => s.Trainer(b)),
        ];
        var times = stages.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            for (int c = 0; c < stages.Length; c++)
            {
                using var stage = new Stage(new QuantizerArchitecture(nx, [64, 64], stages[c].N, 1, stages[c].Sorted), mean, inv);
                stage.Prepare();
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                int count = 0;
                for (int start = 0; start + batch <= rows; start += batch, count++)
                {
                    using var scope = torch.NewDisposeScope();
                    stages[c].Body(stage, xy.narrow(0, start, batch));
                }
                times[c].Add((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds * 1000 / count);
            }
        }
        double baseline = Median(times[0]);
        Console.WriteLine($"{rounds} rounds, CPU µs per batch (batch {batch}, 16 features, trunk 64×64, 1 thread), load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        for (int c = 0; c < stages.Length; c++)
        {
            double m = Median(times[c]);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{stages[c].Name,-45} {m,7:F0} µs  ({m - baseline,+6:F0} µs, ×{m / baseline:F2})"));
        }
    }

    private static Tensor Cumsum(Tensor r)
    {
        var m = torch.tensor(new[] { true }.Concat(Enumerable.Repeat(false, (int)r.shape[1] - 1)).ToArray(), [1, r.shape[1]]);
        return torch.where(m, r, nn.functional.softplus(r)).cumsum(1);
    }

    private static Tensor CatCumsum(Tensor r) =>
        torch.cat([r.narrow(1, 0, 1), nn.functional.softplus(r.narrow(1, 1, r.shape[1] - 1))], 1).cumsum(1);

    private static double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);

    /// <summary>A network, its Adam optimizer and the win counts: the state of one step.</summary>
    private sealed class Stage(QuantizerArchitecture a, Tensor mean, Tensor inv) : IDisposable
    {
        private readonly QuantizerNetwork _net = new(a);
        private readonly Tensor _wins = torch.zeros(a.Points, ScalarType.Int64).DetachFromDisposeScope();
        private optim.Optimizer? _optimizer;

        private CompetitiveLearningStep? _step;

        private optim.Optimizer Optimizer => _optimizer ??= optim.Adam(_net.parameters(), 1e-3);

        /// <summary>The trainer's own step (default options: dead-head re-seeding on) on a fresh network of the same shape.</summary>
        public double Trainer(Tensor xy) => ((ITrainStep)_step!).TrainBatch(xy, xy).LossSum;

        /// <summary>Builds the trainer's step outside the per-batch dispose scopes.</summary>
        public void Prepare()
        {
            var o = new ConditionalQuantizationOptions { NumberOfPoints = a.Points, PlainMseBaseline = a.Points == 1, HiddenSizes = [.. a.HiddenSizes] };
            _step = new CompetitiveLearningStep(new QuantizerNetwork(a), o, 16, [0f], [1f]);
            ((ITrainStep)_step).BeginEpoch(1);
            _ = Optimizer;
        }

        private Tensor Distances(Tensor xy, out Tensor logits, Func<Tensor, Tensor>? sort = null)
        {
            Optimizer.zero_grad();
            var x = xy.narrow(1, 0, 16);
            var y = (xy.narrow(1, 16, 1) - mean) * inv;
            var (f, l) = _net.ForwardFlat(x);
            if (sort is not null)
                f = sort(f);
            logits = l;
            return (y - f).square();
        }

        public double Mse(Tensor xy)
        {
            var loss = Distances(xy, out _).mean();
            loss.backward();
            Optimizer.step();
            return loss.item<float>();
        }

        /// <summary>min + cross-entropy with the gradient of the heads' output written out, one backward from there.</summary>
        public double Manual(Tensor xy)
        {
            Optimizer.zero_grad();
            var x = xy.narrow(1, 0, 16);
            var y = (xy.narrow(1, 16, 1) - mean) * inv;
            var heads = _net.HeadsOutput(x);
            var (distortion, _, gradient) = CompetitiveLearningStep.Competitive(_net, heads, y, null, true, null, 0);
            heads.backward([gradient!]);
            Optimizer.step();
            return distortion.item<float>();
        }

        public double Competitive(Tensor xy, bool counts, bool hits, bool items, Func<Tensor, Tensor>? sort = null)
        {
            var dist = Distances(xy, out var logits, sort);
            var (dmin, win) = dist.min(1);
            var distortion = dmin.mean();
            var loss = distortion + nn.functional.cross_entropy(logits, win);
            loss.backward();
            Optimizer.step();
            using var _ = torch.no_grad();
            if (counts)
                _wins.add_(win.bincount(null, a.Points));
            if (!hits)
                return distortion.item<float>();
            if (items)
                return distortion.item<float>() + logits.argmax(1).eq(win).sum().item<long>();
            var stats = torch.stack([distortion.detach(), logits.argmax(1).eq(win).sum().to_type(ScalarType.Float32)]).cpu();
            var v = stats.data<float>();
            return v[0] + v[1];
        }

        public void Dispose()
        {
            _optimizer?.Dispose();
            _step?.Dispose();
            _net.Dispose();
            _wins.Dispose();
        }
    }
}
