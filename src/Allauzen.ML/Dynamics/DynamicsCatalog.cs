using Allauzen.ML.Core;
using Allauzen.ML.Dynamics;

namespace Microsoft.ML;

/// <summary>Catalog entry points of the Allauzen dynamical-systems components.</summary>
public static class DynamicsCatalog
{
    /// <summary>
    /// A Neural ODE forecaster ẋ = f_θ(x) learnt from (State, NextState) rows with the Fehlberg 3(2) solver
    /// (Allauzen, Dardis, Plath, NeurIPS DLDE 2022).
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="options">The options; <c>new NeuralOdeOptions()</c> is the paper's setting.</param>
    /// <example><code>
    /// var train = DynamicalSystems.Lorenz63(points: 5000, dt: 0.01, seed: 1);
    /// var model = ml.Transforms.NeuralOdeForecaster(new NeuralOdeOptions { Training = OdeTraining.Fehlberg }).Fit(train);
    /// float[][] path = model.Rollout([1f, 1f, 20f], steps: 500);
    /// </code></example>
    public static NeuralOdeEstimator NeuralOdeForecaster(this TransformsCatalog catalog, NeuralOdeOptions options) =>
        new(CatalogEntry.Environment(catalog), options);

    /// <summary>
    /// Adds the visitation entropy of each trajectory window (the curriculum paper's complexity score, see
    /// <see cref="TrajectoryEntropyTransformer"/>); Fit learns the partition from the training windows' states.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="inputColumnName">The window column: a float vector of w·stateSize values, state after state.</param>
    /// <param name="stateSize">Length of one state (3 for Lorenz'63).</param>
    /// <param name="bins">Boxes per coordinate of the partition (default 8).</param>
    /// <param name="outputColumnName">The entropy column (Single, natural log). Default <c>"Entropy"</c>.</param>
    public static TrajectoryEntropyEstimator TrajectoryEntropy(this TransformsCatalog catalog, string inputColumnName = "Window",
        int stateSize = 3, int bins = 8, string outputColumnName = "Entropy") =>
        new(CatalogEntry.Environment(catalog), inputColumnName, outputColumnName, stateSize, bins);
}
