using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Mlp;

/// <summary>
/// Trains a multilayer perceptron classifier with backprop (cross-entropy on softmax outputs).
/// Create it with <c>ml.MulticlassClassification.Trainers.Mlp(options)</c>.
/// </summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// | Input columns | |
/// | -- | -- |
/// | `Label` | key type (apply `MapValueToKey`) |
/// | `Features` | `Vector<Single, n>` of known size; normalise it (e.g. `NormalizeMinMax`) |
///
/// | Output columns | |
/// | -- | -- |
/// | `Score` | `Vector<Single, k>`: class probabilities, slot names = class names |
/// | `PredictedLabel` | `Key<UInt32, k>` with the label's key values |
///
/// | Trainer characteristics | |
/// | -- | -- |
/// | Machine learning task | Multiclass classification |
/// | Is normalization required? | Yes |
/// | Is caching required? | No (streams or caches itself, see `DataCaching`) |
/// | Required NuGet in addition to Allauzen.ML | TorchSharp-cpu (or TorchSharp-cuda-linux) in the application |
/// | Exportable to ONNX | Yes (`ml.Model.ExportToOnnx`) |
/// ]]></format>
/// </remarks>
public sealed class MlpTrainer : TorchClassifierTrainerBase<MlpTransformer, MlpOptions>
{
    internal MlpTrainer(IHostEnvironment env, MlpOptions options)
        : base(env, "Allauzen.Mlp", options)
    {
    }

    private protected override ITrainStep CreateStep(FitContext context)
    {
        var o = Options;
        var arch = new MlpArchitecture(context.FeatureCount, [.. o.HiddenSizes], context.NumberOfClasses, o.Activation, o.Dropout);
        var net = new MlpNetwork(arch);
        net.to(context.Device);
        return new BackpropStep(net, TrainingLoop.CreateOptimizer(net.parameters(), o), o.LipschitzPenalty);
    }

    private protected override MlpTransformer CreateTransformer(ITrainStep step, FitContext context)
    {
        var s = (BackpropStep)step;
        var net = s.DetachNetwork();
        return new MlpTransformer(Env, net, Options.FeatureColumnName, context.Classes,
            Options.ScoreColumnName, Options.PredictedLabelColumnName);
    }

    /// <summary>Backprop with cross-entropy: the step of the Mlp trainer.</summary>
    private sealed class BackpropStep(MlpNetwork net, optim.Optimizer optimizer, double lipschitzPenalty) : ITrainStep, IDisposable
    {
        private MlpNetwork? _net = net;
        private Dictionary<string, Tensor>? _snapshot;

        private MlpNetwork Net => _net ?? throw new ObjectDisposedException(nameof(BackpropStep));

        public BatchResult TrainBatch(Tensor x, Tensor y)
        {
            Net.train();
            optimizer.zero_grad();
            var logits = Net.forward(x);
            var loss = nn.functional.cross_entropy(logits, y);
            var objective = loss;
            if (lipschitzPenalty > 0)
            {
                // λ·Σ σ̄(W_l): Gram-iteration upper bounds, differentiable (the detached scale keeps the exact gradient).
                foreach (var (_, layer) in Net.LinearLayers())
                    objective = objective + lipschitzPenalty * Lipschitz.GramIteration.Dense(layer.weight!, 6, detachScale: true);
            }
            objective.backward();
            optimizer.step();
            long correct;
            using (torch.no_grad())
                correct = logits.argmax(1).eq(y).sum().item<long>();
            return new BatchResult(loss.item<float>() * (double)x.shape[0], correct, (int)x.shape[0]);
        }

        public BatchResult EvaluateBatch(Tensor x, Tensor y)
        {
            Net.eval();
            using var _ = torch.no_grad();
            var logits = Net.forward(x);
            var loss = nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
            long correct = logits.argmax(1).eq(y).sum().item<long>();
            return new BatchResult(loss, correct, (int)x.shape[0]);
        }

        public void SetLearningRate(double learningRate) => TrainingLoop.SetLearningRate(optimizer, learningRate);

        public void BeginEpoch(int epoch) => Net.train();

        public IReadOnlyDictionary<string, double> EpochDiagnostics() => new Dictionary<string, double>();

        public void Snapshot()
        {
            DisposeSnapshot();
            _snapshot = Net.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        }

        public void RestoreSnapshot()
        {
            if (_snapshot is null)
                return;
            using var _ = torch.no_grad();
            foreach (var (name, t) in Net.state_dict())
                t.copy_(_snapshot[name]);
        }

        /// <summary>Hands the trained network to the transformer (the step no longer owns it).</summary>
        public MlpNetwork DetachNetwork()
        {
            var n = Net;
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
            DisposeSnapshot();
            optimizer.Dispose();
            _net?.Dispose();
        }
    }
}
