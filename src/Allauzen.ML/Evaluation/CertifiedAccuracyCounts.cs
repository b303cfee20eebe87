using Allauzen.ML.Data;

namespace Allauzen.ML.Evaluation;

/// <summary>
/// The integer counts behind <see cref="CertifiedAccuracyMetrics"/>: per radius ε the rows certified at ε (correct and radius
/// ≥ ε), the correct rows, the rows and the abstentions. Counts of disjoint shards add up exactly (<see cref="Sum"/>) and
/// <see cref="ToMetrics"/> divides once, so the metrics of merged counts equal those of the whole data bit for bit.
/// </summary>
/// <param name="Radii">The radii ε.</param>
/// <param name="Certified">Rows certified at each radius: correct and with a radius ≥ ε.</param>
/// <param name="Correct">Rows whose prediction is correct (an abstention is not).</param>
/// <param name="Rows">Rows counted.</param>
/// <param name="Abstained">Rows where the certifier abstained (missing predicted key).</param>
/// <param name="SaturationRadius">The largest radius the certifier can give (randomized smoothing's σΦ⁻¹(α^(1/n))); NaN when none.</param>
public sealed record CertifiedAccuracyCounts(IReadOnlyList<double> Radii, IReadOnlyList<long> Certified, long Correct, long Rows, long Abstained,
    double SaturationRadius = double.NaN)
{
    /// <summary>
    /// Adds up the counts of disjoint shards. All must have the same radii (compared exactly) and saturation radius
    /// (NaN equals NaN); otherwise an <see cref="ArgumentException"/> names the first that differs.
    /// </summary>
    /// <param name="shards">The counts of each shard (at least one).</param>
    public static CertifiedAccuracyCounts Sum(IEnumerable<CertifiedAccuracyCounts> shards)
    {
        ArgumentNullException.ThrowIfNull(shards);
        var list = shards.ToList();
        if (list.Count == 0)
            throw new ArgumentException("Sum needs the counts of at least one shard.", nameof(shards));
        var first = list[0];
        var certified = new long[first.Radii.Count];
        long correct = 0, rows = 0, abstained = 0;
        for (int s = 0; s < list.Count; s++)
        {
            var c = list[s];
            if (!c.Radii.SequenceEqual(first.Radii) || c.Certified.Count != certified.Length || !c.SaturationRadius.Equals(first.SaturationRadius))
                throw new ArgumentException($"Shard {s} was counted at other radii or another saturation radius than shard 0; count every shard with the same settings.", nameof(shards));
            for (int i = 0; i < certified.Length; i++)
                certified[i] += c.Certified[i];
            correct += c.Correct;
            rows += c.Rows;
            abstained += c.Abstained;
        }
        return new CertifiedAccuracyCounts(first.Radii, certified, correct, rows, abstained, first.SaturationRadius);
    }

    /// <summary>The metrics: each count divided by <see cref="Rows"/> (every fraction is 0 when there are no rows).</summary>
    public CertifiedAccuracyMetrics ToMetrics() => new(this);

    /// <summary>
    /// Counts <paramref name="scored"/>: key-typed label and predicted label (0 = missing: an abstention, never correct), and a
    /// <c>Single</c> or <c>Double</c> radius column. Radii are checked (non-negative, finite) before anything is read.
    /// </summary>
    internal static CertifiedAccuracyCounts Count(IDataView scored, string radiusColumnName, string labelColumnName, string predictedLabelColumnName,
        IReadOnlyList<double> radii, double saturationRadius)
    {
        ArgumentNullException.ThrowIfNull(scored);
        ArgumentNullException.ThrowIfNull(radii);
        foreach (var r in radii)
        {
            if (!(r >= 0 && double.IsFinite(r)))
                throw new ArgumentOutOfRangeException(nameof(radii), r, "Every radius must be a non-negative finite number.");
        }
        SchemaChecks.KeyLabel(scored.Schema, labelColumnName);
        SchemaChecks.KeyLabel(scored.Schema, predictedLabelColumnName);
        var rc = scored.Schema.GetColumnOrNull(radiusColumnName) ?? throw SchemaChecks.NotFound(radiusColumnName, "certified radius");
        if (rc.Type != NumberDataViewType.Single && rc.Type != NumberDataViewType.Double)
            throw SchemaChecks.Mismatch(radiusColumnName, "certified radius", "Single or Double", rc.Type.ToString()!);
        var lc = scored.Schema[labelColumnName];
        var pc = scored.Schema[predictedLabelColumnName];
        using var cursor = scored.GetRowCursor([lc, pc, rc]);
        var getLabel = cursor.GetGetter<uint>(lc);
        var getPredicted = cursor.GetGetter<uint>(pc);
        var getRadius = RadiusGetter(cursor, rc);
        var certified = new long[radii.Count];
        long rows = 0, correct = 0, abstained = 0;
        uint label = 0, predicted = 0;
        double radius = 0;
        while (cursor.MoveNext())
        {
            getLabel(ref label);
            getPredicted(ref predicted);
            getRadius(ref radius);
            rows++;
            if (predicted == 0)
                abstained++;
            if (predicted == 0 || predicted != label)
                continue;
            correct++;
            for (int i = 0; i < radii.Count; i++)
            {
                if (radius >= radii[i])
                    certified[i]++;
            }
        }
        return new CertifiedAccuracyCounts([.. radii], certified, correct, rows, abstained, saturationRadius);
    }

    /// <summary>The radius as a double, whichever of Single and Double the column holds.</summary>
    private static ValueGetter<double> RadiusGetter(DataViewRowCursor cursor, DataViewSchema.Column column)
    {
        if (column.Type == NumberDataViewType.Double)
            return cursor.GetGetter<double>(column);
        var single = cursor.GetGetter<float>(column);
        float value = 0;
        return (ref double dst) =>
        {
            single(ref value);
            dst = value;
        };
    }
}
