using Allauzen.ML.Core;

namespace Allauzen.ML.Smoothing;

/// <summary>
/// The certificate columns the smoothing certifiers append (<see cref="RandomizedSmoothingTransformer"/>,
/// <see cref="SmoothingStatisticsCertifierTransformer"/>), declared once: <c>PredictedLabel</c> (key, 0 = abstain),
/// <c>Abstained</c>, <c>CertifiedRadius</c>, <c>LowerBoundTopClass</c> and <c>UpperBoundRunnerUp</c>.
/// </summary>
internal static class CertificateColumns
{
    /// <summary>The columns after <c>PredictedLabel</c>, with their types.</summary>
    private static readonly (string Name, PrimitiveDataViewType Type)[] Values =
    [
        (SmoothingColumnNames.Abstained, BooleanDataViewType.Instance),
        (SmoothingColumnNames.CertifiedRadius, NumberDataViewType.Double),
        (SmoothingColumnNames.LowerBoundTopClass, NumberDataViewType.Double),
        (SmoothingColumnNames.UpperBoundRunnerUp, NumberDataViewType.Double),
    ];

    /// <summary>The columns for a certifier of <paramref name="classes"/> (the predicted key carries their key values).</summary>
    public static IEnumerable<DataViewSchema.DetachedColumn> Columns(LabelNames classes)
    {
        var keyValues = new DataViewSchema.Annotations.Builder();
        classes.AddKeyValues(keyValues);
        yield return Detached(SmoothingColumnNames.PredictedLabel, new KeyDataViewType(typeof(uint), classes.Count), keyValues.ToAnnotations());
        foreach (var (name, type) in Values)
            yield return Detached(name, type);
    }

    /// <summary>The same columns as <see cref="SchemaShape"/> columns (what the estimators promise).</summary>
    public static IEnumerable<SchemaShape.Column> Shapes()
    {
        var keyValues = new SchemaShape([SchemaShapes.Column("KeyValues", SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false)]);
        yield return SchemaShapes.Column(SmoothingColumnNames.PredictedLabel, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true, keyValues);
        foreach (var (name, type) in Values)
            yield return SchemaShapes.Column(name, SchemaShape.Column.VectorKind.Scalar, type, false);
    }

    /// <summary>A detached column of <paramref name="type"/> with <paramref name="annotations"/> (none by default).</summary>
    public static DataViewSchema.DetachedColumn Detached(string name, DataViewType type, DataViewSchema.Annotations? annotations = null)
    {
        var b = new DataViewSchema.Builder();
        b.AddColumn(name, type, annotations);
        return new DataViewSchema.DetachedColumn(b.ToSchema()[0]);
    }
}
