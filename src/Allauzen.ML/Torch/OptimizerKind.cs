namespace Allauzen.ML;

/// <summary>Optimizers available to Allauzen trainers.</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with optional momentum (<see cref="TorchTrainerOptions.Momentum"/>).</summary>
    Sgd,

    /// <summary>Adam (Kingma and Ba); weight decay is added to the gradient (L2).</summary>
    Adam,

    /// <summary>AdamW (Loshchilov and Hutter): decoupled weight decay.</summary>
    AdamW,
}
