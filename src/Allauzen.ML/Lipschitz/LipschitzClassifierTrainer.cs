using Allauzen.ML.Core;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Lipschitz;

/// <summary>
/// Trains a certifiably robust classifier: a network that is 1-Lipschitz by construction (SLL, CPL, AOL or spectral
/// rescaling layers, dense or convolutional), with a margin loss. Create it with
/// <c>ml.MulticlassClassification.Trainers.LipschitzClassifier(options)</c>.
/// </summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// | Input columns | |
/// | -- | -- |
/// | `Label` | key type (apply `MapValueToKey`) |
/// | `Features` | `Vector<Single, n>` of known size (for convolutions: channel-major C×H×W); the certified radius is in these units |
///
/// | Output columns | |
/// | -- | -- |
/// | `Score` | `Vector<Single, k>`: class probabilities (softmax of the logits) |
/// | `PredictedLabel` | `Key<UInt32, k>` |
/// | `CertifiedRadius` | `Single`: the L2 radius within which the prediction cannot change; by default (top1 − top2 logit)/(√2·L), see `LipschitzClassifierOptions.RadiusRule` |
///
/// | Trainer characteristics | |
/// | -- | -- |
/// | Machine learning task | Multiclass classification (certified) |
/// | Is normalization required? | Scale features to a known range (e.g. [0, 1]); the radius is in those units |
/// | Exportable to ONNX | Yes: plain Gemm/Conv/Relu layers with the constraint folded into the weights |
/// ]]></format>
/// </remarks>
public sealed class LipschitzClassifierTrainer : TorchClassifierTrainerBase<LipschitzClassifierTransformer, LipschitzClassifierOptions>
{
    /// <summary>Name of the certified radius column.</summary>
    public const string CertifiedRadiusColumnName = AllauzenColumnNames.CertifiedRadius;

    internal LipschitzClassifierTrainer(IHostEnvironment env, LipschitzClassifierOptions options)
        : base(env, "Allauzen.LipschitzClassifier", options)
    {
    }

    private protected override IReadOnlyList<string> ExtraOutputColumnNames => [CertifiedRadiusColumnName];

    private protected override ITrainStep CreateStep(FitContext context)
    {
        var o = Options;
        if (o.Convolutional && (long)o.ImageChannels * o.ImageHeight * o.ImageWidth != context.FeatureCount)
            throw new ArgumentOutOfRangeException(nameof(o.ImageHeight),
                $"ImageChannels × ImageHeight × ImageWidth = {o.ImageChannels} × {o.ImageHeight} × {o.ImageWidth} = {(long)o.ImageChannels * o.ImageHeight * o.ImageWidth}, " +
                $"but feature column '{o.FeatureColumnName}' has {context.FeatureCount} values.");
        var stats = InputStatistics.Compute(context.TrainData!, context.FeatureCount, o.CancellationToken);
        float[] mean = o.InputNormalization == LipschitzInputNormalization.None ? new float[context.FeatureCount] : stats.Mean;
        double scale = o.InputNormalization == LipschitzInputNormalization.Standardize ? 1 / Math.Max(stats.Std, 1e-6) : 1.0;
        var net = new LipschitzNetwork(o, context.FeatureCount, context.NumberOfClasses, mean, scale);
        net.to(context.Device);
        context.Channel.Info(MessageSensitivity.None,
            $"Lipschitz network: {o.Architecture}, {(o.Convolutional ? "conv" : "dense")}, {net.Layers.Count} layers, input scale {scale:G4}.");
        return new LipschitzStep(net, TrainingLoop.CreateOptimizer(net.parameters(), o), o, stats);
    }

    private protected override LipschitzClassifierTransformer CreateTransformer(ITrainStep step, FitContext context)
    {
        var s = (LipschitzStep)step;
        var plain = new PlainNetwork(s.Fold());
        var o = Options;
        var info = new LipschitzModelInfo(o.Architecture, o.Convolutional, o.InputNormalization, s.Stats.Min, s.Stats.Max, o.RadiusRule);
        return new LipschitzClassifierTransformer(Env, plain, info, o.FeatureColumnName, context.FeatureCount, context.Classes,
            o.ScoreColumnName, o.PredictedLabelColumnName);
    }

    /// <summary>The margin losses of the papers (tensor form, mean over the batch).</summary>
    internal static Tensor LossOf(Tensor logits, Tensor y, LipschitzLoss kind, double offset, double temperature, double margin)
    {
        int k = (int)logits.shape[1];
        var onehot = nn.functional.one_hot(y, k).to(logits.dtype);
        // Explicit, disposed Scalars: TorchSharp passes an implicit Scalar's handle to native code without keeping the
        // Scalar alive, so a GC finaliser running during the call can free it ("Unknown scalar type", seen once in tests).
        if (kind == LipschitzLoss.OffsetCrossEntropy)
        {
            using var off = offset.ToScalar();
            using var t = temperature.ToScalar();
            return nn.functional.cross_entropy((logits - onehot.mul(off)).div(t), y).mul(t);
        }
        using var one = 1.ToScalar();
        using var m = margin.ToScalar();
        using var zero = 0.ToScalar();
        using var kScalar = k.ToScalar();
        var zy = logits.gather(1, y.unsqueeze(1));
        // add(x) is add(x, 1) with an implicit 1 made inside TorchSharp: the alpha is passed (the same int Scalar).
        var hinge = zy.neg().add(m, one).add(logits, one).clamp_min(zero).mul(onehot.neg().add(one, one));
        return hinge.sum(1).mean().div(kScalar);
    }

    /// <summary>Backprop with the papers' margin loss, plus the input statistics and the final folding.</summary>
    private sealed class LipschitzStep(LipschitzNetwork net, optim.Optimizer optimizer, LipschitzClassifierOptions o, InputStatistics stats)
        : BackpropStep<LipschitzNetwork>(net, optimizer, (logits, y) => LossOf(logits, y, o.Loss, o.Offset, o.Temperature, o.Margin))
    {
        public InputStatistics Stats => stats;

        /// <summary>Folds the constrained layers into plain weights (on the CPU, eval mode).</summary>
        public IReadOnlyList<PlainLayer> Fold()
        {
            var n = Network;
            n.eval();
            n.to(torch.CPU);
            return n.Fold();
        }
    }
}

/// <summary>Training-data statistics: per-feature mean, pooled standard deviation, global range.</summary>
internal sealed record InputStatistics(float[] Mean, double Std, float Min, float Max)
{
    public static InputStatistics Compute(TensorBatcher data, int features, CancellationToken ct)
    {
        var sum = new double[features];
        double sumSq = 0;
        long rows = 0;
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (var batch in data.GetBatches(1024, shuffle: false, 0, ct))
        {
            using (batch)
            using (torch.NewDisposeScope())
            {
                var x = batch.X.cpu().to(ScalarType.Float64);
                var s = x.sum(0L).data<double>().ToArray();
                for (int j = 0; j < features; j++)
                    sum[j] += s[j];
                sumSq += x.square().sum().item<double>();
                min = Math.Min(min, (float)x.min().item<double>());
                max = Math.Max(max, (float)x.max().item<double>());
                rows += batch.Count;
            }
        }
        if (rows == 0)
            throw new InvalidOperationException("The training data has no usable rows.");
        var mean = sum.Select(v => (float)(v / rows)).ToArray();
        double meanSq = mean.Sum(m => (double)m * m);
        double variance = Math.Max(0, sumSq / rows - meanSq) / features;
        return new InputStatistics(mean, Math.Sqrt(variance), min, max);
    }
}
