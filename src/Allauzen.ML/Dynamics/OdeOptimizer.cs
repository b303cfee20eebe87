namespace Allauzen.ML.Dynamics;

/// <summary>The optimizer of the Neural ODE.</summary>
public enum OdeOptimizer
{
    /// <summary>
    /// L-BFGS as the paper (history 100, <see cref="NeuralOdeOptions.LbfgsIterations"/> iterations per step,
    /// 25 function evaluations, gradient tolerance 1e-5, change tolerance 1e-9), full batch by default. TorchSharp's
    /// L-BFGS has no line search, so the step is scaled by <see cref="NeuralOdeOptions.LearningRate"/>.
    /// </summary>
    Lbfgs,

    /// <summary>Adam on mini-batches of <see cref="NeuralOdeOptions.BatchSize"/> rows.</summary>
    Adam,
}
