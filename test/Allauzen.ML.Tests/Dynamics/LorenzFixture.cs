using Allauzen.ML.Dynamics;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Dynamics;

/// <summary>Shared Lorenz'63 data and trained models (training once per test run keeps the suite fast).</summary>
internal static class LorenzFixture
{
    public const double Dt = 0.01;

    /// <summary>Largest Lyapunov exponent of Lorenz'63 (σ = 10, ρ = 28, β = 8/3), per time unit.</summary>
    public const double LambdaMax = 0.906;

    private static readonly Lazy<double[][]> TrainTrajectory = new(() => DynamicalSystems.Lorenz63Trajectory(1000, Dt, seed: 1));
    private static readonly Lazy<double[][]> TestTrajectory = new(() => DynamicalSystems.Lorenz63Trajectory(1000, Dt, seed: 2));

    public static double[][] Train => TrainTrajectory.Value;

    public static double[][] Test => TestTrajectory.Value;

    public static IDataView TrainData => DynamicalSystems.Transitions(Train);

    public static IDataView TestData => DynamicalSystems.Transitions(Test);

    private static readonly Dictionary<string, NeuralOdeTransformer> Models = [];

    /// <summary>A model trained on <see cref="Train"/> with <paramref name="configure"/>, cached under <paramref name="key"/>.</summary>
    public static NeuralOdeTransformer Model(string key, Action<NeuralOdeOptions> configure)
    {
        lock (Models)
        {
            if (!Models.TryGetValue(key, out var m))
            {
                var o = new NeuralOdeOptions { Seed = 1 };
                configure(o);
                m = new MLContext(seed: 1).Transforms.NeuralOdeForecaster(o).Fit(TrainData);
                Models[key] = m;
            }
            return m;
        }
    }

    /// <summary>Mean squared error per coordinate between predictions and targets.</summary>
    public static double Mse(IEnumerable<float[]> predicted, IEnumerable<float[]> target) =>
        predicted.Zip(target).SelectMany(p => p.First.Zip(p.Second, (a, b) => (double)(a - b) * (a - b))).Average();
}
