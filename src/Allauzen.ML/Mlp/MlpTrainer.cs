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
        double lambda = o.LipschitzPenalty;
        // λ·Σ σ̄(W_l): Gram-iteration upper bounds, differentiable (the detached scale keeps the exact gradient).
        Func<MlpNetwork, Tensor>? penalty = lambda > 0 ? Penalty : null;
        Tensor Penalty(MlpNetwork n)
        {
            using var kept = new KeptScalars();
            var weight = kept.Of(lambda);
            return n.LinearLayers().Select(l => weight * Lipschitz.GramIteration.Dense(l.Layer.weight!, 6, detachScale: true)).Aggregate((a, b) => a.add(b, KeptScalars.One));
        }
        return new BackpropStep<MlpNetwork>(net, TrainingLoop.CreateOptimizer(net.parameters(), o),
            (logits, y) => nn.functional.cross_entropy(logits, y), penalty);
    }

    private protected override MlpTransformer CreateTransformer(ITrainStep step, FitContext context)
    {
        var net = ((BackpropStep<MlpNetwork>)step).DetachNetwork();
        return new MlpTransformer(Env, net, Options.FeatureColumnName, context.Classes,
            Options.ScoreColumnName, Options.PredictedLabelColumnName);
    }
}
