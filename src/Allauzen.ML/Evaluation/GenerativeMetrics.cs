using System.Globalization;

namespace Allauzen.ML.Evaluation;

/// <summary>
/// Precision, recall (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020) of a generated set Q against
/// a reference set P, with k-nearest-neighbour balls B(x, r_k(x)) where r_k(x) is the distance from x to its k-th
/// nearest other point of its own set. Created by <c>ml.Data.EvaluateGenerative</c>.
/// </summary>
public sealed class GenerativeMetrics
{
    internal GenerativeMetrics()
    {
    }

    /// <summary>Fraction of generated points q inside some reference ball: mean_q 1[∃p: ‖q − p‖ &lt; r_k(p)] (quality), in [0, 1].</summary>
    public double Precision { get; internal init; }

    /// <summary>Fraction of reference points p inside some generated ball: mean_p 1[∃q: ‖p − q‖ &lt; r_k(q)] (diversity), in [0, 1].</summary>
    public double Recall { get; internal init; }

    /// <summary>(1/(k·|Q|)) Σ_q Σ_p 1[‖q − p‖ &lt; r_k(p)]: how many reference balls hold a generated point on average,
    /// over k; about 1 when Q follows P's distribution, unbounded above (Q concentrated where P is dense).</summary>
    public double Density { get; internal init; }

    /// <summary>Fraction of reference balls holding at least one generated point: mean_p 1[min_q ‖p − q‖ &lt; r_k(p)], in [0, 1].</summary>
    public double Coverage { get; internal init; }

    /// <summary>The neighbour rank k used.</summary>
    public int K { get; internal init; }

    /// <summary>Dimension of the points the distances were computed on (after the PCA, if any).</summary>
    public int Dimensions { get; internal init; }

    /// <summary>Reference rows used (after subsampling).</summary>
    public int ReferenceRows { get; internal init; }

    /// <summary>Generated rows used (after subsampling).</summary>
    public int GeneratedRows { get; internal init; }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"P={Precision:0.####} R={Recall:0.####} D={Density:0.####} C={Coverage:0.####} (k={K}, d={Dimensions}, |P|={ReferenceRows}, |Q|={GeneratedRows})");
}
