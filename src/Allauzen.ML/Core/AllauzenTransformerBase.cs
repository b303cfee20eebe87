using Allauzen.ML.Data;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Core;

/// <summary>
/// Base of every Allauzen transformer that appends computed columns to its input. ML.NET's own bases
/// cannot be derived from outside Microsoft, so this one is written on the public interfaces:
/// <see cref="Transform"/> returns a lazy <see cref="IDataView"/> that scores rows in batches,
/// <see cref="GetRowToRowMapper"/> serves <c>PredictionEngine</c> one row at a time with the same
/// scorer, and the output schema is exact for both <see cref="DataViewSchema"/> and
/// <see cref="SchemaShape"/>.
/// </summary>
public abstract class AllauzenTransformerBase : ITransformer, IDisposable
{
    private int _scoringBatchSize = 256;

    private protected AllauzenTransformerBase(IHostEnvironment env, string registrationName)
    {
        ArgumentNullException.ThrowIfNull(env);
        Env = env;
        Host = env.Register(registrationName);
    }

    private protected IHostEnvironment Env { get; }

    private protected IHost Host { get; }

    /// <summary>Number of rows scored per forward pass by <see cref="Transform"/> (default 256).</summary>
    public int ScoringBatchSize
    {
        get => _scoringBatchSize;
        set => _scoringBatchSize = value >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(ScoringBatchSize), value, "ScoringBatchSize must be at least 1.");
    }

    /// <summary>Always true: Allauzen transformers map rows independently, so PredictionEngine works.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The columns this transformer appends, with their annotations.</summary>
    internal abstract IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

    /// <summary>Names of the input columns the scorer reads.</summary>
    internal abstract IReadOnlyList<string> InputColumnNames { get; }

    /// <summary>Throws a clear exception naming the column, the expected and the actual type when the input does not fit.</summary>
    internal abstract void CheckInputSchema(DataViewSchema inputSchema);

    /// <summary>Creates a scorer for rows of <paramref name="inputSchema"/>.</summary>
    internal abstract BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity);

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        CheckInputSchema(inputSchema);
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        foreach (var c in AddedColumns)
            builder.AddColumn(c.Name, c.Type, c.Annotations);
        return builder.ToSchema();
    }

    /// <summary>The output shape for an input shape: the input plus the added columns.</summary>
    internal SchemaShape GetOutputSchemaShape(SchemaShape inputShape) =>
        SchemaShapes.With(inputShape, AddedColumns.Select(c => SchemaShapes.FromColumn(ToColumn(c))));

    private static DataViewSchema.Column ToColumn(DataViewSchema.DetachedColumn c)
    {
        var b = new DataViewSchema.Builder();
        b.AddColumn(c.Name, c.Type, c.Annotations);
        return b.ToSchema()[0];
    }

    /// <summary>Returns a lazy view that appends the added columns, scoring <see cref="ScoringBatchSize"/> rows per pass.</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new ScoredDataView(this, input, GetOutputSchema(input.Schema));
    }

    /// <summary>A row-to-row mapper (batch of one) for <c>PredictionEngine</c> and chains of mappers.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new Mapper(this, inputSchema, GetOutputSchema(inputSchema));
    }

    void ICanSaveModel.Save(ModelSaveContext ctx) => NativeBridge.Save(ctx, (IAllauzenTransformer)this);

    /// <summary>Releases native resources (tensors) held by the model.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases native resources; override to dispose modules.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    private IEnumerable<DataViewSchema.Column> InputColumns(DataViewSchema inputSchema) =>
        InputColumnNames.Select(n => inputSchema.GetColumnOrNull(n)
            ?? throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{n}' was not found."));

    /// <summary>
    /// The lazy output of <see cref="Transform"/>. The build's LoaderWeaver also makes it an ML.NET
    /// <c>IDataTransform</c> that can "save itself as ONNX" (<see cref="MlNetDataTransformAttribute"/>): ML.NET's
    /// <c>ConvertToOnnx</c> walks back through it, asks it whether it can export, and gets
    /// <see cref="OnnxGuard.ConvertToOnnxNotSupported"/> instead of silently starting the graph after it.
    /// </summary>
    [MlNetDataTransform]
    private sealed class ScoredDataView(AllauzenTransformerBase parent, IDataView input, DataViewSchema schema) : IDataView, ICanSaveModel
    {
        /// <summary>ML.NET's <c>IDataTransform.Source</c> (woven).</summary>
        internal IDataView MlNetSource => input;

        /// <summary>ML.NET's <c>ICanSaveOnnx.CanSaveOnnx(OnnxContext)</c> (woven): always refuses, naming the fix.</summary>
        internal bool MlNetCanSaveOnnx(object ctx) => throw OnnxGuard.ConvertToOnnxNotSupported(parent);

        /// <summary>ML.NET's <c>ISaveAsOnnx.SaveAsOnnx(OnnxContext)</c> (woven): never reached after a refusal.</summary>
        internal void MlNetSaveAsOnnx(object ctx) => throw OnnxGuard.ConvertToOnnxNotSupported(parent);

        void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
            $"The scored data of {parent.GetType().Name} is not a model: save the transformer with ml.Model.Save(model, schema, path).");

        public DataViewSchema Schema => schema;

        public bool CanShuffle => input.CanShuffle;

        public long? GetRowCount() => input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            var active = new bool[schema.Count];
            foreach (var c in columnsNeeded)
                active[c.Index] = true;
            int nIn = input.Schema.Count;
            bool anyAdded = active.Skip(nIn).Any(a => a);
            var inputCols = new HashSet<int>();
            for (int i = 0; i < nIn; i++)
            {
                if (active[i])
                    inputCols.Add(i);
            }
            if (anyAdded)
            {
                foreach (var c in parent.InputColumns(input.Schema))
                    inputCols.Add(c.Index);
            }
            var cursor = input.GetRowCursor(inputCols.Select(i => input.Schema[i]), rand);
            return anyAdded
                ? new BatchedCursor(parent, cursor, schema, active)
                : new MappedCursor(cursor, schema, active);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            [GetRowCursor(columnsNeeded, rand)];
    }

    private sealed class BatchedCursor : DataViewRowCursor
    {
        private readonly DataViewRowCursor _input;
        private readonly DataViewSchema _schema;
        private readonly bool[] _active;
        private readonly BatchScorer _scorer;
        private readonly ColumnBuffer?[] _buffers;
        private readonly ValueGetter<DataViewRowId> _idGetter;
        private readonly DataViewRowId[] _ids;
        private readonly Delegate?[] _addedGetters;
        private readonly int _nIn;
        private int _count;
        private int _index = -1;
        private long _position = -1;
        private bool _done;

        public BatchedCursor(AllauzenTransformerBase parent, DataViewRowCursor input, DataViewSchema schema, bool[] active)
        {
            _input = input;
            _schema = schema;
            _active = active;
            _nIn = input.Schema.Count;
            int capacity = parent.ScoringBatchSize;
            _scorer = parent.CreateScorer(input.Schema, capacity);
            _scorer.Bind(input);
            _buffers = new ColumnBuffer?[_nIn];
            for (int i = 0; i < _nIn; i++)
            {
                if (active[i])
                    _buffers[i] = ColumnBuffer.Create(input, input.Schema[i], capacity);
            }
            _idGetter = input.GetIdGetter();
            _ids = new DataViewRowId[capacity];
            _addedGetters = new Delegate?[schema.Count - _nIn];
            Func<int> slot = () => _index;
            for (int j = 0; j < _addedGetters.Length; j++)
            {
                if (active[_nIn + j])
                    _addedGetters[j] = _scorer.GetGetter(j, slot);
            }
        }

        public override DataViewSchema Schema => _schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_done)
                return false;
            if (_index + 1 < _count)
            {
                _index++;
                _position++;
                return true;
            }
            _count = 0;
            while (_count < _scorer.Capacity && _input.MoveNext())
            {
                _scorer.Load(_count);
                foreach (var b in _buffers)
                    b?.Capture(_count);
                _idGetter(ref _ids[_count]);
                _count++;
            }
            if (_count == 0)
            {
                _done = true;
                _index = -1;
                return false;
            }
            _scorer.Score(_count);
            _index = 0;
            _position++;
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId v) => v = _ids[_index];

        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!_active[column.Index])
                throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
            var getter = column.Index < _nIn ? _buffers[column.Index]!.Getter(() => _index) : _addedGetters[column.Index - _nIn];
            return getter as ValueGetter<TValue> ?? throw new InvalidOperationException(
                $"Column '{column.Name}' has type {column.Type}; a getter of {typeof(TValue).Name} was requested.");
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _scorer.Dispose();
                _input.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    private sealed class Mapper(AllauzenTransformerBase parent, DataViewSchema inputSchema, DataViewSchema outputSchema) : IRowToRowMapper
    {
        public DataViewSchema InputSchema => inputSchema;

        public DataViewSchema OutputSchema => outputSchema;

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
        {
            var set = new HashSet<int>();
            foreach (var c in dependingColumns)
            {
                if (c.Index < inputSchema.Count)
                {
                    set.Add(c.Index);
                }
                else
                {
                    foreach (var ic in parent.InputColumns(inputSchema))
                        set.Add(ic.Index);
                }
            }
            return set.OrderBy(i => i).Select(i => inputSchema[i]).ToArray();
        }

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            var active = new bool[outputSchema.Count];
            foreach (var c in activeColumns)
                active[c.Index] = true;
            return new MappedRow(parent, input, outputSchema, active);
        }
    }

    private sealed class MappedRow : DataViewRow
    {
        private readonly DataViewRow _input;
        private readonly DataViewSchema _schema;
        private readonly bool[] _active;
        private readonly BatchScorer? _scorer;
        private readonly Delegate?[] _addedGetters;
        private readonly int _nIn;
        private long _scoredPosition = -1;

        public MappedRow(AllauzenTransformerBase parent, DataViewRow input, DataViewSchema schema, bool[] active)
        {
            _input = input;
            _schema = schema;
            _active = active;
            _nIn = input.Schema.Count;
            _addedGetters = new Delegate?[schema.Count - _nIn];
            if (active.Skip(_nIn).Any(a => a))
            {
                _scorer = parent.CreateScorer(input.Schema, 1);
                _scorer.Bind(input);
                for (int j = 0; j < _addedGetters.Length; j++)
                {
                    if (active[_nIn + j])
                        _addedGetters[j] = _scorer.GetGetter(j, EnsureScored);
                }
            }
        }

        private int EnsureScored()
        {
            if (_scoredPosition != _input.Position || _input.Position < 0)
            {
                _scorer!.Load(0);
                _scorer.Score(1);
                _scoredPosition = _input.Position;
            }
            return 0;
        }

        public override DataViewSchema Schema => _schema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _nIn)
                return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            if (!_active[column.Index])
                throw new InvalidOperationException($"Column '{column.Name}' is not active in this row.");
            return _addedGetters[column.Index - _nIn] as ValueGetter<TValue> ?? throw new InvalidOperationException(
                $"Column '{column.Name}' has type {column.Type}; a getter of {typeof(TValue).Name} was requested.");
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _scorer?.Dispose();
            base.Dispose(disposing);
        }
    }
}
