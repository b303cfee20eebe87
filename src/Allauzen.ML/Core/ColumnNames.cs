namespace Allauzen.ML;

/// <summary>
/// Default column names and annotation kinds used by Allauzen components (ML.NET keeps its own
/// <c>DefaultColumnNames</c> and <c>AnnotationUtils.Kinds</c> internal, so we define ours).
/// </summary>
public static class AllauzenColumnNames
{
    /// <summary>The label column: a key type for multiclass trainers.</summary>
    public const string Label = "Label";

    /// <summary>The feature vector column: <c>Vector&lt;Single, n&gt;</c> of known size.</summary>
    public const string Features = "Features";

    /// <summary>The score column: <c>Vector&lt;Single, k&gt;</c> of class probabilities with slot names.</summary>
    public const string Score = "Score";

    /// <summary>The predicted label column: <c>Key&lt;UInt32, k&gt;</c> with the label's key values.</summary>
    public const string PredictedLabel = "PredictedLabel";

    /// <summary>
    /// The certified L2 radius column of certifying models (Lipschitz classifiers: <c>Single</c>; randomized smoothing:
    /// <c>Double</c>), read by <c>EvaluateCertified</c>.
    /// </summary>
    public const string CertifiedRadius = "CertifiedRadius";

    /// <summary>The probability column of binary classifiers.</summary>
    public const string Probability = "Probability";

    /// <summary>The annotation kind that names the slots of a vector column.</summary>
    public const string SlotNamesKind = "SlotNames";

    /// <summary>The annotation kind that holds the values of a key-typed column.</summary>
    public const string KeyValuesKind = "KeyValues";
}
