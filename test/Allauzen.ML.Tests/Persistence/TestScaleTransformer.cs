using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>
/// Test-only Allauzen component: adds <c>Scaled = a · Features</c> (a <c>Vector&lt;Single, n&gt;</c>,
/// slot names copied from the input) with a learned scalar <c>a = 1 / (1 + mean |x|)</c>. Written
/// directly on the public ML.NET interfaces: a lazy <see cref="IDataView"/> wrapper whose cursor
/// computes the added column.
/// </summary>
internal sealed class TestScaleTransformer : IAllauzenTransformer
{
    public const string Signature = "ALZTSCL1";
    public const string Name = "TestScale";
    public const int Version = 1;

    private readonly PersistedColumn _input;

    public TestScaleTransformer(float a, PersistedColumn input, string outputColumnName)
    {
        if (input.ItemKind != PersistedItemKind.Single || !input.IsVector || input.VectorSize == 0)
            throw new ArgumentException($"Column '{input.Name}' must be a known-size vector of Single.", nameof(input));
        A = a;
        _input = input;
        OutputColumnName = outputColumnName;
    }

    public float A { get; }

    public string InputColumnName => _input.Name;

    public string OutputColumnName { get; }

    public int Size => _input.VectorSize;

    public string ComponentName => Name;

    public string LoaderSignature => Signature;

    public int PayloadVersion => Version;

    public bool IsRowToRowMapper => false;

    /// <summary>Registers the loader (idempotent).</summary>
    public static void EnsureRegistered()
        => AllauzenLoaders.Register(Signature, Name, typeof(TestScaleTransformer), Load);

    /// <summary>Learns <c>a</c> from <paramref name="data"/>.</summary>
    public static TestScaleTransformer Fit(IDataView data, string inputColumnName = "Features", string outputColumnName = "Scaled")
    {
        var column = data.Schema[inputColumnName];
        double sum = 0;
        long count = 0;
        using (var cursor = data.GetRowCursor([column]))
        {
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> buffer = default;
            while (cursor.MoveNext())
            {
                getter(ref buffer);
                foreach (float v in buffer.DenseValues())
                {
                    sum += Math.Abs(v);
                    count++;
                }
            }
        }
        float a = (float)(1.0 / (1.0 + (count == 0 ? 0 : sum / count)));
        return new TestScaleTransformer(a, PersistedColumn.From(column), outputColumnName);
    }

    public static ITransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        var options = payload.ReadJson<Options>("options");
        var (a, shape) = payload.ReadTensor("a");
        if (a.Length != 1 || shape.Length != 1)
            throw new InvalidDataException($"Component '{Name}': tensor 'a' in '{payload.Source}' must hold one value.");
        return new TestScaleTransformer(a[0], payload.ReadColumnInfo("input"), options.OutputColumnName);
    }

    public void SavePayload(ModelPayloadWriter writer)
    {
        writer.WriteJson("options", new Options { OutputColumnName = OutputColumnName, Mode = ScaleMode.Linear });
        writer.WriteTensor("a", [A], [1]);
        writer.WriteColumnInfo("input", _input);
    }

    void ICanSaveModel.Save(ModelSaveContext ctx) => NativeBridge.Save(ctx, this);

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        var column = inputSchema.GetColumnOrNull(InputColumnName)
            ?? throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{InputColumnName}' not found.");
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType, Size: var size } vector
            || vector.ItemType != NumberDataViewType.Single || size != Size)
        {
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Column '{InputColumnName}' must be Vector<Single, {Size}>, found {column.Type}.");
        }
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        builder.AddColumn(OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, Size), _input.BuildAnnotations());
        return builder.ToSchema();
    }

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
        => throw new NotSupportedException("TestScaleTransformer is not a row-to-row mapper.");

    public IDataView Transform(IDataView input) => new ScaledView(input, this);

    public enum ScaleMode
    {
        Linear,
        Other,
    }

    public sealed class Options
    {
        public string OutputColumnName = "Scaled";
        public ScaleMode Mode;
    }

    private sealed class ScaledView(IDataView input, TestScaleTransformer owner) : IDataView
    {
        public DataViewSchema Schema { get; } = owner.GetOutputSchema(input.Schema);

        public bool CanShuffle => input.CanShuffle;

        public long? GetRowCount() => input.GetRowCount();

        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        {
            int outIndex = input.Schema.Count;
            var needed = columnsNeeded.ToList();
            bool wantOut = needed.Any(c => c.Index == outIndex);
            var inputColumns = needed.Where(c => c.Index < outIndex).Select(c => input.Schema[c.Index]).ToList();
            if (wantOut)
                inputColumns.Add(input.Schema[owner.InputColumnName]);
            var inner = input.GetRowCursor(inputColumns.DistinctBy(c => c.Index), rand);
            return new Cursor(Schema, inner, owner, wantOut);
        }

        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
            => [GetRowCursor(columnsNeeded, rand)];
    }

    private sealed class Cursor(DataViewSchema schema, DataViewRowCursor inner, TestScaleTransformer owner, bool wantOut) : DataViewRowCursor
    {
        private readonly int _outIndex = inner.Schema.Count;

        public override DataViewSchema Schema => schema;

        public override long Position => inner.Position;

        public override long Batch => inner.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => inner.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column)
            => column.Index == _outIndex ? wantOut : inner.IsColumnActive(inner.Schema[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index < _outIndex)
                return inner.GetGetter<TValue>(inner.Schema[column.Index]);
            if (!wantOut)
                throw new InvalidOperationException($"Column '{column.Name}' is not active.");
            if (typeof(TValue) != typeof(VBuffer<float>))
                throw new InvalidOperationException($"Column '{column.Name}' is VBuffer<Single>, not {typeof(TValue).Name}.");

            var source = inner.GetGetter<VBuffer<float>>(inner.Schema[owner.InputColumnName]);
            VBuffer<float> src = default;
            float a = owner.A;
            int size = owner.Size;
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> dst) =>
            {
                source(ref src);
                var editor = VBufferEditor.Create(ref dst, size);
                int i = 0;
                foreach (float v in src.DenseValues())
                    editor.Values[i++] = a * v;
                dst = editor.Commit();
            };
            return (ValueGetter<TValue>)(Delegate)getter;
        }

        public override bool MoveNext() => inner.MoveNext();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
