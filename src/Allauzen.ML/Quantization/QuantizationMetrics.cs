namespace Allauzen.ML.Quantization;

/// <summary>
/// How well predicted quantizations Σ_i p_i(x) δ_{f_i(x)} describe the labels, from
/// <c>ml.Regression.EvaluateQuantization</c>. Lower is better for every distance; coverage is compared with the level.
/// </summary>
public sealed class QuantizationMetrics
{
    /// <summary>Rows evaluated.</summary>
    public long Rows { get; init; }

    /// <summary>Empirical distortion: mean over rows of min_i ‖y − f_i(x)‖² (label units squared).</summary>
    public double Distortion { get; init; }

    /// <summary>Root mean squared error of the score column (the predicted mean) against the label.</summary>
    public double ScoreRootMeanSquaredError { get; init; }

    /// <summary>
    /// Nominal level of the interval (e.g. 0.9): from the sorted points of a scalar label, [f_lo, f_hi] with lo the first
    /// point whose cumulative weight reaches (1 − level)/2 and hi the first whose cumulative weight reaches (1 + level)/2.
    /// </summary>
    public double IntervalLevel { get; init; }

    /// <summary>Fraction of the labels inside their row's interval (NaN for a vector label).</summary>
    public double IntervalCoverage { get; init; }

    /// <summary>Mean width f_hi − f_lo of the intervals (NaN for a vector label).</summary>
    public double MeanIntervalWidth { get; init; }

    /// <summary>
    /// Conditional W₂ against the reference samples: √(mean over rows of W₂²(Σ p_i δ_{f_i}, empirical law of the row's reference
    /// samples)), computed exactly in one dimension. NaN when no reference column was given or the label is a vector.
    /// </summary>
    public double Wasserstein2 { get; init; }

    /// <summary>
    /// Mean over rows of the energy distance 2E|A − B| − E|A − A′| − E|B − B′| between the predicted law A and the row's
    /// reference samples B (exact for these discrete laws). NaN when no reference column was given or the label is a vector.
    /// </summary>
    public double EnergyDistance { get; init; }
}
