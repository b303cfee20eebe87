namespace Allauzen.ML.Evaluation;

/// <summary>One point of a certified-accuracy curve.</summary>
/// <param name="Radius">The L2 radius ε, in the units of the feature column.</param>
/// <param name="CertifiedAccuracy">
/// Fraction of all rows whose prediction is correct <b>and</b> whose certified radius is ≥ ε (an abstention counts as wrong).
/// </param>
public readonly record struct CertifiedAccuracyPoint(double Radius, double CertifiedAccuracy);
