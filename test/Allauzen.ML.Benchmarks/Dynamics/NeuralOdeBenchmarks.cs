using Allauzen.ML.Dynamics;
using BenchmarkDotNet.Attributes;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Neural ODE on Lorenz'63 (5000 rows, f_θ 3→50→50→3): one training epoch (one full-batch L-BFGS step of 20
/// iterations) with black-box training (the baseline), with Fehlberg training, and one Adam epoch on mini-batches of
/// 256 rows; plus scoring the 5000 rows with the adaptive solver and a 1000-step rollout.
/// </summary>
[MemoryDiagnoser]
public class NeuralOdeBenchmarks
{
    private MLContext _ml = null!;
    private IDataView _train = null!;
    private double[] _x0 = null!;
    private NeuralOdeTransformer _model = null!;

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        var trajectory = DynamicalSystems.Lorenz63Trajectory(5000, 0.01, seed: 1);
        _train = _ml.Data.Cache(DynamicalSystems.Transitions(trajectory));
        _x0 = trajectory[0];
        Torch.TorchRuntime.EnsureInitialized();
        _model = _ml.Transforms.NeuralOdeForecaster(new NeuralOdeOptions { Epochs = 5, Seed = 1 }).Fit(_train);
    }

    private NeuralOdeEstimator Estimator(OdeTraining training, OdeOptimizer optimizer) =>
        _ml.Transforms.NeuralOdeForecaster(new NeuralOdeOptions
        {
            Epochs = 1, Seed = 1, Training = training, Optimizer = optimizer, BatchSize = optimizer == OdeOptimizer.Adam ? 256 : 0,
        });

    [Benchmark(Baseline = true)]
    public object EpochLbfgsBlackBox() => Estimator(OdeTraining.BlackBox, OdeOptimizer.Lbfgs).Fit(_train);

    [Benchmark]
    public object EpochLbfgsFehlberg() => Estimator(OdeTraining.Fehlberg, OdeOptimizer.Lbfgs).Fit(_train);

    [Benchmark]
    public object EpochAdamBlackBox() => Estimator(OdeTraining.BlackBox, OdeOptimizer.Adam).Fit(_train);

    [Benchmark]
    public float ScoreAdaptive() => _model.Transform(_train).GetColumn<float>("SolverSteps").Sum();

    [Benchmark]
    public float[][] Rollout1000() => _model.Rollout(_x0.Select(v => (float)v).ToArray(), 1000);
}
