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

    /// <summary>Number of certificate columns (<see cref="Columns"/>).</summary>
    public const int Count = 5;

    /// <summary>
    /// The getter of certificate column <paramref name="column"/> (0 ≤ column &lt; <see cref="Count"/>, in the order of
    /// <see cref="Columns"/>) reading the certificate of the current row, <paramref name="certificates"/>[<paramref name="slot"/>()].
    /// </summary>
    public static Delegate Getter(int column, SmoothingCertificate[] certificates, Func<int> slot) => column switch
    {
        0 => (ValueGetter<uint>)((ref uint v) => v = (uint)(certificates[slot()].Class + 1)),
        1 => (ValueGetter<bool>)((ref bool v) => v = certificates[slot()].Abstained),
        2 => (ValueGetter<double>)((ref double v) => v = certificates[slot()].Radius),
        3 => (ValueGetter<double>)((ref double v) => v = certificates[slot()].LowerBoundTopClass),
        4 => (ValueGetter<double>)((ref double v) => v = certificates[slot()].UpperBoundRunnerUp),
        _ => throw new ArgumentOutOfRangeException(nameof(column)),
    };

    /// <summary>A detached column of <paramref name="type"/> with <paramref name="annotations"/> (none by default).</summary>
    public static DataViewSchema.DetachedColumn Detached(string name, DataViewType type, DataViewSchema.Annotations? annotations = null)
    {
        var b = new DataViewSchema.Builder();
        b.AddColumn(name, type, annotations);
        return new DataViewSchema.DetachedColumn(b.ToSchema()[0]);
    }
}
