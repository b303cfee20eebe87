namespace Allauzen.ML.Dynamics;

/// <summary>The integration scheme of the Neural ODE over one sample interval (time 1 in index units).</summary>
public enum OdeSolver
{
    /// <summary>Explicit Euler with <see cref="NeuralOdeOptions.FixedSteps"/> equal steps.</summary>
    Euler,

    /// <summary>The paper's third-order Runge–Kutta step (A₂ of the Fehlberg pair) with <see cref="NeuralOdeOptions.FixedSteps"/> equal steps.</summary>
    Rk3,

    /// <summary>
    /// Fehlberg 3(2) with step-size adaptation: one RK3 step is tried; when its error rate r exceeds
    /// <see cref="NeuralOdeOptions.Tolerance"/>, the interval is recomputed with ⌈1/h'⌉ steps, h' = S·√(ε/r),
    /// at most <see cref="NeuralOdeOptions.MaxSteps"/>.
    /// </summary>
    Fehlberg32,
}
