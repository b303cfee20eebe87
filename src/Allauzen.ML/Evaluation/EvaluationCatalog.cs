using Allauzen.ML.Core;
using Allauzen.ML.Evaluation;

namespace Microsoft.ML;

/// <summary>Catalog entry points of the Allauzen set-level evaluators: generative quality (PRDC) and membership audits.</summary>
public static class EvaluationCatalog
{
    /// <summary>
    /// Precision, recall, density and coverage of <paramref name="generated"/> against <paramref name="reference"/>
    /// (k-nearest-neighbour balls, Kynkäänniemi et al. 2019 and Naeem et al. 2020, as in Le Bronnec, Verine et al. 2024):
    /// rows are L2-normalised, projected by a PCA fitted on the union, and compared in blocks (memory independent of the
    /// product of the set sizes).
    /// </summary>
    /// <param name="catalog">The data catalog (<c>ml.Data</c>).</param>
    /// <param name="reference">The reference rows P.</param>
    /// <param name="generated">The generated rows Q, with the same feature column of the same size.</param>
    /// <param name="options">The options; null means <c>new GenerativeEvaluatorOptions()</c>.</param>
    /// <param name="cancellationToken">Stops the computation between blocks.</param>
    /// <exception cref="ArgumentOutOfRangeException">The feature column is missing, is not a known-size float vector, or
    /// differs in size between the two views (the message names the column, the expected and the actual type); or K is
    /// not below the row count of each set.</exception>
    /// <exception cref="InvalidOperationException">A feature value is NaN or infinite.</exception>
    /// <example><code>
    /// var m = ml.Data.EvaluateGenerative(real, generated, new GenerativeEvaluatorOptions { K = 5, MaxSamples = 10_000 });
    /// Console.WriteLine($"precision {m.Precision:0.00}, recall {m.Recall:0.00}");
    /// </code></example>
    public static GenerativeMetrics EvaluateGenerative(this DataOperationsCatalog catalog, IDataView reference, IDataView generated,
        GenerativeEvaluatorOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return GenerativeEvaluator.Evaluate(CatalogEnvironment.Get(catalog), reference, generated, options ?? new GenerativeEvaluatorOptions(), cancellationToken);
    }

    /// <summary>
    /// A membership-inference audit: scores every row of <paramref name="members"/> (rows a model or generator was trained
    /// on) and <paramref name="nonMembers"/> (held-out rows of the same distribution) with the attack of
    /// <see cref="MembershipAuditOptions.Attack"/>, then reports AUC, balanced accuracy, TPR at low FPR and the empirical
    /// differential-privacy ε the attack demonstrates, with Clopper–Pearson bounds.
    /// </summary>
    /// <param name="catalog">The data catalog (<c>ml.Data</c>).</param>
    /// <param name="members">Rows that were in the training data.</param>
    /// <param name="nonMembers">Rows that were not.</param>
    /// <param name="options">The attack and its inputs.</param>
    /// <param name="cancellationToken">Stops the computation between blocks or folds.</param>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of the wrong type (the message names it), or an
    /// option is out of range.</exception>
    /// <exception cref="ArgumentException">The attack's input (synthetic data or trainer) is missing, or a set is empty.</exception>
    /// <example><code>
    /// var audit = ml.Data.AuditMembership(train, holdout, new MembershipAuditOptions { SyntheticData = synthetic });
    /// Console.WriteLine($"AUC {audit.Auc:0.000}, ε ≥ {audit.EpsilonInterval.Low:0.00}");
    /// </code></example>
    public static MembershipAuditResult AuditMembership(this DataOperationsCatalog catalog, IDataView members, IDataView nonMembers,
        MembershipAuditOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return MembershipAudit.Audit(CatalogEnvironment.Get(catalog), members, nonMembers, options, cancellationToken);
    }
}
