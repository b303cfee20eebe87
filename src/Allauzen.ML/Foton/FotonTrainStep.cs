using System.Globalization;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// The <see cref="ITrainStep"/> of the FOTON trainer, for the three algorithms on one network. A step: draw the
/// dropout masks (<see cref="DropoutMasks"/>, shared by every pass); get each layer's update G_i — FOTON's or
/// PEPITA's forward-only step (<see cref="FotonStep.Run"/>, which hands over G_i layer by layer) or the backprop
/// gradient (<see cref="BackpropGradient"/>); for each layer as its G_i arrives, the optimizer step and, every
/// <see cref="FotonOptions.ProjectionInterval"/> steps, the Björck projection (with plain SGD and no diagnostics on the
/// step, the forward-only update goes into the weights inside the step, <see cref="FotonStep.InPlaceSgd"/>, and only the
/// projection follows); then the refresh of Fᵀ every
/// <see cref="FotonOptions.FeedbackRefreshInterval"/> steps. Also: per-step divergence checks and the per-layer
/// alignment diagnostics. Nothing but the backprop path builds an autograd graph.
/// </summary>
internal sealed class FotonTrainStep : ITrainStep, IDisposable
{
    private readonly FotonOptions _o;
    private readonly int _classes;
    private readonly int _seed;
    private readonly Device _device;
    private readonly Generator _powerGenerator;
    private readonly WeightOptimizer _optimizer;
    private readonly Dictionary<string, double> _cosines = [];
    // Cumulative hidden widths (units before hidden layer i, then the total), for the per-step mask buffer.
    private readonly long[] _hiddenOffsets;
    private OrthogonalMlp? _net;
    private Tensor? _feedback;
    private Tensor[]? _snapshot;
    private double _lr;
    private int _epoch;
    private long _stepInEpoch;
    private long _projections;
    private long _bjorckIterations;

    public FotonTrainStep(OrthogonalMlp net, FotonOptions options, int seed, Device device)
    {
        _net = net;
        _o = options;
        _classes = net.Architecture.Classes;
        _lr = options.LearningRate;
        var widths = net.Architecture.FlatWidths();
        _hiddenOffsets = new long[net.OutputIndex + 1];
        for (int i = 0; i < net.OutputIndex; i++)
            _hiddenOffsets[i + 1] = _hiddenOffsets[i] + widths[i + 1];
        // Separate streams: the loop shuffles from the seed with System.Random; power iterations and the
        // PEPITA feedback have their own libtorch generators; each (step, layer) dropout mask has its own
        // seed, so a pass can regenerate the mask instead of keeping it (the low-memory FOTON step).
        _seed = seed;
        _device = device;
        _powerGenerator = new Generator(DeriveSeed(seed, 2), device);
        _optimizer = new WeightOptimizer(options.Optimizer, options.Momentum, options.WeightDecay);
        var w0 = net.Weights[0];
        using (torch.no_grad())
        {
            if (options.Algorithm == FotonAlgorithm.Foton)
                _feedback = net.FTranspose().DetachFromDisposeScope();
            else if (options.Algorithm == FotonAlgorithm.Pepita)
            {
                using var g = new Generator(DeriveSeed(seed, 3), device);
                _feedback = PepitaFeedback.Create(_classes, net.Architecture.InputSize, options.PepitaFeedbackScale, g, w0.dtype, w0.device);
            }
        }
    }

    /// <summary>Steps taken so far (1-based counter of the reference code).</summary>
    public long StepCounter { get; private set; }

    /// <summary>The network being trained.</summary>
    public OrthogonalMlp Net => _net ?? throw new ObjectDisposedException(nameof(FotonTrainStep));

    /// <summary>Fᵀ (FOTON) or the fixed random feedback (PEPITA); null for backprop.</summary>
    internal Tensor? Feedback => _feedback;

    /// <summary>Seeds of the auxiliary generators, derived from the run seed (SplitMix64).</summary>
    internal static ulong DeriveSeed(int seed, int stream) => DeriveSeed(seed, (ulong)(uint)stream);

    internal static ulong DeriveSeed(int seed, ulong stream) => SplitMix64.Scramble((ulong)(uint)seed + stream * SplitMix64.Gamma);

    private bool Projects => _o.Algorithm == FotonAlgorithm.Foton || (_o.Algorithm == FotonAlgorithm.Backprop && _o.ProjectBackprop);

    public BatchResult TrainBatch(Tensor x, Tensor y)
    {
        using var noGrad = torch.no_grad();
        var net = Net;
        StepCounter++;
        _stepInEpoch++;
        int b = (int)x.shape[0];
        var dtype = net.Weights[0].dtype;
        if (x.dtype != dtype)
            x = x.to(dtype);
        using var masks = DrawMasks(StepCounter, b);
        bool project = Projects && StepCounter % _o.ProjectionInterval == 0;
        // Alignment probe (first batch of an epoch): the backprop gradient at the same weights, before any of them moves.
        var probe = _o.AlignmentDiagnostics && _o.Algorithm != FotonAlgorithm.Backprop && _stepInEpoch == 1
            ? BackpropGradient.Compute(net, x, y, masks.All(), _o.CeTemperature).Gradients : null;

        // Each layer is updated (and projected) as soon as its G_i is known.
        _optimizer.BeginStep();
        void Update(int i, Tensor g)
        {
            if (probe is not null)
                RecordAlignment(i, g, probe[i]);
            _optimizer.StepLayer(i, net.Weights.Length, net.Weights[i], g, _lr);
            if (project)
                ProjectLayer(i);
        }
        Tensor logits;
        if (_o.Algorithm == FotonAlgorithm.Backprop)
        {
            (var gradient, logits) = BackpropGradient.Compute(net, x, y, masks.All(), _o.CeTemperature);
            for (int i = 0; i < gradient.Length; i++)
                Update(i, gradient[i]);
        }
        else
        {
            var targets = nn.functional.one_hot(y, _classes).to(dtype);
            // The reference divides the forward-only updates by the configured batch size, also on an epoch's last, partial batch.
            double divisor = _o.ScaleByConfiguredBatchSize ? Math.Max(b, _o.BatchSize) : b;
            var rule = _o.Algorithm == FotonAlgorithm.Pepita ? ForwardOnlyRule.Pepita : ForwardOnlyRule.Foton;
            // Plain SGD goes into the weights inside the local update (no update tensor, no optimizer pass); anything that
            // needs G_i itself (momentum, weight decay, Adam, the alignment probe) takes it through Update.
            var inPlace = probe is null && _o.Optimizer == OptimizerKind.Sgd && _o.Momentum == 0 && _o.WeightDecay == 0
                ? new FotonStep.InPlaceSgd(_lr, i => { if (project) ProjectLayer(i); })
                : null;
            logits = FotonStep.Run(net, x, targets, masks.Layer, _feedback!, _o.CeTemperature, divisor, Update, rule,
                storeActivations: !_o.RecomputeActivations, inPlace: inPlace, keep: masks);
        }

        using var k = new KeptScalars();
        double loss = nn.functional.cross_entropy(k.Of(_o.CeTemperature) * logits, y, reduction: nn.Reduction.Sum).ToDouble();
        if (!double.IsFinite(loss))
            throw Diverged($"the training loss is {loss.ToString(CultureInfo.InvariantCulture)}");
        long correct = logits.argmax(1).eq(y).sum().ToInt64();
        if (_o.Algorithm == FotonAlgorithm.Foton && _o.FeedbackRefreshInterval > 0 && StepCounter % _o.FeedbackRefreshInterval == 0)
        {
            var f = net.FTranspose().DetachFromDisposeScope();
            _feedback!.Dispose();
            _feedback = f;
        }
        return new BatchResult(loss, correct, b);
    }

    /// <summary>The dropout masks of step <paramref name="step"/> (the same masks every time they are asked for).</summary>
    internal DropoutMasks DrawMasks(long step, int batch) =>
        new(_o.Dropout, _seed, step, batch, _hiddenOffsets, Net.Weights[0].dtype, _device);

    private void ProjectLayer(int i)
    {
        var net = Net;
        {
            var w = net.Weights[i];
            if (_o.WarmStartProjection)
            {
                _bjorckIterations += Bjorck.ProjectWarm(w, _o.BjorckIterations, _o.OrthogonalityTolerance, out double bound);
                if (double.IsNaN(bound))
                    throw Diverged($"the weights of layer '{net.Names[i]}' are not finite");
            }
            else
            {
                using var p = Bjorck.Reference(w, _o.BjorckIterations, generator: _powerGenerator);
                w.copy_(p);
                _bjorckIterations += _o.BjorckIterations;
            }
            _projections++;
        }
    }

    private void RecordAlignment(int i, Tensor update, Tensor gradient)
    {
        string name = Net.Names[i];
        _cosines[$"cos[{name}]"] = Cosine(update, gradient);
        _cosines[$"ratio[{name}]"] = NormRatio(update, gradient);
    }

    /// <summary>‖a‖/‖b‖ in float64 (the scale of the forward-only update relative to the gradient).</summary>
    internal static double NormRatio(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        double na = a.to(ScalarType.Float64).norm().ToDouble(), nb = b.to(ScalarType.Float64).norm().ToDouble();
        return nb == 0 ? double.PositiveInfinity : na / nb;
    }

    internal static double Cosine(Tensor a, Tensor b)
    {
        // In float64: a float32 dot product over 10⁵ entries alone is off by ~1e-6.
        using var scope = torch.NewDisposeScope();
        a = a.to(ScalarType.Float64);
        b = b.to(ScalarType.Float64);
        double na = a.norm().ToDouble(), nb = b.norm().ToDouble();
        return na == 0 || nb == 0 ? 0 : (a * b).sum().ToDouble() / (na * nb);
    }

    private InvalidOperationException Diverged(string what)
    {
        string fix = _o.Algorithm switch
        {
            FotonAlgorithm.Foton when _o.ProjectionInterval > 1 =>
                $"Lower LearningRate (now {Fmt(_lr)}) or set ProjectionInterval to 1 (now {_o.ProjectionInterval})",
            FotonAlgorithm.Pepita =>
                $"Lower LearningRate (now {Fmt(_lr)}) or Momentum (now {Fmt(_o.Momentum)}), or PepitaFeedbackScale (now {Fmt(_o.PepitaFeedbackScale)})",
            _ => $"Lower LearningRate (now {Fmt(_lr)})",
        };
        return new InvalidOperationException(
            $"{_o.Algorithm} training diverged at epoch {_epoch}, step {_stepInEpoch} (step {StepCounter} overall): {what}. {fix}.");
    }

    private static string Fmt(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    public BatchResult EvaluateBatch(Tensor x, Tensor y)
    {
        using var noGrad = torch.no_grad();
        var net = Net;
        if (x.dtype != net.Weights[0].dtype)
            x = x.to(net.Weights[0].dtype);
        var (_, logits) = net.Forward(x, null);
        using var k = new KeptScalars();
        double loss = nn.functional.cross_entropy(k.Of(_o.CeTemperature) * logits!, y, reduction: nn.Reduction.Sum).ToDouble();
        long correct = logits!.argmax(1).eq(y).sum().ToInt64();
        return new BatchResult(loss, correct, (int)x.shape[0]);
    }

    public void SetLearningRate(double learningRate) => _lr = learningRate;

    public void BeginEpoch(int epoch)
    {
        _epoch = epoch;
        _stepInEpoch = 0;
        _projections = 0;
        _bjorckIterations = 0;
        _cosines.Clear();
    }

    public IReadOnlyDictionary<string, double> EpochDiagnostics()
    {
        var net = Net;
        var d = new Dictionary<string, double>();
        double ortho = 0;
        using (torch.NewDisposeScope())
        using (torch.no_grad())
        {
            for (int i = 0; i < net.Weights.Length; i++)
            {
                if (!net.Weights[i].isfinite().all().ToBoolean())
                    throw Diverged($"the weights of layer '{net.Names[i]}' are not finite at the end of the epoch");
                ortho = Math.Max(ortho, Bjorck.OrthogonalityError(net.Weights[i]));
            }
        }
        d["ortho_err"] = ortho;
        if (_projections > 0)
            d["bjorck_iterations"] = (double)_bjorckIterations / _projections;
        foreach (var (name, c) in _cosines)
            d[name] = c;
        return d;
    }

    public void Snapshot()
    {
        DisposeSnapshot();
        var all = Net.Weights.Append(_feedback).Where(t => t is not null).Select(t => t!.detach().clone().DetachFromDisposeScope());
        _snapshot = [.. all];
    }

    public void RestoreSnapshot()
    {
        if (_snapshot is null)
            return;
        using var noGrad = torch.no_grad();
        var weights = Net.Weights;
        for (int i = 0; i < weights.Length; i++)
            weights[i].copy_(_snapshot[i]);
        if (_feedback is not null)
            _feedback.copy_(_snapshot[^1]);
    }

    /// <summary>Hands the trained network to the caller (the step no longer owns it).</summary>
    public OrthogonalMlp DetachNetwork()
    {
        var n = Net;
        _net = null;
        return n;
    }

    private void DisposeSnapshot()
    {
        foreach (var t in _snapshot ?? [])
            t.Dispose();
        _snapshot = null;
    }

    public void Dispose()
    {
        DisposeSnapshot();
        _optimizer.Dispose();
        _feedback?.Dispose();
        _powerGenerator.Dispose();
        _net?.Dispose();
    }
}
