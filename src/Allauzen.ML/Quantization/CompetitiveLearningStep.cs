using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Quantization;

/// <summary>
/// One step of conditional competitive learning (CCLVQ). The batch holds the features and the standardised label side by
/// side ([B, n_x + d]). With the distances D_i = ‖y − f_i(x)‖², the winner is i* = argmin_i D_i; the loss is
/// D_{i*} (only the winning head gets the gradient: the empirical distortion Δ_n) plus the cross-entropy of the logits
/// against i* (the cell weights p(i|x)). During a warm start the loss is ‖y − mean_i f_i(x)‖² instead. Dead heads (won
/// fewer than a threshold of the rows last epoch) are pulled toward the labels of the most populated cell.
/// The reported loss is the distortion in label units; "accuracy" is how often argmax p(·|x) is the winner.
/// The learning rate, snapshots for early stopping, the hand-over of the network and disposal are
/// <see cref="BackpropStep{TNet}"/>'s; this class re-implements the batch steps and the epoch start of <see cref="ITrainStep"/>.
/// </summary>
internal sealed class CompetitiveLearningStep : BackpropStep<QuantizerNetwork>, ITrainStep
{
    private readonly optim.Optimizer _optimizer;
    private readonly int _featureCount;
    private readonly int _labelSize;
    private readonly double _labelScale2;
    private readonly Tensor? _dimensionWeights;
    private readonly Tensor _labelMean;
    private readonly Tensor _labelInverseScale;
    private readonly int _warmStartEpochs;
    private readonly double _deadThreshold;
    private readonly bool _reseed;
    private readonly bool _plainMse;
    private readonly bool _onCpu;
    private readonly long[] _wins;
    private Tensor? _deadMask;
    private Tensor? _winCounts;
    private long _largest;
    private bool _warm;

    /// <param name="net">The network (owned by the step until <see cref="BackpropStep{TNet}.DetachNetwork"/>).</param>
    /// <param name="options">The trainer's options (optimizer, warm start, dead heads).</param>
    /// <param name="featureCount">n_x: the first columns of a batch.</param>
    /// <param name="labelScale">σ_k, the label's standard deviation per dimension: distances are Σ_k σ_k² (ỹ_k − f̃_ik)² in
    /// label units, computed as mean(σ²) · Σ_k w_k (ỹ_k − f̃_ik)² with w_k = σ_k² / mean(σ²).</param>
    /// <param name="labelMean">μ_k: the batches hold raw labels, standardised here as ỹ = (y − μ) / σ.</param>
    public CompetitiveLearningStep(QuantizerNetwork net, ConditionalQuantizationOptions options, int featureCount, float[] labelMean, float[] labelScale)
        : this(net, TrainingLoop.CreateOptimizer(net.parameters(), options), options, featureCount, labelMean, labelScale)
    {
    }

    private CompetitiveLearningStep(QuantizerNetwork net, optim.Optimizer optimizer, ConditionalQuantizationOptions options, int featureCount,
        float[] labelMean, float[] labelScale)
        : base(net, optimizer, (_, _) => throw new NotSupportedException("The competitive step computes its own loss."))
    {
        _optimizer = optimizer;
        _featureCount = featureCount;
        _labelSize = net.Architecture.LabelSize;
        // The constants live on the network's device once, not moved per batch, and outlive any caller's dispose scope.
        var device = net.Heads.weight!.device;
        _onCpu = device.type == DeviceType.CPU;
        _labelMean = torch.tensor(labelMean, [1, labelMean.Length], device: device).DetachFromDisposeScope();
        _labelInverseScale = torch.tensor(labelScale.Select(v => 1f / v).ToArray(), [1, labelScale.Length], device: device).DetachFromDisposeScope();
        _labelScale2 = labelScale.Average(s => (double)s * s);
        _dimensionWeights = labelScale.Length == 1 ? null
            : torch.tensor(labelScale.Select(s => (float)(s * (double)s / _labelScale2)).ToArray(), [1, 1, labelScale.Length], device: device).DetachFromDisposeScope();
        _warmStartEpochs = options.WarmStartFromMean ? options.WarmStartEpochs : 0;
        _deadThreshold = options.DeadHeadThreshold;
        _reseed = options.ReinitializeDeadHeads && net.Architecture.Points > 1;
        _wins = new long[net.Architecture.Points];
        _plainMse = options.PlainMseBaseline;
    }

    public new BatchResult TrainBatch(Tensor xy, Tensor y) => Run(xy, train: true);

    public new BatchResult EvaluateBatch(Tensor xy, Tensor y) => Run(xy, train: false);

    private BatchResult Run(Tensor xy, bool train)
    {
        var net = Network;
        // Train mode is set once per epoch (BeginEpoch); evaluation runs after the epoch's training batches.
        if (train)
            _optimizer.zero_grad();
        else
            net.eval();
        int n = _wins.Length, d = _labelSize, count = (int)xy.shape[0];
        var x = xy.narrow(1, 0, _featureCount);
        var y = (xy.narrow(1, _featureCount, d) - _labelMean) * _labelInverseScale; // ỹ, [B, d]
        if (_plainMse || n == 1 || (train && _warm))
            return AutogradBatch(net, x, y, train, count);

        // Competitive learning: autograd stops at the output layer, whose gradient is written out (Competitive), so the
        // argmin, the distances, the sorted parameterisation and the cross-entropy record no graph.
        Tensor heads;
        using (train ? null : torch.no_grad())
            heads = net.HeadsOutput(x);
        var (distortion, win, gradient) = Competitive(net, heads, y, _dimensionWeights, train, train ? _deadMask : null, _largest);
        if (train)
        {
            heads.backward([gradient!]);
            _optimizer.step();
        }
        return Result(heads.narrow(1, n * d, n), distortion, win, train, count);
    }

    /// <summary>
    /// The winner i* = argmin_i D_i of each row, the batch distortion mean_r D_{r,i*} (standardised units), and, when
    /// <paramref name="gradient"/> is set, the gradient with respect to the output layer's values <paramref name="heads"/>
    /// ([B, n·d + n]) of the loss mean_r D_{r,i*} + cross-entropy(logits, i*) (+ the dead-head pull): on the points
    /// ∂/∂f_ik = 2 w_k (f_ik − ỹ_k) (1[i = i*] / B + 1[i dead, r in the largest cell] / |largest cell ∩ batch|), on the
    /// logits (softmax − onehot(i*)) / B, and through the sorted parameterisation (see <see cref="QuantizerNetwork.SortPointsBackward"/>).
    /// Nothing here records an autograd graph; the test compares it with autograd's gradient of the same loss.
    /// </summary>
    /// <param name="net">For the architecture and the sorted parameterisation.</param>
    /// <param name="heads">The output layer's values: raw points, then logits.</param>
    /// <param name="y">ỹ, the standardised label, [B, d].</param>
    /// <param name="dimensionWeights">w_k, [1, 1, d], or null (all 1).</param>
    /// <param name="gradient">Compute the gradient.</param>
    /// <param name="deadMask">1 for the dead heads, [1, n], or null when none is being re-seeded.</param>
    /// <param name="largest">The most populated cell (read with <paramref name="deadMask"/>).</param>
    internal static (Tensor Distortion, Tensor Winner, Tensor? Gradient) Competitive(QuantizerNetwork net, Tensor heads, Tensor y,
        Tensor? dimensionWeights, bool gradient, Tensor? deadMask, long largest)
    {
        using var noGrad = torch.no_grad();
        int n = net.Architecture.Points, d = net.Architecture.LabelSize;
        long b = heads.shape[0];
        var raw = heads.narrow(1, 0, n * d);
        var f = net.SortPoints(raw);                                               // [B, n·d], row-major n × d
        Tensor diff, dist;                                                         // f − ỹ and D_i = ‖ỹ − f_i(x)‖², [B, n]
        if (d == 1)
        {
            diff = f - y;                                                          // [B, n] against [B, 1]: no reduction needed
            dist = diff.square();
        }
        else
        {
            diff = f.view(-1, n, d) - y.unsqueeze(1);
            var sq = diff.square();
            dist = (dimensionWeights is null ? sq : sq * dimensionWeights).sum(2);
        }
        var (dmin, win) = dist.min(1);
        var distortion = dmin.mean();
        if (!gradient)
            return (distortion, win, null);
        using var kept = new KeptScalars();
        var onehot = nn.functional.one_hot(win, n).to_type(ScalarType.Float32);   // [B, n]
        var rowWeight = onehot * kept.Of(2.0 / b);                                 // the distortion: the winner only
        if (deadMask is not null)
        {
            // The pull mean_{r in the largest cell} Σ_{i dead} D_ri (the cell counted in this batch, at least 1).
            var inLargest = win.eq(kept.Of(largest)).to_type(ScalarType.Float32).unsqueeze(1);
            rowWeight = rowWeight.add(inLargest * deadMask * kept.Of(2) / inLargest.sum().clamp_min(kept.Of(1)), KeptScalars.One);
        }
        var gradPoints = d == 1 ? diff * rowWeight
            : (dimensionWeights is null ? diff * rowWeight.unsqueeze(2) : diff * rowWeight.unsqueeze(2) * dimensionWeights).reshape(-1, n * d);
        var gradLogits = (nn.functional.softmax(heads.narrow(1, n * d, n), 1) - onehot) / kept.Of(b);
        return (distortion, win, torch.cat([net.SortPointsBackward(raw, gradPoints), gradLogits], 1));
    }

    /// <summary>
    /// The steps autograd differentiates: one point (plain MSE, the benchmarks' baseline) and the warm start
    /// (‖ỹ − mean_i f_i‖², the regression of the mean).
    /// </summary>
    private BatchResult AutogradBatch(QuantizerNetwork net, Tensor x, Tensor y, bool train, int count)
    {
        using var noGrad = train ? null : torch.no_grad();
        int n = _wins.Length, d = _labelSize;
        var (f, logits) = net.ForwardFlat(x);                                      // [B, n·d] row-major n × d, [B, n]
        Tensor dist;                                                                // D_i = ‖ỹ − f_i(x)‖², [B, n]
        if (d == 1)
        {
            dist = (y - f).square();
        }
        else
        {
            var sq = (y.unsqueeze(1) - f.view(-1, n, d)).square();
            dist = (_dimensionWeights is null ? sq : sq * _dimensionWeights).sum(2);
        }
        if (_plainMse || n == 1)
            return MseBatch(dist.mean(), train, count);                           // one point: the argmin and the classifier are inert
        var loss = (y - f.view(-1, n, d).mean([1L])).square().sum(1).mean();      // warm start: n = 1 regression of the mean
        loss.backward();
        _optimizer.step();
        using (torch.no_grad())
        {
            var (dmin, win) = dist.min(1);
            return Result(logits, dmin.mean(), win, train, count);
        }
    }

    /// <summary>Counts the wins (training, for the dead-head test) and reads the distortion and the classifier's hits.</summary>
    private BatchResult Result(Tensor logits, Tensor distortion, Tensor win, bool train, int count)
    {
        using var noGrad = torch.no_grad();
        if (train && _reseed)
        {
            // Win counts stay on the device; they are read once per epoch.
            _winCounts ??= torch.zeros(_wins.Length, ScalarType.Int64, device: win.device).DetachFromDisposeScope();
            _winCounts.add_(win.bincount(null, _wins.Length), KeptScalars.One);
        }
        var hits = logits.argmax(1).eq(win).sum();
        if (_onCpu)
            return new BatchResult(distortion.item<float>() * _labelScale2 * count, hits.item<long>(), count);
        // On a GPU one transfer per batch, not two synchronisations.
        var v = torch.stack([distortion, hits.to_type(ScalarType.Float32)]).cpu().data<float>();
        return new BatchResult(v[0] * _labelScale2 * count, (long)v[1], count);
    }

    /// <summary>The baseline: the same network with one point, trained with the mean squared error alone.</summary>
    private BatchResult MseBatch(Tensor mse, bool train, int count)
    {
        if (train)
        {
            mse.backward();
            _optimizer.step();
        }
        return new BatchResult(mse.item<float>() * _labelScale2 * count, _plainMse ? 0 : count, count);
    }

    public new void BeginEpoch(int epoch)
    {
        Network.train();
        _warm = epoch <= _warmStartEpochs;
        if (_winCounts is not null)
        {
            _winCounts.cpu().data<long>().CopyTo(_wins, 0);
            _winCounts.zero_();
        }
        long total = _wins.Sum();
        _deadMask?.Dispose();
        _deadMask = null;
        DeadHeads = 0;
        if (_reseed && epoch > 1 && !_warm && total > 0)
        {
            _largest = Array.IndexOf(_wins, _wins.Max());
            var dead = _wins.Select(w => w < _deadThreshold * total ? 1f : 0f).ToArray();
            DeadHeads = (int)dead.Sum();
            if (DeadHeads > 0)
                _deadMask = torch.tensor(dead, [1, dead.Length], device: Network.Heads.weight!.device).DetachFromDisposeScope();
        }
        Array.Clear(_wins);
    }

    /// <summary>Heads re-seeded during the current epoch.</summary>
    public int DeadHeads { get; private set; }

    public override IReadOnlyDictionary<string, double> EpochDiagnostics() => new Dictionary<string, double>
    {
        ["dead heads"] = DeadHeads,
    };

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _dimensionWeights?.Dispose();
            _winCounts?.Dispose();
            _deadMask?.Dispose();
            _labelMean.Dispose();
            _labelInverseScale.Dispose();
        }
        base.Dispose(disposing);
    }
}
