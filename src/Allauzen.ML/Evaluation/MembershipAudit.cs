using Allauzen.ML.Data;

namespace Allauzen.ML.Evaluation;

/// <summary>The computation behind <c>ml.Data.AuditMembership</c>: per-row attack scores, then <see cref="MembershipStatistics"/>.</summary>
internal static class MembershipAudit
{
    /// <summary>The label column of the views given to <see cref="MembershipAuditOptions.ShadowTrainer"/>.</summary>
    internal const string LabelColumnName = "Label";

    /// <summary>Scores both sets with the chosen attack and computes the audit.</summary>
    public static MembershipAuditResult Audit(IHostEnvironment env, IDataView members, IDataView nonMembers, MembershipAuditOptions options,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(members);
        ArgumentNullException.ThrowIfNull(nonMembers);
        ArgumentNullException.ThrowIfNull(options);
        if (!(options.Delta >= 0 && options.Delta < 1))
            throw new ArgumentOutOfRangeException(nameof(MembershipAuditOptions.Delta), options.Delta, "Delta must lie in [0, 1).");
        if (!(options.Alpha > 0 && options.Alpha < 1))
            throw new ArgumentOutOfRangeException(nameof(MembershipAuditOptions.Alpha), options.Alpha, "Alpha must lie in (0, 1).");
        if (!(options.MinimumFlaggedFraction >= 0 && options.MinimumFlaggedFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(MembershipAuditOptions.MinimumFlaggedFraction), options.MinimumFlaggedFraction,
                $"MinimumFlaggedFraction must lie in [0, 1) (got {options.MinimumFlaggedFraction}).");
        var (m, n) = options.Attack switch
        {
            MembershipAttack.DistanceToClosestRecord => DistanceToClosestRecord(members, nonMembers, options, cancellationToken),
            MembershipAttack.LossThreshold => (NegatedLoss(members, options.ScoreColumnName, "member loss"),
                NegatedLoss(nonMembers, options.ScoreColumnName, "non-member loss")),
            MembershipAttack.Shadow => Shadow(env, members, nonMembers, options, cancellationToken),
            _ => throw new ArgumentOutOfRangeException(nameof(MembershipAuditOptions.Attack), options.Attack, "Unknown attack."),
        };
        return MembershipStatistics.Compute(m, n, options.Delta, options.Alpha, options.HoldOutThreshold ? options.Seed : null,
            options.MinimumFlaggedFraction);
    }

    /// <summary>score(x) = −min_j ‖x − g_j‖ (exact float64 distance of the float32 values).</summary>
    private static (double[], double[]) DistanceToClosestRecord(IDataView members, IDataView nonMembers, MembershipAuditOptions o, CancellationToken ct)
    {
        var synthetic = o.SyntheticData ?? throw new ArgumentException(
            $"The {nameof(MembershipAttack.DistanceToClosestRecord)} attack needs {nameof(MembershipAuditOptions.SyntheticData)}.", nameof(o));
        string col = o.FeatureColumnName;
        var g = VectorSet.Read(synthetic, col, "synthetic feature", null, null, 0, ct);
        if (g.Rows == 0)
            throw new ArgumentException($"{nameof(MembershipAuditOptions.SyntheticData)} has no rows.", nameof(o));
        double[] Scores(IDataView data, string role)
        {
            var x = VectorSet.Read(data, col, role, g.Dimensions, null, 0, ct);
            return VectorSetMetrics.KthNearestSquared(x, g, 1, excludeSelf: false, o.BlockSize, ct).Select(d2 => -Math.Sqrt(d2)).ToArray();
        }
        return (Scores(members, "member feature"), Scores(nonMembers, "non-member feature"));
    }

    private static double[] NegatedLoss(IDataView data, string column, string role) => ReadScalar(data, column, role).Select(l => -l).ToArray();

    /// <summary>A finite Single or Double column as doubles.</summary>
    internal static double[] ReadScalar(IDataView data, string column, string role)
    {
        var col = data.Schema.GetColumnOrNull(column) ?? throw SchemaChecks.NotFound(column, role);
        var values = new List<double>();
        using var cursor = data.GetRowCursor([col]);
        if (col.Type == NumberDataViewType.Single)
        {
            var getter = cursor.GetGetter<float>(col);
            float v = 0;
            while (cursor.MoveNext())
            {
                getter(ref v);
                values.Add(v);
            }
        }
        else if (col.Type == NumberDataViewType.Double)
        {
            var getter = cursor.GetGetter<double>(col);
            double v = 0;
            while (cursor.MoveNext())
            {
                getter(ref v);
                values.Add(v);
            }
        }
        else
        {
            throw SchemaChecks.Mismatch(column, role, "Single or Double", col.Type.ToString()!);
        }
        int bad = values.FindIndex(v => !double.IsFinite(v));
        if (bad >= 0)
            throw new InvalidOperationException($"The {role} column '{column}' holds {values[bad]} at row {bad}: every value must be finite.");
        return values.ToArray();
    }

    /// <summary>
    /// Two-fold cross-fitted attack model: each set is split in halves A and B by the rank of a hash of (seed, row index);
    /// a model trained on A (members labelled true, non-members false) scores B and one trained on B scores A. The pooled
    /// out-of-fold scores feed the statistics.
    /// </summary>
    private static (double[], double[]) Shadow(IHostEnvironment env, IDataView members, IDataView nonMembers, MembershipAuditOptions o, CancellationToken ct)
    {
        var trainer = o.ShadowTrainer ?? throw new ArgumentException(
            $"The {nameof(MembershipAttack.Shadow)} attack needs {nameof(MembershipAuditOptions.ShadowTrainer)}.", nameof(o));
        string col = o.FeatureColumnName;
        if (col == LabelColumnName)
            throw new ArgumentException($"The feature column cannot be named '{LabelColumnName}' (the attack's label column).", nameof(o));
        var xm = VectorSet.Read(members, col, "member feature", null, null, 0, ct);
        var xn = VectorSet.Read(nonMembers, col, "non-member feature", xm.Dimensions, null, 0, ct);
        if (xm.Rows < 2 || xn.Rows < 2)
            throw new ArgumentException($"The {nameof(MembershipAttack.Shadow)} attack needs at least 2 members and 2 non-members (got {xm.Rows} and {xn.Rows}).");
        var ml = Core.CatalogEnvironment.ContextOrNew(env);
        var foldM = Folds(xm.Rows, o.Seed);
        var foldN = Folds(xn.Rows, o.Seed + 1);
        var scoresM = new double[xm.Rows];
        var scoresN = new double[xn.Rows];
        for (int fold = 0; fold < 2; fold++)
        {
            ct.ThrowIfCancellationRequested();
            var train = View(ml, col, xm, foldM, fold, xn, foldN, fold);
            var model = trainer(train) ?? throw new InvalidOperationException($"{nameof(MembershipAuditOptions.ShadowTrainer)} returned null.");
            var test = View(ml, col, xm, foldM, 1 - fold, xn, foldN, 1 - fold);
            var scores = ReadScalar(model.Transform(test), o.ScoreColumnName, "attack score");
            int t = 0;
            for (int i = 0; i < xm.Rows; i++)
            {
                if (foldM[i] != fold)
                    scoresM[i] = scores[t++];
            }
            for (int i = 0; i < xn.Rows; i++)
            {
                if (foldN[i] != fold)
                    scoresN[i] = scores[t++];
            }
        }
        return (scoresM, scoresN);
    }

    /// <summary>Fold 0 for the half of the rows with the smallest hash of (seed, row index), fold 1 for the others.</summary>
    internal static int[] Folds(int rows, int seed)
    {
        var order = Enumerable.Range(0, rows).OrderBy(i => VectorSet.Hash((ulong)(uint)seed, (ulong)i)).ToArray();
        var fold = new int[rows];
        for (int r = rows / 2; r < rows; r++)
            fold[order[r]] = 1;
        return fold;
    }

    private sealed class AttackRow
    {
        public float[] Features { get; set; } = [];

        public bool Label { get; set; }
    }

    /// <summary>The rows of fold <paramref name="fm"/> of the members then fold <paramref name="fn"/> of the non-members.</summary>
    private static IDataView View(MLContext ml, string column, VectorSet xm, int[] foldM, int fm, VectorSet xn, int[] foldN, int fn)
    {
        var rows = new List<AttackRow>();
        for (int i = 0; i < xm.Rows; i++)
        {
            if (foldM[i] == fm)
                rows.Add(new AttackRow { Features = xm.Row(i).ToArray(), Label = true });
        }
        for (int i = 0; i < xn.Rows; i++)
        {
            if (foldN[i] == fn)
                rows.Add(new AttackRow { Features = xn.Row(i).ToArray(), Label = false });
        }
        var schema = SchemaDefinition.Create(typeof(AttackRow));
        schema[nameof(AttackRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, xm.Dimensions);
        schema[nameof(AttackRow.Features)].ColumnName = column;
        return ml.Data.LoadFromEnumerable(rows, schema);
    }
}
