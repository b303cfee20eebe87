namespace Allauzen.ML.Synthetic;

/// <content>The tabular block: several typed input columns, min-max scaling, one-hot keys and the inverse mapping.</content>
public sealed partial class PrivateSyntheticDataOptions
{
    /// <summary>
    /// Tabular mode: the columns to synthesise, or null (default: the single vector <see cref="FeatureColumnName"/>).
    /// Each is a <c>Single</c> scalar, a <c>Vector&lt;Single, n&gt;</c> of known size, or a key scalar (from
    /// <c>MapValueToKey</c>; one-hot encoded, and rounded back to a key in the output). <c>Generate</c> then returns
    /// exactly these columns (names, types, key values), plus the <see cref="ClassConditional"/> column.
    /// In this mode <see cref="FeatureColumnName"/> is ignored, <see cref="CategoricalSlots"/> must be null, and
    /// <see cref="LowerBounds"/>/<see cref="UpperBounds"/> cover the numeric slots only (in column order). When they are
    /// null the bounds are the data's own min and max: that releases them outside the privacy budget (reported in
    /// <see cref="PrivacyReport.BoundsFittedOnData"/> and the mechanism text). Every slot is mapped to [−½, ½] (one-hot
    /// slots to ±½) before <see cref="ClipNorm"/>: with D encoded slots (numeric slots plus every key count),
    /// ClipNorm = √D/2 clips nothing.
    /// </summary>
    public string[]? InputColumnNames { get; set; }

    /// <summary>Checks the tabular block (column names only; types and bounds are checked against the data at Fit).</summary>
    internal void ValidateTabularColumns()
    {
        if (InputColumnNames is not { } names)
            return;
        if (names.Length == 0 || names.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("InputColumnNames must be null or list at least one column name, none empty.", nameof(InputColumnNames));
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Length)
            throw new ArgumentException($"InputColumnNames lists a column twice: {string.Join(", ", names)}.", nameof(InputColumnNames));
        if (ClassConditional is string label && names.Contains(label))
            throw new ArgumentException($"The ClassConditional column '{label}' cannot also be one of InputColumnNames.", nameof(InputColumnNames));
    }
}
