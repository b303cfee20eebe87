using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Allauzen.ML.Dynamics;
using Microsoft.ML;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// The .NET side of the speed comparison with the reference PyTorch code (reference_driver.py, same data, same settings):
/// the time of one training closure (solver forward + MSE + backward on all rows) at the initial weights, and the
/// epoch times of full-batch L-BFGS training. Run: <c>-- --ode-speed ode-train.csv [blackbox|fehlberg] [epochs] [evals]</c>.
/// </summary>
internal static class NeuralOdeSpeedProbe
{
    public static void Run(string[] args)
    {
        string path = args.Length > 1 ? args[1] : throw new ArgumentException("usage: --ode-speed ode-train.csv [blackbox|fehlberg] [epochs] [evals]");
        bool fehlberg = args.Length > 2 && args[2] == "fehlberg";
        int epochs = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 10;
        int evals = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 50;
        var trajectory = File.ReadLines(path).Where(l => l.Length > 0)
            .Select(l => l.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Torch.TorchRuntime.EnsureInitialized();
        Torch.TorchRuntime.SetThreads(1);

        // Closure cost at the initial weights.
        int d = trajectory[0].Length;
        var flat = trajectory.SelectMany(s => s.Select(v => (float)v)).ToArray();
        var states = flat.AsSpan(0, flat.Length - d).ToArray();
        var targets = flat.AsSpan(d).ToArray();
        Torch.TorchRuntime.SetSeed(1);
        var mean = new float[d];
        var scale = Enumerable.Repeat(1f, d).ToArray();
        using var net = new OdeNetwork(new NeuralOdeArchitecture(d, [50, 50], mean, scale));
        var settings = new OdeSolverSettings(OdeSolver.Fehlberg32, 1, 0.1, 0.9, 10);
        using var x = torch.tensor(states, [states.Length / d, d]);
        using var y = torch.tensor(targets, [targets.Length / d, d]);
        void Closure()
        {
            using var scope = torch.NewDisposeScope();
            net.zero_grad();
            var pred = AdaptiveSolver.TrainForward(settings, net.forward, x, y, fehlberg, new SolverStatistics());
            nn.functional.mse_loss(pred, y).backward();
        }
        for (int i = 0; i < 3; i++)
            Closure();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < evals; i++)
            Closure();
        double closureMs = sw.Elapsed.TotalMilliseconds / evals;

        var ml = new MLContext(seed: 1);
        var model = ml.Transforms.NeuralOdeForecaster(new NeuralOdeOptions
        {
            Seed = 1, Epochs = epochs, Training = fehlberg ? OdeTraining.Fehlberg : OdeTraining.BlackBox,
        }).Fit(DynamicalSystems.Transitions(trajectory));
        var seconds = model.TrainingHistory.Select(e => e.Seconds).ToArray();
        var sorted = seconds.Order().ToArray();
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            implementation = "Allauzen.ML (TorchSharp 0.107)",
            training = fehlberg ? "fehlberg" : "blackbox",
            rows = states.Length / d,
            closure_ms = closureMs,
            epoch_seconds = seconds,
            median_epoch_seconds = sorted[sorted.Length / 2],
            final_loss = model.TrainingHistory[^1].Loss,
        }, new JsonSerializerOptions { WriteIndented = true }));
    }
}
