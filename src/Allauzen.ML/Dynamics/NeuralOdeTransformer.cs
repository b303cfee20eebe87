using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Microsoft.ML.Data;
using TorchSharp;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Dynamics.NeuralOdeTransformer), Allauzen.ML.Dynamics.NeuralOdeTransformer.Signature, "NeuralOde")]

namespace Allauzen.ML.Dynamics;

/// <summary>
/// A trained Neural ODE forecaster. It appends <c>PredictedNextState</c> (the state one sample interval later) and
/// <c>SolverSteps</c> (whole solver steps used for the row), scoring rows in batches; <see cref="Rollout(ReadOnlySpan{float}, int)"/> runs the
/// model freely from an initial state. It saves with <c>ml.Model.Save</c> and loads with <c>ml.Model.Load</c>. ONNX
/// export covers fixed-step solvers only (see <see cref="WithFixedSolver"/>): the adaptive Fehlberg loop stays in .NET.
/// </summary>
public sealed class NeuralOdeTransformer : AllauzenTransformerBase, IAllauzenTransformer, IOnnxExportable
{
    internal const string Signature = "ALZ-NODE";
    private const int Version = 1;
    private readonly OdeSolverSettings _settings;
    private readonly string _stateColumn;
    private readonly string _predictedColumn;
    private readonly string _stepsColumn;
    private readonly NeuralOdeEpoch[] _history;
    private readonly DataViewSchema.DetachedColumn[] _added;
    private OdeNetwork? _net;

    internal NeuralOdeTransformer(IHostEnvironment env, OdeNetwork net, OdeSolverSettings settings, string stateColumn,
        string predictedColumn, string stepsColumn, IReadOnlyList<NeuralOdeEpoch> history)
        : base(env, "Allauzen.NeuralOde")
    {
        _net = net;
        _net.eval();
        _settings = settings;
        _stateColumn = stateColumn;
        _predictedColumn = predictedColumn;
        _stepsColumn = stepsColumn;
        _history = [.. history];
        _added =
        [
            new DataViewSchema.DetachedColumn(predictedColumn, new VectorDataViewType(NumberDataViewType.Single, net.Architecture.StateSize)),
            new DataViewSchema.DetachedColumn(stepsColumn, NumberDataViewType.Single),
        ];
    }

    /// <summary>Length of the state vectors.</summary>
    public int StateSize => Net.Architecture.StateSize;

    /// <summary>Widths of the hidden ReLU layers of f_θ.</summary>
    public IReadOnlyList<int> HiddenSizes => Net.Architecture.HiddenSizes;

    /// <summary>The solver used by <c>Transform</c> and <see cref="Rollout(ReadOnlySpan{float}, int)"/>.</summary>
    public OdeSolver Solver => _settings.Solver;

    /// <summary>Steps per interval of the fixed solvers (Euler, Rk3).</summary>
    public int FixedSteps => _settings.FixedSteps;

    /// <summary>The tolerance ε of the Fehlberg solver.</summary>
    public double Tolerance => _settings.Tolerance;

    /// <summary>The safety factor S of the Fehlberg solver.</summary>
    public double Safety => _settings.Safety;

    /// <summary>The largest number of steps per interval of the Fehlberg solver.</summary>
    public int MaxSteps => _settings.MaxSteps;

    /// <summary>The per-epoch training figures (loss, accepted fraction, steps), as the paper's training curves.</summary>
    public IReadOnlyList<NeuralOdeEpoch> TrainingHistory => _history;

    /// <summary>
    /// The fraction of training rows whose first RK3 step was accepted in the last training epoch (r ≤ ε, with r as the
    /// training mode defines it); NaN when the model carries no training history.
    /// </summary>
    public double AcceptedFraction => _history.Length == 0 ? double.NaN : _history[^1].AcceptedFraction;

    private OdeNetwork Net => _net ?? throw new ObjectDisposedException(nameof(NeuralOdeTransformer));

    /// <summary>
    /// Runs the model freely: x₀ = <paramref name="initialState"/>, x_{t+1} = Solve(f_θ, x_t) with this model's solver.
    /// Returns <paramref name="steps"/> + 1 states, the first being the initial state.
    /// </summary>
    /// <param name="initialState">The start state (length <see cref="StateSize"/>, finite values).</param>
    /// <param name="steps">Number of sample intervals to predict (non-negative).</param>
    public float[][] Rollout(ReadOnlySpan<float> initialState, int steps) => Rollout(initialState, steps, out _);

    /// <summary>As <see cref="Rollout(ReadOnlySpan{float}, int)"/>, also returning the solver steps of each interval.</summary>
    /// <param name="initialState">The start state (length <see cref="StateSize"/>, finite values).</param>
    /// <param name="steps">Number of sample intervals to predict (non-negative).</param>
    /// <param name="solverSteps">Receives <paramref name="steps"/> whole step counts, one per interval.</param>
    public float[][] Rollout(ReadOnlySpan<float> initialState, int steps, out int[] solverSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        if (initialState.Length != StateSize)
            throw new ArgumentException($"The initial state has {initialState.Length} values; the model's state has {StateSize}.", nameof(initialState));
        foreach (float v in initialState)
        {
            if (!float.IsFinite(v))
                throw new ArgumentException($"The initial state holds a non-finite value ({v}).", nameof(initialState));
        }
        var states = new float[steps + 1][];
        solverSteps = new int[steps];
        states[0] = initialState.ToArray();
        var net = Net;
        for (int t = 0; t < steps; t++)
        {
            using var scope = torch.NewDisposeScope();
            var x = torch.tensor(states[t], [1, StateSize]);
            var (y, k) = AdaptiveSolver.Score(_settings, net.forward, x);
            states[t + 1] = y.data<float>().ToArray();
            solverSteps[t] = k[0];
        }
        return states;
    }

    /// <summary>
    /// A copy of this model (same f_θ) that integrates each interval with <paramref name="steps"/> equal steps of a
    /// fixed solver: its <c>Transform</c> is the one-step map that <c>ml.Model.ExportToOnnx</c> writes.
    /// </summary>
    /// <param name="solver"><see cref="OdeSolver.Euler"/> or <see cref="OdeSolver.Rk3"/>.</param>
    /// <param name="steps">Steps per interval, in [1, 1000].</param>
    public NeuralOdeTransformer WithFixedSolver(OdeSolver solver, int steps)
    {
        if (solver is not (OdeSolver.Euler or OdeSolver.Rk3))
            throw new ArgumentOutOfRangeException(nameof(solver), solver, "WithFixedSolver takes Euler or Rk3.");
        if (steps < 1 || steps > 1000)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be in [1, 1000].");
        var copy = new OdeNetwork(Net.Architecture);
        CopyParameters(Net, copy);
        return new NeuralOdeTransformer(Env, copy, _settings with { Solver = solver, FixedSteps = steps }, _stateColumn,
            _predictedColumn, _stepsColumn, _history);
    }

    private static void CopyParameters(OdeNetwork from, OdeNetwork to)
    {
        using var noGrad = torch.no_grad();
        var source = from.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in to.named_parameters())
            p.copy_(source[name]);
    }

    internal override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns => _added;

    internal override IReadOnlyList<string> InputColumnNames => [_stateColumn];

    internal override void CheckInputSchema(DataViewSchema inputSchema) =>
        SchemaChecks.FeatureVector(inputSchema, _stateColumn, "state", StateSize);

    internal override BatchScorer CreateScorer(DataViewSchema inputSchema, int capacity) => new Scorer(this, inputSchema, capacity);

    private sealed class Scorer(NeuralOdeTransformer parent, DataViewSchema schema, int capacity) : BatchScorer(capacity)
    {
        private readonly int _d = parent.StateSize;
        private readonly float[] _x = new float[capacity * parent.StateSize];
        private readonly float[] _y = new float[capacity * parent.StateSize];
        private readonly int[] _steps = new int[capacity];
        private ValueGetter<VBuffer<float>>? _get;
        private VBuffer<float> _buffer;

        public override void Bind(DataViewRow input) => _get = input.GetGetter<VBuffer<float>>(schema[parent._stateColumn]);

        public override void Load(int slot)
        {
            _get!(ref _buffer);
            _buffer.CopyTo(_x, slot * _d);
        }

        public override void Score(int count)
        {
            using var scope = torch.NewDisposeScope();
            var x = torch.tensor(_x, [Capacity, _d]).narrow(0, 0, count);
            var (y, k) = AdaptiveSolver.Score(parent._settings, parent.Net.forward, x);
            y.contiguous().data<float>().CopyTo(_y, 0, 0);
            Array.Copy(k, _steps, count);
        }

        public override Delegate GetGetter(int addedColumn, Func<int> slot)
        {
            if (addedColumn == 0)
            {
                return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> v) =>
                {
                    var editor = VBufferEditor.Create(ref v, _d);
                    _y.AsSpan(slot() * _d, _d).CopyTo(editor.Values);
                    v = editor.Commit();
                });
            }
            return (ValueGetter<float>)((ref float v) => v = _steps[slot()]);
        }
    }

    string IAllauzenTransformer.ComponentName => "NeuralOde";

    string IAllauzenTransformer.LoaderSignature => Signature;

    int IAllauzenTransformer.PayloadVersion => Version;

    void IAllauzenTransformer.SavePayload(ModelPayloadWriter writer)
    {
        writer.WriteJson("architecture", Net.Architecture);
        writer.WriteJson("solver", _settings);
        writer.WriteJson("history", _history);
        writer.WriteString("state", _stateColumn);
        writer.WriteString("predicted", _predictedColumn);
        writer.WriteString("steps", _stepsColumn);
        foreach (var (name, p) in Net.named_parameters())
        {
            using var cpu = p.detach().cpu().contiguous();
            writer.WriteTensor(name, cpu.data<float>().ToArray(), cpu.shape);
        }
    }

    /// <summary>Rebuilds a transformer from its payload (declared by the <see cref="AllauzenLoaderAttribute"/> above).</summary>
    internal static NeuralOdeTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        Torch.TorchRuntime.EnsureInitialized();
        var a = payload.ReadJson<NeuralOdeArchitecture>("architecture");
        a.Validate(payload.Source);
        var settings = payload.ReadJson<OdeSolverSettings>("solver");
        settings.Validate(payload.Source);
        var history = payload.ReadJson<NeuralOdeEpoch[]>("history") ?? [];
        // Read and check every tensor against the architecture before the network is allocated.
        var tensors = new List<(string Name, float[] Data, long[] Shape)>();
        foreach (var (name, expected) in OdeNetwork.ParameterShapes(a))
        {
            var (data, shape) = payload.ReadTensor(name);
            if (!shape.SequenceEqual(expected))
                throw new InvalidDataException(
                    $"NeuralOde model '{payload.Source}': tensor '{name}' has shape [{string.Join(", ", shape)}], expected [{string.Join(", ", expected)}].");
            tensors.Add((name, data, shape));
        }
        var net = new OdeNetwork(a);
        try
        {
            var parameters = net.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            using (torch.no_grad())
            {
                foreach (var (name, data, shape) in tensors)
                {
                    using var t = torch.tensor(data, shape);
                    parameters[name].copy_(t);
                }
            }
            return new NeuralOdeTransformer(env, net, settings, payload.ReadString("state"), payload.ReadString("predicted"),
                payload.ReadString("steps"), history);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    void IOnnxExportable.EmitOnnx(OnnxGraphBuilder graph, IDictionary<string, string> columns)
    {
        if (_settings.Solver == OdeSolver.Fehlberg32)
            throw new NotSupportedException(
                "NeuralOde: the adaptive Fehlberg32 solver is not exported to ONNX (its step-size loop runs in .NET). "
                + "Export transformer.WithFixedSolver(OdeSolver.Rk3, steps) instead: the fixed-step one-step map.");
        var f = EmitField(graph);
        string x = columns[_stateColumn];
        string first = x;
        double h = 1.0 / _settings.FixedSteps;
        string hT = graph.Initializer("h", [(float)h], 1);
        string h4 = graph.Initializer("h_quarter", [(float)(h / 4)], 1);
        string h6 = graph.Initializer("h_sixth", [(float)(h / 6)], 1);
        string four = graph.Initializer("four", [4f], 1);
        for (int s = 0; s < _settings.FixedSteps; s++)
        {
            string f1 = f(x);
            if (_settings.Solver == OdeSolver.Euler)
            {
                x = graph.Node("Add", [x, graph.Node("Mul", [f1, hT], "hf1")], "euler");
                continue;
            }
            string f2 = f(graph.Node("Add", [x, graph.Node("Mul", [f1, hT], "hf1")], "x2"));
            string f12 = graph.Node("Add", [f1, f2], "f12");
            string f3 = f(graph.Node("Add", [x, graph.Node("Mul", [f12, h4], "hf12")], "x3"));
            string sum = graph.Node("Add", [f12, graph.Node("Mul", [f3, four], "f3x4")], "fsum");
            x = graph.Node("Add", [x, graph.Node("Mul", [sum, h6], "hfsum")], "rk3");
        }
        columns[_predictedColumn] = x;
        // SolverSteps: a constant column of shape [N, 1] (0·Σ_j x_j + steps keeps the batch dimension).
        string zero = graph.Initializer("zero", [0f], 1);
        string steps = graph.Initializer("steps", [(float)_settings.FixedSteps], 1);
        string rowSum = graph.Opset >= 13
            ? graph.Node("ReduceSum", [first, graph.Initializer("sum_axes", [1L], 1)], "row_sum", ("keepdims", 1L))
            : graph.Node("ReduceSum", [first], "row_sum", ("axes", new long[] { 1 }), ("keepdims", 1L));
        columns[_stepsColumn] = graph.Node("Add", [graph.Node("Mul", [rowSum, zero], "row_zero"), steps], "solver_steps");
    }

    /// <summary>Emits the initializers of f_θ once and returns a function that emits one evaluation of f_θ.</summary>
    private Func<string, string> EmitField(OnnxGraphBuilder g)
    {
        var a = Net.Architecture;
        string mean = g.Initializer("input_mean", a.InputMean, 1, a.StateSize);
        string scale = g.Initializer("input_scale", a.InputScale, 1, a.StateSize);
        var layers = Net.LinearLayers().Select(l =>
        {
            using var w = l.Layer.weight!.detach().cpu().contiguous();
            using var b = l.Layer.bias!.detach().cpu().contiguous();
            return (l.Name, W: g.Initializer($"{l.Name}_weight", w.data<float>().ToArray(), w.shape), B: g.Initializer($"{l.Name}_bias", b.data<float>().ToArray(), b.shape));
        }).ToArray();
        return x =>
        {
            string z = g.Node("Div", [g.Node("Sub", [x, mean], "centred"), scale], "standardised");
            for (int i = 0; i < layers.Length; i++)
            {
                z = g.Node("Gemm", [z, layers[i].W, layers[i].B], $"{layers[i].Name}_out", ("transB", 1L));
                if (i < layers.Length - 1)
                    z = g.Node("Relu", [z], $"act{i}");
            }
            return z;
        };
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _net?.Dispose();
            _net = null;
        }
        base.Dispose(disposing);
    }
}
