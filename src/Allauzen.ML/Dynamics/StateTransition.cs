namespace Allauzen.ML.Dynamics;

/// <summary>
/// One row of a trajectory data set: a state and the state one sample interval later. The rows that
/// <see cref="DynamicalSystems.Lorenz63"/> and <see cref="DynamicalSystems.Transitions"/> return have this shape,
/// and it is the input class of a <c>PredictionEngine</c> over a <see cref="NeuralOdeTransformer"/>.
/// </summary>
public sealed class StateTransition
{
    /// <summary>The state x_i (all rows of one data set have the same length).</summary>
    public float[] State { get; set; } = [];

    /// <summary>The state x_{i+1} one sample interval later (same length as <see cref="State"/>).</summary>
    public float[] NextState { get; set; } = [];
}
