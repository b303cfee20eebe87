using System.Globalization;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// Trains a bias-free MLP whose layers are kept orthonormal, with FOTON (forward-only: two forward passes,
/// no backward pass; Caillon, Colagrande, Fagnou, Delattre, Allauzen, 2025), PEPITA (Dellaferrera and
/// Kreiman, 2022) or backprop on the same network, chosen by <see cref="FotonOptions.Algorithm"/>.
/// Create it with <c>ml.MulticlassClassification.Trainers.Foton(options)</c>.
/// </summary>
/// <remarks>
/// <format type="text/markdown"><![CDATA[
/// | Input columns | |
/// | -- | -- |
/// | `Label` | key type (apply `MapValueToKey`) |
/// | `Features` | `Vector<Single, n>` of known size; normalise it |
///
/// | Output columns | |
/// | -- | -- |
/// | `Score` | `Vector<Single, k>`: class probabilities softmax(Y), slot names = class names |
/// | `PredictedLabel` | `Key<UInt32, k>` with the label's key values |
///
/// | Trainer characteristics | |
/// | -- | -- |
/// | Machine learning task | Multiclass classification |
/// | Is normalization required? | Yes |
/// | Required NuGet in addition to Allauzen.ML | TorchSharp-cpu (or TorchSharp-cuda-linux) in the application |
/// | Exportable to ONNX | Yes (a chain of Gemm and activations) |
///
/// Per-epoch diagnostics in `TrainingProgress.Diagnostics`: `ortho_err` (max |WWᵀ − I| over the layers),
/// `bjorck_iterations` (mean per projected layer), and for FOTON/PEPITA with `AlignmentDiagnostics` on,
/// `cos[fc0]` … `cos[out]` (cosine between the forward-only update and the backprop gradient on the epoch's
/// first mini-batch) and `ratio[fc0]` … `ratio[out]` (their norm ratio).
/// ]]></format>
/// </remarks>
public sealed class FotonTrainer : TorchClassifierTrainerBase<FotonTransformer, FotonOptions>
{
    internal FotonTrainer(IHostEnvironment env, FotonOptions options)
        : base(env, "Allauzen.Foton", options)
    {
        if (options.Algorithm == FotonAlgorithm.Foton && !options.AllowExpandingWidths)
        {
            for (int i = 1; i < options.HiddenSizes.Length; i++)
            {
                if (options.HiddenSizes[i] > options.HiddenSizes[i - 1])
                    throw ExpandingError($"fc{i} ({options.HiddenSizes[i - 1]} → {options.HiddenSizes[i]})");
            }
        }
    }

    private static ArgumentOutOfRangeException ExpandingError(string layer) =>
        new(nameof(FotonOptions.HiddenSizes),
            $"Layer {layer} expands: FOTON equals backprop only for non-expanding widths (an expanding layer gets orthonormal columns, not rows). " +
            "Use non-increasing HiddenSizes, or set AllowExpandingWidths = true to train anyway.");

    private protected override ITrainStep CreateStep(FitContext context)
    {
        var o = Options;
        if (o.ConvolutionChannels.Length > 0 && o.InputShape![0] * o.InputShape[1] * o.InputShape[2] != context.FeatureCount)
            throw new ArgumentOutOfRangeException(nameof(FotonOptions.InputShape),
                $"InputShape {string.Join("×", o.InputShape)} = {o.InputShape[0] * o.InputShape[1] * o.InputShape[2]} values, but the feature column '{o.FeatureColumnName}' has {context.FeatureCount}.");
        if (o.Algorithm == FotonAlgorithm.Foton && o.FirstExpandingLayer(context.FeatureCount) is string layer)
        {
            if (!o.AllowExpandingWidths)
                throw ExpandingError(layer);
            context.Channel.Warning(MessageSensitivity.None,
                $"Layer {layer} expands: FOTON's updates are no longer the backprop gradient (AllowExpandingWidths = true).");
        }
        var arch = o.ConvolutionChannels.Length == 0
            ? new FotonArchitecture(context.FeatureCount, [.. o.HiddenSizes], context.NumberOfClasses, o.Activation)
            : new FotonArchitecture(context.FeatureCount, [.. o.HiddenSizes], context.NumberOfClasses, o.Activation,
                [.. o.InputShape!], [.. o.ConvolutionChannels], o.ConvolutionKernel);
        if (o.Activation == FotonActivation.MaxMin && arch.FlatWidths().Skip(1).SkipLast(1).FirstOrDefault(w => w % 2 != 0) is int odd and > 0)
            throw new ArgumentOutOfRangeException(nameof(FotonOptions.Activation), $"MaxMin needs even layer widths; a convolution output has {odd} values.");
        using var init = new Generator(FotonTrainStep.DeriveSeed(context.Seed, 0), torch.CPU);
        var net = OrthogonalMlp.Create(arch, o.Algorithm switch
            {
                FotonAlgorithm.Pepita => FotonInit.HeUniform,
                FotonAlgorithm.Backprop when !o.ProjectBackprop => FotonInit.OrthogonalAll,
                _ => FotonInit.Orthogonal,
            },
            init, ScalarType.Float32, torch.CPU);
        if (context.Device.type != DeviceType.CPU)
        {
            var moved = net.Weights.Select(w => w.to(context.Device)).ToArray();
            net.Dispose();
            net = new OrthogonalMlp(arch, moved);
        }
        context.Channel.Info(MessageSensitivity.None, string.Create(CultureInfo.InvariantCulture,
            $"{o.Algorithm}: layers {string.Join("-", arch.FlatWidths())} ({string.Join(", ", arch.LayerNames())}), {o.Activation}, dropout {o.Dropout}, lr {o.LearningRate}, batch {o.BatchSize}."));
        return new FotonTrainStep(net, o, context.Seed, context.Device);
    }

    private protected override FotonTransformer CreateTransformer(ITrainStep step, FitContext context)
    {
        // The transformer takes the trained tensors themselves (float32, contiguous): no copy, so the end of Fit holds
        // one copy of the weights — at depth 50 that end used to be FOTON's peak, with two or three copies.
        var net = ((FotonTrainStep)step).DetachNetwork();
        try
        {
            return new FotonTransformer(Env, net, Options.Algorithm,
                Options.FeatureColumnName, context.Classes, Options.ScoreColumnName, Options.PredictedLabelColumnName);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }
}
