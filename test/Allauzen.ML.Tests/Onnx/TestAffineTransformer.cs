using Allauzen.ML.Core;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Allauzen.ML.Tests.Onnx;

/// <summary>
/// Test-only row mapper: adds <c>Output = W · Input + b</c> (a <c>Vector&lt;Single, m&gt;</c> with slot names
/// "a0".."a{m-1}") with known W (m × n, row-major) and b. It is neither ONNX-exportable nor an Allauzen
/// component by itself; the subclasses below add those roles.
/// </summary>
internal class AffineCore : AllauzenTransformerBase
{
    private readonly DataViewSchema.DetachedColumn[] _added;

    public AffineCore(IHostEnvironment env, string inputColumn, string outputColumn, float[] weights, float[] bias)
        : base(env, "Test.Affine")
    {
        if (bias.Length == 0 || weights.Length == 0 || weights.Length % bias.Length != 0)
            throw new ArgumentException("weights must be m × n with m = bias.Length.");
        InputColumn = inputColumn;
        OutputColumn = outputColumn;
        Weights = weights;
        Bias = bias;
        OutputSize = bias.Length;
        InputSize = weights.Length / bias.Length;

        var ann = new DataViewSchema.Annotations.Builder();
        ValueGetter<VBuffer<ReadOnlyMemory<char>>> names = (ref VBuffer<ReadOnlyMemory<char>> dst) =>
        {
            var editor = VBufferEditor.Create(ref dst, OutputSize);
            for (int i = 0; i < OutputSize; i++)
                editor.Values[i] = ("a" + i).AsMemory();
            dst = editor.Commit();
        };
        ann.Add("SlotNames", new VectorDataViewType(TextDataViewType.Instance, OutputSize), names);
        var b = new DataViewSchema.Builder();
        b.AddColumn(outputColumn, new VectorDataViewType(NumberDataViewType.Single, OutputSize), ann.ToAnnotations());
        _added = [new DataViewSchema.DetachedColumn(b.ToSchema()[0])];
    }

    public string InputColumn { get; }

    public string OutputColumn { get; }

    public float[] Weights { get; }

    public float[] Bias { get; }

    public int InputSize { get; }

    public int OutputSize { get; }

    internal override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

    internal override IReadOnlyList<string> InputColumnNames => [InputColumn];

    internal override void CheckInputSchema(DataViewSchema inputSchema)
    {
        var c = inputSchema.GetColumnOrNull(InputColumn)
            ?? throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{InputColumn}' was not found.");
        if (c.Type is not VectorDataViewType { ItemType: NumberDataViewType, Size: var size } v
            || v.ItemType != NumberDataViewType.Single || size != InputSize)
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Column '{InputColumn}' must be Vector<Single, {InputSize}>, not {c.Type}.");
    }

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) => new Scorer(this, capacity);

    /// <summary>The reference forward pass for one row.</summary>
    public float[] Apply(ReadOnlySpan<float> x)
    {
        var y = new float[OutputSize];
        for (int i = 0; i < OutputSize; i++)
        {
            float s = Bias[i];
            for (int j = 0; j < InputSize; j++)
                s += Weights[(i * InputSize) + j] * x[j];
            y[i] = s;
        }
        return y;
    }

    private sealed class Scorer(AffineCore parent, int capacity) : BatchScorer(capacity)
    {
        private readonly float[][] _x = new float[capacity][];
        private readonly float[][] _y = new float[capacity][];
        private ValueGetter<VBuffer<float>>? _getter;
        private VBuffer<float> _buffer;

        public override void Bind(DataViewRow input) =>
            _getter = input.GetGetter<VBuffer<float>>(input.Schema[parent.InputColumn]);

        public override void Load(int slot)
        {
            _getter!(ref _buffer);
            _x[slot] = _buffer.DenseValues().ToArray();
        }

        public override void Score(int count)
        {
            for (int r = 0; r < count; r++)
                _y[r] = parent.Apply(_x[r]);
        }

        public override Delegate GetGetter(int addedColumn, Func<int> slot)
        {
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> dst) =>
            {
                var y = _y[slot()];
                var editor = VBufferEditor.Create(ref dst, y.Length);
                y.CopyTo(editor.Values);
                dst = editor.Commit();
            };
            return getter;
        }
    }
}

/// <summary>The affine map as an exportable Allauzen transformer: one <c>Gemm(transB = 1)</c> node.</summary>
internal sealed class TestAffineTransformer(IHostEnvironment env, string inputColumn, string outputColumn, float[] weights, float[] bias)
    : AffineCore(env, inputColumn, outputColumn, weights, bias), IOnnxExportable
{
    public void EmitOnnx(OnnxGraphBuilder graph, IDictionary<string, string> columns)
    {
        var x = columns[InputColumn];
        var w = graph.Initializer("affine_W", Weights, OutputSize, InputSize);
        var b = graph.Initializer("affine_b", Bias, OutputSize);
        columns[OutputColumn] = graph.Node("Gemm", [x, w, b], "affine", ("transB", 1L));
    }
}

/// <summary>An Allauzen component without an ONNX form (for the exporter's error path).</summary>
internal sealed class NotExportableTransformer(IHostEnvironment env, string inputColumn, string outputColumn, float[] weights, float[] bias)
    : AffineCore(env, inputColumn, outputColumn, weights, bias), IAllauzenTransformer
{
    public string ComponentName => "ProbeSmoothing";

    public string LoaderSignature => "ALZ-TSTN";

    public int PayloadVersion => 1;

    public void SavePayload(ModelPayloadWriter writer) => writer.WriteString("note", "test only");
}
