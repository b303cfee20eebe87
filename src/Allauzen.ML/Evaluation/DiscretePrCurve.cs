using System.Globalization;

namespace Allauzen.ML.Evaluation;

/// <summary>
/// The precision–recall curve of a model distribution Q against a reference distribution P on a finite set
/// (Simon et al. 2019; Verine et al. 2025, Fig. 1): for each λ &gt; 0, precision α_λ = Σ_x min(λ·P(x), Q(x)) and recall
/// β_λ = α_λ / λ. At λ = 1 both equal 1 − TV(P, Q).
/// </summary>
public static class DiscretePrCurve
{
    /// <summary>
    /// The points (λ, α_λ, β_λ) for each λ of <paramref name="lambdas"/>, in that order.
    /// </summary>
    /// <param name="reference">P: non-negative, finite weights with a positive sum (probabilities or counts); divided by
    /// their sum, so counts are accepted as they are.</param>
    /// <param name="model">Q: the same, over the same outcomes in the same order (equal length).</param>
    /// <param name="lambdas">The trade-off parameters λ, each positive and finite.</param>
    /// <exception cref="ArgumentException">The lengths differ, a weight is negative, NaN or infinite, a sum is 0, or a λ
    /// is not positive and finite (the message names the argument and the index).</exception>
    public static (double Lambda, double Precision, double Recall)[] Compute(double[] reference, double[] model, double[] lambdas)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(lambdas);
        if (reference.Length != model.Length)
            throw new ArgumentException($"reference has {reference.Length} outcomes and model has {model.Length}: both must be over the same outcomes.", nameof(model));
        var p = Normalised(reference, nameof(reference));
        var q = Normalised(model, nameof(model));
        var result = new (double, double, double)[lambdas.Length];
        for (int l = 0; l < lambdas.Length; l++)
        {
            double lambda = lambdas[l];
            if (!(lambda > 0 && double.IsFinite(lambda)))
                throw new ArgumentException($"lambdas[{l}] = {lambda}: every λ must be positive and finite.", nameof(lambdas));
            double alpha = 0, compensation = 0;
            for (int x = 0; x < p.Length; x++)
            {
                // Kahan summation keeps α₁ within a few ulps of 1 − TV.
                double y = Math.Min(lambda * p[x], q[x]) - compensation;
                double t = alpha + y;
                compensation = t - alpha - y;
                alpha = t;
            }
            result[l] = (lambda, alpha, alpha / lambda);
        }
        return result;
    }

    /// <summary>
    /// The curve of the empirical distributions of one categorical column in two data views: P from
    /// <paramref name="reference"/>, Q from <paramref name="model"/>, over the union of the values seen in either.
    /// </summary>
    /// <param name="reference">Rows drawn from the reference distribution.</param>
    /// <param name="model">Rows drawn from the model.</param>
    /// <param name="columnName">A scalar column present in both views: text, an integer type, Boolean, or a key (keys
    /// are matched by their key values when the column has them, otherwise by index; missing keys, value 0, are
    /// skipped).</param>
    /// <param name="lambdas">The λ values, each positive and finite.</param>
    /// <exception cref="ArgumentOutOfRangeException">The column is missing or of another type (the message names the
    /// column, the expected and the actual type).</exception>
    /// <exception cref="ArgumentException">A view has no countable row.</exception>
    public static (double Lambda, double Precision, double Recall)[] FromColumns(IDataView reference, IDataView model, string columnName, double[] lambdas)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(columnName);
        var p = CategoryCounts.Count(reference, columnName, "reference");
        var q = CategoryCounts.Count(model, columnName, "model");
        var outcomes = p.Keys.Union(q.Keys).OrderBy(k => k, StringComparer.Ordinal).ToArray();
        return Compute(
            outcomes.Select(o => (double)p.GetValueOrDefault(o)).ToArray(),
            outcomes.Select(o => (double)q.GetValueOrDefault(o)).ToArray(),
            lambdas);
    }

    private static double[] Normalised(double[] w, string name)
    {
        double sum = 0;
        for (int i = 0; i < w.Length; i++)
        {
            if (!(w[i] >= 0 && double.IsFinite(w[i])))
                throw new ArgumentException($"{name}[{i}] = {w[i].ToString(CultureInfo.InvariantCulture)}: weights must be non-negative and finite.", name);
            sum += w[i];
        }
        if (!(sum > 0) || !double.IsFinite(sum))
            throw new ArgumentException($"The weights of {name} sum to {sum.ToString(CultureInfo.InvariantCulture)}: a distribution needs a positive finite total.", name);
        return w.Select(v => v / sum).ToArray();
    }
}
