using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Torch;

/// <summary>
/// The backprop <see cref="ITrainStep"/> shared by trainers whose network returns logits: a loss
/// (mean over the batch) plus an optional differentiable penalty on the network, one optimizer step
/// per batch, and the snapshot/restore early stopping needs. Components add their own state by
/// deriving from it.
/// </summary>
/// <typeparam name="TNet">The network type.</typeparam>
internal class BackpropStep<TNet> : ITrainStep, IDisposable
    where TNet : nn.Module<Tensor, Tensor>
{
    private readonly optim.Optimizer _optimizer;
    private readonly Func<Tensor, Tensor, Tensor> _loss;
    private readonly Func<TNet, Tensor>? _penalty;
    private TNet? _net;
    private Dictionary<string, Tensor>? _snapshot;

    /// <param name="net">The network (owned by the step until <see cref="DetachNetwork"/>).</param>
    /// <param name="optimizer">The optimizer over the network's parameters (owned by the step).</param>
    /// <param name="loss">Mean loss of logits against class indices.</param>
    /// <param name="penalty">Added to the loss during training only (e.g. a Lipschitz penalty), or null.</param>
    public BackpropStep(TNet net, optim.Optimizer optimizer, Func<Tensor, Tensor, Tensor> loss, Func<TNet, Tensor>? penalty = null)
    {
        _net = net;
        _optimizer = optimizer;
        _loss = loss;
        _penalty = penalty;
    }

    /// <summary>The network being trained.</summary>
    public TNet Network => _net ?? throw new ObjectDisposedException(GetType().Name);

    public BatchResult TrainBatch(Tensor x, Tensor y)
    {
        var net = Network;
        net.train();
        _optimizer.zero_grad();
        var logits = net.forward(x);
        var loss = _loss(logits, y);
        var objective = _penalty is null ? loss : loss.add(_penalty(net), KeptScalars.One);
        objective.backward();
        _optimizer.step();
        long correct;
        using (torch.no_grad())
            correct = logits.argmax(1).eq(y).sum().item<long>();
        return new BatchResult(loss.item<float>() * (double)x.shape[0], correct, (int)x.shape[0]);
    }

    public BatchResult EvaluateBatch(Tensor x, Tensor y)
    {
        var net = Network;
        net.eval();
        using var _ = torch.no_grad();
        var logits = net.forward(x);
        double loss = _loss(logits, y).item<float>() * (double)x.shape[0];
        long correct = logits.argmax(1).eq(y).sum().item<long>();
        return new BatchResult(loss, correct, (int)x.shape[0]);
    }

    public void SetLearningRate(double learningRate) => TrainingLoop.SetLearningRate(_optimizer, learningRate);

    public void BeginEpoch(int epoch) => Network.train();

    public virtual IReadOnlyDictionary<string, double> EpochDiagnostics() => new Dictionary<string, double>();

    public void Snapshot()
    {
        DisposeSnapshot();
        _snapshot = Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
    }

    public void RestoreSnapshot()
    {
        if (_snapshot is null)
            return;
        using var _ = torch.no_grad();
        foreach (var (name, t) in Network.state_dict())
            t.copy_(_snapshot[name]);
    }

    /// <summary>Hands the trained network (in eval mode) to the caller; the step no longer owns it.</summary>
    public TNet DetachNetwork()
    {
        var n = Network;
        _net = null;
        n.eval();
        return n;
    }

    private void DisposeSnapshot()
    {
        if (_snapshot is null)
            return;
        foreach (var t in _snapshot.Values)
            t.Dispose();
        _snapshot = null;
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (!disposing)
            return;
        DisposeSnapshot();
        _optimizer.Dispose();
        _net?.Dispose();
        _net = null;
    }
}
