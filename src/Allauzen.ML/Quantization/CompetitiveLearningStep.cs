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
    private readonly long[] _wins;
    private long[] _dead = [];
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
        _labelMean = torch.tensor(labelMean, [1, labelMean.Length]);
        _labelInverseScale = torch.tensor(labelScale.Select(v => 1f / v).ToArray(), [1, labelScale.Length]);
        _labelScale2 = labelScale.Average(s => (double)s * s);
        _dimensionWeights = labelScale.Length == 1 ? null
            : torch.tensor(labelScale.Select(s => (float)(s * (double)s / _labelScale2)).ToArray(), [1, 1, labelScale.Length]);
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
        if (train)
        {
            net.train();
            _optimizer.zero_grad();
        }
        else
        {
            net.eval();
        }
        using var noGrad = train ? null : torch.no_grad();
        var x = xy.narrow(1, 0, _featureCount);
        var y = ((xy.narrow(1, _featureCount, _labelSize) - _labelMean.to(xy.device)) * _labelInverseScale.to(xy.device)).unsqueeze(1); // ỹ, [B, 1, d]
        var (f, logits) = net.Forward(x);                                         // [B, n, d], [B, n]
        var sq = (y - f).square();
        var dist = (_dimensionWeights is null ? sq : sq * _dimensionWeights.to(sq.device)).sum(2); // D_i = ‖y − f_i(x)‖², [B, n]
        int count = (int)xy.shape[0];
        if (_plainMse || _wins.Length == 1)
            return MseBatch(dist.mean(), train, count);                           // one point: the argmin and the classifier are inert
        var (dmin, win) = dist.min(1);                                            // D_{i*} and i* = argmin_i D_i
        var distortion = dmin.mean();                                             // Δ_n on the batch: gradient to the winner only
        Tensor loss;
        if (train && _warm)
        {
            loss = (y.squeeze(1) - f.mean([1L])).square().sum(1).mean();         // n = 1 regression of the mean
        }
        else
        {
            loss = distortion + nn.functional.cross_entropy(logits, win);
            if (train && _dead.Length > 0)
            {
                // Re-seed dead heads near the most populated cell: pull them toward that cell's labels.
                var inLargest = win.eq(_largest).to_type(ScalarType.Float32);
                using var deadIdx = torch.tensor(_dead, device: xy.device);
                var pull = dist.index_select(1, deadIdx).sum(1);
                loss = loss + (pull * inLargest).sum() / inLargest.sum().clamp_min(1);
            }
        }
        if (train)
        {
            loss.backward();
            _optimizer.step();
        }
        using (torch.no_grad())
        {
            if (train)
            {
                // Win counts stay on the device (no synchronisation); they are read once per epoch.
                _winCounts ??= torch.zeros(_wins.Length, ScalarType.Int64, device: xy.device).DetachFromDisposeScope();
                _winCounts.add_(win.bincount(null, _wins.Length));
            }
            // One transfer per batch: the distortion and the classifier's hits.
            var stats = torch.stack([distortion.detach(), logits.argmax(1).eq(win).sum().to_type(ScalarType.Float32)]).cpu();
            var v = stats.data<float>();
            return new BatchResult(v[0] * _labelScale2 * count, (long)v[1], count);
        }
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
        if (_reseed && epoch > 1 && !_warm && total > 0)
        {
            _largest = Array.IndexOf(_wins, _wins.Max());
            _dead = Enumerable.Range(0, _wins.Length).Where(i => _wins[i] < _deadThreshold * total).Select(i => (long)i).ToArray();
        }
        else
        {
            _dead = [];
        }
        DeadHeads = _dead.Length;
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
            _labelMean.Dispose();
            _labelInverseScale.Dispose();
        }
        base.Dispose(disposing);
    }
}
