namespace Allauzen.ML.Dynamics;

/// <summary>
/// One trajectory window: <see cref="Window"/> holds w consecutive states of length d, flattened (state after state).
/// The rows that <see cref="DynamicalSystems.Windows"/> returns have this shape.
/// </summary>
public sealed class TrajectoryWindow
{
    /// <summary>w·d values: the states x_s, …, x_{s+w−1}, one after the other.</summary>
    public float[] Window { get; set; } = [];

    /// <summary>The index s of the window's first state in the trajectory.</summary>
    public int Start { get; set; }
}
