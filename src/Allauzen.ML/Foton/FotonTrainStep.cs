using System.Globalization;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// The <see cref="ITrainStep"/> of the FOTON trainer, for the three algorithms on one network: the
/// per-layer update G comes from <see cref="FotonStep"/>, <see cref="PepitaStep"/> or
/// <see cref="BackpropGradient"/>; the rest is shared — dropout masks drawn once per step from their own
/// generator and used by every pass, the in-place optimizer, the Björck projection every
/// <see cref="FotonOptions.OrthoRate"/> steps, the refresh of Fᵀ every <see cref="FotonOptions.FRefreshRate"/>
/// steps, per-step divergence checks and the per-layer alignment diagnostics. Nothing but the backprop
/// path builds an autograd graph.
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
    private readonly Scalar _keepScale;
    // Cumulative hidden widths (units before hidden layer i), for the per-step keep-mask buffer.
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
        _keepScale = (1 / (1 - options.Dropout)).ToScalar(); // a field: kept alive during the native calls
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
                _feedback = PepitaStep.Feedback(_classes, net.Architecture.InputSize, options.PepitaFeedbackScale, g, w0.dtype, w0.device);
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

    internal static ulong DeriveSeed(int seed, ulong stream)
    {
        ulong z = (ulong)(uint)seed + stream * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

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
        var masks = _o.Algorithm == FotonAlgorithm.Foton && !(_o.AlignmentDiagnostics && _stepInEpoch == 1)
            ? null : SampleMasks(b);

        Tensor[] g;
        Tensor logits;
        bool applied = false;
        // The reference divides the forward-only updates by the configured batch size, also on an epoch's last, partial batch.
        double divisor = _o.ScaleByConfiguredBatchSize ? Math.Max(b, _o.BatchSize) : b;
        switch (_o.Algorithm)
        {
            case FotonAlgorithm.Backprop:
                (g, logits) = BackpropGradient.Compute(net, x, y, masks, _o.CeTemperature);
                break;
            case FotonAlgorithm.Foton:
                var t1 = nn.functional.one_hot(y, _classes).to(dtype);
                // Each layer's keep mask is drawn once per step, as bytes, into one buffer for all layers: one allocation
                // rather than one small heap block per layer, which would fragment the heap between steps.
                var keep = new Tensor?[net.OutputIndex];
                Tensor? keepAll = null;
                long stepNumber = StepCounter;
                Tensor? LayerMask(int i)
                {
                    if (_o.Dropout == 0)
                        return null;
                    if (keep[i] is null)
                    {
                        keepAll ??= torch.empty([b * _hiddenOffsets[^1]], ScalarType.Bool, x.device).DetachFromDisposeScope();
                        long width = _hiddenOffsets[i + 1] - _hiddenOffsets[i];
                        using var drawn = KeepMask(stepNumber, i, b);
                        var view = keepAll.narrow(0, b * _hiddenOffsets[i], b * width).view(b, width);
                        view.copy_(drawn);
                        keep[i] = view.DetachFromDisposeScope();
                    }
                    return keep[i]!.to(dtype).mul_(_keepScale);
                }
                bool probe = _o.AlignmentDiagnostics && _stepInEpoch == 1;
                bool projectNow = StepCounter % _o.OrthoRate == 0;
                Action<int, Tensor>? apply = null;
                if (!probe)
                {
                    // Fused: each layer is updated (and projected) as soon as its G_i is formed.
                    _optimizer.BeginStep();
                    apply = (i, gi) =>
                    {
                        _optimizer.StepLayer(i, net.Weights.Length, net.Weights[i], gi, _lr);
                        if (projectNow)
                            ProjectLayer(i);
                    };
                }
                (g, logits) = FotonStep.ComputeFused(net, x, t1, LayerMask, _feedback!, _o.CeTemperature, apply: apply, divisor: divisor,
                    storeActivations: !_o.RecomputeActivations);
                foreach (var k in keep)
                    k?.Dispose();
                keepAll?.Dispose();
                if (probe)
                    RecordAlignment(g, BackpropGradient.Compute(net, x, y, masks, _o.CeTemperature).Gradients);
                else
                    applied = true;
                break;
            default:
                var t = nn.functional.one_hot(y, _classes).to(dtype);
                var u = PepitaStep.Compute(net, x, t, masks, _feedback!, _o.CeTemperature, divisor);
                (g, logits) = (u.G, u.Y);
                if (_o.AlignmentDiagnostics && _stepInEpoch == 1)
                    RecordAlignment(g, BackpropGradient.Compute(net, x, y, masks, _o.CeTemperature).Gradients);
                break;
        }

        double loss = nn.functional.cross_entropy(_o.CeTemperature * logits, y, reduction: nn.Reduction.Sum).ToDouble();
        if (!double.IsFinite(loss))
            throw Diverged($"the training loss is {loss.ToString(CultureInfo.InvariantCulture)}");
        long correct = logits.argmax(1).eq(y).sum().ToInt64();

        if (!applied)
        {
            _optimizer.Step(net.Weights, g, _lr);
            if (Projects && StepCounter % _o.OrthoRate == 0)
                Project();
        }
        if (_o.Algorithm == FotonAlgorithm.Foton && _o.FRefreshRate > 0 && StepCounter % _o.FRefreshRate == 0)
        {
            var f = net.FTranspose().DetachFromDisposeScope();
            _feedback!.Dispose();
            _feedback = f;
        }
        return new BatchResult(loss, correct, b);
    }

    /// <summary>Scaled dropout masks (0 or 1/(1−p)) of the current step, one per hidden layer, shared by every pass.</summary>
    internal Tensor?[]? SampleMasks(int batch)
    {
        if (_o.Dropout == 0)
            return null;
        var masks = new Tensor?[Net.OutputIndex];
        for (int i = 0; i < masks.Length; i++)
            masks[i] = MaskFor(StepCounter, i, batch);
        return masks;
    }

    /// <summary>The dropout mask of hidden layer <paramref name="layer"/> at step <paramref name="step"/>: the same tensor every time it is asked for.</summary>
    internal Tensor? MaskFor(long step, int layer, int batch)
    {
        double p = _o.Dropout;
        if (p == 0)
            return null;
        var dtype = Net.Weights[0].dtype;
        using var keep = KeepMask(step, layer, batch);
        return keep.to(dtype).mul_(1 / (1 - p));
    }

    /// <summary>The boolean keep mask behind <see cref="MaskFor"/>, from its own (step, layer) seed.</summary>
    private Tensor KeepMask(long step, int layer, int batch)
    {
        var net = Net;
        var w0 = net.Weights[0];
        long width = net.Architecture.FlatWidths()[layer + 1];
        using var g = new Generator(DeriveSeed(_seed, ((ulong)step << 16) + (ulong)layer + 0x10000UL), _device);
        using var u = torch.rand([batch, width], dtype: w0.dtype, device: w0.device, generator: g);
        return u.ge(_o.Dropout);
    }

    private void Project()
    {
        for (int i = 0; i < Net.Weights.Length; i++)
            ProjectLayer(i);
    }

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

    private void RecordAlignment(Tensor[] update, Tensor[] gradient)
    {
        var names = Net.Names;
        for (int i = 0; i < names.Length; i++)
        {
            _cosines[$"cos[{names[i]}]"] = Cosine(update[i], gradient[i]);
            _cosines[$"ratio[{names[i]}]"] = NormRatio(update[i], gradient[i]);
        }
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
            FotonAlgorithm.Foton when _o.OrthoRate > 1 =>
                $"Lower LearningRate (now {Fmt(_lr)}) or set OrthoRate to 1 (now {_o.OrthoRate})",
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
        double loss = nn.functional.cross_entropy(_o.CeTemperature * logits!, y, reduction: nn.Reduction.Sum).ToDouble();
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
        _keepScale.Dispose();
        _net?.Dispose();
    }
}
