namespace Allauzen.ML.Dynamics;

/// <summary>One training epoch of a Neural ODE: the figures of the paper's training curves.</summary>
/// <param name="Epoch">The epoch (1-based).</param>
/// <param name="Loss">Mean squared error over the epoch's rows (for L-BFGS: at the start of each optimizer step).</param>
/// <param name="AcceptedFraction">Fraction of rows whose first RK3 step was accepted (r ≤ ε); 1 for fixed solvers.</param>
/// <param name="MeanRejectedSteps">Mean 1/h' (before rounding) over the rejected rows; 0 when none was rejected.</param>
/// <param name="MeanSteps">Mean whole solver steps per row, as used in the training forward pass.</param>
/// <param name="Rows">Rows trained on in the epoch.</param>
/// <param name="Seconds">Wall time of the epoch.</param>
public sealed record NeuralOdeEpoch(int Epoch, double Loss, double AcceptedFraction, double MeanRejectedSteps, double MeanSteps, int Rows, double Seconds);
