using Allauzen.ML.Data;
using Allauzen.ML.Persistence;

namespace Allauzen.ML.Synthetic;

/// <summary>
/// Tabular mode of <c>PrivateSyntheticData</c> (<see cref="PrivateSyntheticDataOptions.InputColumnNames"/>): the listed
/// columns (Single scalars, Single vectors of known size, Key&lt;UInt32&gt; scalars) are encoded into one internal
/// vector, numeric slots as they are and each key column as a one-hot group; the flow runs on that vector, with the
/// min-max bounds (given, or fitted on the data) and the one-hot groups handed to the vector mode's public-bounds and
/// categorical rounding; <see cref="Decode"/> maps generated vectors back to the same columns, keys by their rounded
/// one-hot group.
/// </summary>
/// <param name="Columns">The encoded columns, in order (name, type, annotations).</param>
/// <param name="Offsets">Each column's first slot in the internal vector.</param>
/// <param name="Dimensions">D: the internal vector's length (numeric slots plus the key counts).</param>
/// <param name="BoundsFittedOnData">True when the numeric bounds were the private data's own min and max.</param>
internal sealed record TabularCodec(PersistedColumn[] Columns, int[] Offsets, int Dimensions, bool BoundsFittedOnData)
{
    /// <summary>The payload entry of this record.</summary>
    public const string PayloadName = "tabular";

    /// <summary>The internal vector column's name (never shown to the user).</summary>
    public const string EncodedColumnName = "PrivateSyntheticData.TabularEncoding";

    private const int MaxKeyCount = 100_000;

    /// <summary>Checks the columns in a schema shape (sizes are not known at this stage).</summary>
    public static void CheckShape(SchemaShape shape, IReadOnlyList<string> names)
    {
        foreach (string name in names)
        {
            if (!SchemaChecks.TryFind(shape, name, out var col))
                throw new ArgumentOutOfRangeException("inputSchema", $"Column '{name}' of InputColumnNames was not found in the input.");
            bool numeric = col.ItemType == NumberDataViewType.Single && col.Kind != SchemaShape.Column.VectorKind.VariableVector;
            bool key = col.IsKey && col.Kind == SchemaShape.Column.VectorKind.Scalar;
            if (!numeric && !key)
                throw new ArgumentOutOfRangeException("inputSchema",
                    $"Column '{name}' of InputColumnNames must be Single, Vector<Single, n> of known size, or a key scalar (MapValueToKey); got {col.ItemType} ({col.Kind}).");
        }
    }

    /// <summary>
    /// Reads <paramref name="input"/>, encodes the columns and returns: a view with the internal vector (and the class
    /// column, when class-conditional), the options of the vector mode for it, and the codec.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or of an unsupported type.</exception>
    /// <exception cref="ArgumentException">Bounds of the wrong length, or CategoricalSlots set in tabular mode.</exception>
    /// <exception cref="InvalidOperationException">A missing key or a non-finite value.</exception>
    public static (IDataView Encoded, PrivateSyntheticDataOptions Options, TabularCodec Codec) Prepare(IDataView input, PrivateSyntheticDataOptions o)
    {
        var names = o.InputColumnNames!;
        var columns = new PersistedColumn[names.Length];
        var offsets = new int[names.Length];
        var numericSlots = new List<int>();
        var groups = new List<int[]>();
        int dims = 0;
        for (int i = 0; i < names.Length; i++)
        {
            var col = input.Schema.GetColumnOrNull(names[i])
                ?? throw new ArgumentOutOfRangeException(nameof(input), $"Column '{names[i]}' of InputColumnNames was not found in the input.");
            int width = col.Type switch
            {
                NumberDataViewType t when t == NumberDataViewType.Single => 1,
                VectorDataViewType { ItemType: var it, IsKnownSize: true, Dimensions.Length: 1 } v when it == NumberDataViewType.Single => v.Size,
                KeyDataViewType k when k.RawType == typeof(uint) && k.Count is >= 2 and <= MaxKeyCount => (int)k.Count,
                _ => throw new ArgumentOutOfRangeException(nameof(input),
                    $"Column '{names[i]}' of InputColumnNames must be Single, Vector<Single, n> of known size, or Key<UInt32> with 2 to {MaxKeyCount} values; got {col.Type}."),
            };
            columns[i] = PersistedColumn.From(col);
            offsets[i] = dims;
            if (col.Type is KeyDataViewType)
                groups.Add(Enumerable.Range(dims, width).ToArray());
            else
                numericSlots.AddRange(Enumerable.Range(dims, width));
            dims += width;
        }
        if (o.CategoricalSlots is not null)
            throw new ArgumentException("CategoricalSlots must be null with InputColumnNames: key columns give the categorical groups.", nameof(o.CategoricalSlots));
        var codec = new TabularCodec(columns, offsets, dims, o.LowerBounds is null);
        var (rows, labels) = codec.Read(input, o.ClassConditional);

        var lower = new float[dims];
        var upper = new float[dims];
        foreach (var g in groups)
        {
            foreach (int slot in g)
                (lower[slot], upper[slot]) = (0, 1);
        }
        if (o.LowerBounds is { } lo && o.UpperBounds is { } hi)
        {
            if (lo.Length != numericSlots.Count || hi.Length != numericSlots.Count)
                throw new ArgumentException(
                    $"With InputColumnNames, LowerBounds and UpperBounds cover the {numericSlots.Count} numeric slots of the listed columns, in order (got {lo.Length} and {hi.Length}).",
                    nameof(o.LowerBounds));
            for (int j = 0; j < numericSlots.Count; j++)
                (lower[numericSlots[j]], upper[numericSlots[j]]) = (lo[j], hi[j]);
        }
        else
        {
            // Min-max fitted on the private rows: these 2·(numeric slots) values are released unprotected (reported).
            foreach (int slot in numericSlots)
            {
                float min = float.PositiveInfinity, max = float.NegativeInfinity;
                foreach (var r in rows)
                {
                    min = Math.Min(min, r[slot]);
                    max = Math.Max(max, r[slot]);
                }
                if (!(max > min))
                    (min, max) = rows.Count == 0 ? (0f, 1f) : (min - 0.5f, min + 0.5f);
                (lower[slot], upper[slot]) = (min, max);
            }
        }

        var inner = o.Copy();
        inner.InputColumnNames = null;
        inner.FeatureColumnName = EncodedColumnName;
        inner.LowerBounds = lower;
        inner.UpperBounds = upper;
        inner.CategoricalSlots = groups.Count == 0 ? null : groups.ToArray();
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(EncodedColumnName, new VectorDataViewType(NumberDataViewType.Single, dims));
        if (o.ClassConditional is string label)
        {
            var l = input.Schema[label];
            builder.AddColumn(l.Name, l.Type, l.Annotations);
        }
        var data = new object[rows.Count][];
        for (int i = 0; i < rows.Count; i++)
            data[i] = labels is null ? [new VBuffer<float>(dims, rows[i])] : [new VBuffer<float>(dims, rows[i]), labels[i]];
        return (new ColumnStore(builder.ToSchema(), data), inner, codec);
    }

    /// <summary>Encodes every row (numeric slots copied, keys one-hot) and reads the class keys.</summary>
    private (List<float[]> Rows, List<uint>? Labels) Read(IDataView input, string? label)
    {
        var cols = Columns.Select(c => input.Schema[c.Name]).ToList();
        var labelColumn = label is null ? (DataViewSchema.Column?)null : input.Schema.GetColumnOrNull(label);
        using var cursor = input.GetRowCursor(labelColumn is { } lc ? cols.Append(lc) : cols);
        var readers = new List<Action<float[]>>();
        for (int i = 0; i < cols.Count; i++)
        {
            var col = cols[i];
            int offset = Offsets[i];
            string name = col.Name;
            if (col.Type is KeyDataViewType kt)
            {
                var g = cursor.GetGetter<uint>(col);
                uint count = (uint)kt.Count;
                readers.Add(row =>
                {
                    uint key = 0;
                    g(ref key);
                    if (key == 0 || key > count)
                        throw new InvalidOperationException($"Column '{name}' holds a missing key at row {cursor.Position}: every categorical value must be one of its {count} keys.");
                    row[offset + (int)key - 1] = 1;
                });
            }
            else if (col.Type is VectorDataViewType)
            {
                var g = cursor.GetGetter<VBuffer<float>>(col);
                var buffer = default(VBuffer<float>);
                readers.Add(row =>
                {
                    g(ref buffer);
                    buffer.CopyTo(row, offset);
                });
            }
            else
            {
                var g = cursor.GetGetter<float>(col);
                readers.Add(row =>
                {
                    float v = 0;
                    g(ref v);
                    row[offset] = v;
                });
            }
        }
        var labelGetter = labelColumn is { } lcol ? cursor.GetGetter<uint>(lcol) : null;
        var rows = new List<float[]>();
        var labels = labelGetter is null ? null : new List<uint>();
        while (cursor.MoveNext())
        {
            var row = new float[Dimensions];
            foreach (var r in readers)
                r(row);
            for (int t = 0; t < Dimensions; t++)
            {
                if (!float.IsFinite(row[t]))
                    throw new InvalidOperationException($"Column '{ColumnOfSlot(t).Name}' holds {row[t]} at row {cursor.Position}: every value must be finite.");
            }
            rows.Add(row);
            if (labelGetter is not null)
            {
                uint key = 0;
                labelGetter(ref key);
                labels!.Add(key);
            }
        }
        return (rows, labels);
    }

    private PersistedColumn ColumnOfSlot(int slot)
    {
        int i = Array.FindLastIndex(Offsets, o => o <= slot);
        return Columns[i];
    }

    /// <summary>The generated view's schema: the encoded columns, then the class column when class-conditional.</summary>
    public DataViewSchema OutputSchema(PersistedColumn? label)
    {
        var b = new DataViewSchema.Builder();
        foreach (var c in Columns)
        {
            var d = c.ToDetachedColumn();
            b.AddColumn(d.Name, d.Type, d.Annotations);
        }
        if (label?.ToDetachedColumn() is { } l)
            b.AddColumn(l.Name, l.Type, l.Annotations);
        return b.ToSchema();
    }

    /// <summary>
    /// Maps generated rows (cell 0: the internal vector in feature scale, one-hot groups already rounded; cell 1: the
    /// class key, when present) to the columns: numeric slots copied, each key the position of its group's largest value.
    /// </summary>
    public IDataView Decode(object[][] rows, PersistedColumn? label)
    {
        var result = new object[rows.Length][];
        for (int r = 0; r < rows.Length; r++)
        {
            var values = ((VBuffer<float>)rows[r][0]).DenseValues().ToArray();
            var cells = new object[Columns.Length + (label is null ? 0 : 1)];
            for (int i = 0; i < Columns.Length; i++)
            {
                var c = Columns[i];
                int offset = Offsets[i];
                if (c.ItemKind == PersistedItemKind.Key)
                {
                    int best = 0;
                    for (int k = 1; k < (int)c.KeyCount; k++)
                    {
                        if (values[offset + k] > values[offset + best])
                            best = k;
                    }
                    cells[i] = (uint)(best + 1);
                }
                else if (c.IsVector)
                {
                    cells[i] = new VBuffer<float>(c.VectorSize, values.AsSpan(offset, c.VectorSize).ToArray());
                }
                else
                {
                    cells[i] = values[offset];
                }
            }
            if (label is not null)
                cells[^1] = rows[r][1];
            result[r] = cells;
        }
        return new ColumnStore(OutputSchema(label), result);
    }

    /// <summary>Checks a loaded codec against the settings (its own layout, D, the one-hot groups).</summary>
    public void Validate(ModelPayloadReader payload, SyntheticSettings s)
    {
        payload.Require(Columns is { Length: > 0 } && Offsets is not null && Offsets.Length == Columns.Length, PayloadName, nameof(Columns), "must list at least one column, each with an offset");
        int dims = 0;
        var groups = new List<int[]>();
        var offsets = Offsets!;
        for (int i = 0; i < Columns.Length; i++)
        {
            var c = Columns[i];
            payload.Require(c is not null, PayloadName, $"column {i}", "is missing");
            try
            {
                c!.Validate();
            }
            catch (InvalidDataException e)
            {
                payload.Require(false, PayloadName, $"column {i}", e.Message);
            }
            bool key = c!.ItemKind == PersistedItemKind.Key && !c.IsVector && c.KeyCount is >= 2 and <= MaxKeyCount;
            bool numeric = c.ItemKind == PersistedItemKind.Single && (!c.IsVector || c.VectorSize >= 1);
            payload.Require(key || numeric, PayloadName, c.Name, "must be Single, Vector<Single, n> or a key scalar");
            payload.Require(offsets[i] == dims, PayloadName, c.Name, $"must start at slot {dims} (got {offsets[i]})");
            int width = key ? (int)c.KeyCount : c.IsVector ? c.VectorSize : 1;
            if (key)
                groups.Add(Enumerable.Range(dims, width).ToArray());
            dims += width;
        }
        payload.Require(dims == Dimensions && dims == s.Dimensions, PayloadName, nameof(Dimensions), $"must be {s.Dimensions}, the sum of the column widths {dims} (got {Dimensions})");
        var settingsGroups = s.CategoricalSlots ?? [];
        payload.Require(settingsGroups.Length == groups.Count && groups.Zip(settingsGroups).All(p => p.First.SequenceEqual(p.Second)),
            PayloadName, "groups", "must be the key columns' one-hot groups of the settings' CategoricalSlots");
        payload.Require(s.LowerBounds is not null, PayloadName, "bounds", "must be in the settings");
    }

    /// <summary>The report of a tabular generator: whether the bounds were public, in the flag and in words.</summary>
    public PrivacyReport Amend(PrivacyReport report) => !BoundsFittedOnData ? report : report with
    {
        BoundsFittedOnData = true,
        Mechanism = report.Mechanism + " CAUTION: the min-max bounds of the numeric columns were FITTED ON THE PRIVATE DATA and are stored " +
            "in the generator (and clamp its output): they are released without protection and NOT covered by (ε, δ); give public LowerBounds/UpperBounds instead.",
    };
}
