using System.ComponentModel;

namespace Allauzen.ML.Foton;

/// <summary>How the orthogonal MLP of the <see cref="FotonTrainer"/> is trained.</summary>
public enum FotonAlgorithm
{
    /// <summary>
    /// FOTON (Caillon, Colagrande et al. 2025): two forward passes, the second on the input modulated by
    /// the output error sent back through the transposed end-to-end linear map, X̃ = X − E·Fᵀ with
    /// Fᵀ = W_L⋯W_0; local updates (H − H̃)ᵀH_prev; every layer re-orthonormalised (Björck) after the step.
    /// Equal to backprop for linear networks with orthonormal, non-expanding layers.
    /// </summary>
    Foton,

    /// <summary>
    /// PEPITA (Dellaferrera and Kreiman, ICML 2022): two forward passes, the second on X̃ = X + E·Fᵀ with a
    /// fixed random F, updates (H − H̃)ᵀH̃_prev; He-uniform weights, no orthogonality constraint.
    /// </summary>
    Pepita,

    /// <summary>
    /// Backprop (autograd) on the same network, with the same optimizer and dropout masks; with
    /// <see cref="FotonOptions.ProjectBackprop"/> the same Björck projection is applied after each step
    /// (the control that separates the orthogonality constraint from the forward-only estimate).
    /// Initialisation as the reference measurements' baselines: plain backprop starts with every layer
    /// orthogonal, the output layer included; with <see cref="FotonOptions.ProjectBackprop"/> it starts as FOTON
    /// (orthogonal hidden layers, PyTorch's U(±1/√d) output layer, orthonormal from the first projection).
    /// </summary>
    Backprop,
}

/// <summary>Activation of the hidden layers of the orthogonal MLP.</summary>
public enum FotonActivation
{
    /// <summary>max(0, x) (the reference code's default; loses half the signal energy per layer, so poor at depth).</summary>
    Relu,

    /// <summary>Hyperbolic tangent (zero-centred and non-expanding; the usual choice for deep networks, see docs/results/foton.md).</summary>
    Tanh,

    /// <summary>The identity: a linear network, where FOTON equals backprop exactly.</summary>
    Identity,

    /// <summary>
    /// MaxMin (GroupSort with groups of 2, Anil et al. 2019): the width is split in halves a | b and
    /// mapped to max(a, b) | min(a, b). Norm-preserving (a permutation per row); hidden widths must be even.
    /// </summary>
    MaxMin,
}

/// <summary>
/// Options of the <see cref="FotonTrainer"/>: an MLP without biases whose layers are kept orthonormal,
/// trained with FOTON, PEPITA or backprop. The defaults are the reference configuration of the FOTON
/// code (two hidden layers of 256, ReLU, dropout 0.1 with masks shared by both passes, cross-entropy at
/// temperature 1, plain SGD at learning rate 0.5, batch 256, projection and F refresh after every step),
/// except the projection, which is warm-started (see <see cref="WarmStartProjection"/>).
/// </summary>
public sealed class FotonOptions : TorchTrainerOptions
{
    /// <summary>Creates the options with FOTON's reference defaults (SGD without momentum, learning rate 0.5, batch 256).</summary>
    public FotonOptions()
    {
        Optimizer = OptimizerKind.Sgd;
        Momentum = 0;
        LearningRate = 0.5;
        BatchSize = 256;
    }

    /// <summary>Training algorithm. Default <see cref="FotonAlgorithm.Foton"/>.</summary>
    public FotonAlgorithm Algorithm { get; set; } = FotonAlgorithm.Foton;

    /// <summary>
    /// Widths of the hidden layers, input side first. Default { 256, 256 }. For FOTON's equivalence with
    /// backprop the widths must not grow (input ≥ first hidden ≥ … ≥ last hidden); see <see cref="AllowExpandingWidths"/>.
    /// </summary>
    public int[] HiddenSizes { get; set; } = [256, 256];

    /// <summary>
    /// Shape (channels, height, width) of the feature vector, read channel-major, for the convolution layers
    /// (e.g. { 1, 28, 28 } for Fashion-MNIST). Default null: no convolutions.
    /// </summary>
    public int[]? InputShape { get; set; }

    /// <summary>
    /// Output channels of patch-orthogonal convolution layers placed before the dense hidden layers (this
    /// library's design, see docs/components/foton.md): kernel = stride = <see cref="ConvolutionKernel"/>, no padding, the kernel
    /// reshaped to [C_out, C_in·k·k] kept orthonormal like a dense weight. Non-expanding: C_out ≤ C_in·k·k.
    /// Default empty.
    /// </summary>
    public int[] ConvolutionChannels { get; set; } = [];

    /// <summary>Kernel size (and stride) of the convolution layers. Default 2.</summary>
    public int ConvolutionKernel { get; set; } = 2;

    /// <summary>Activation of the hidden layers. Default <see cref="FotonActivation.Relu"/>.</summary>
    public FotonActivation Activation { get; set; } = FotonActivation.Relu;

    /// <summary>Dropout probability before each hidden activation, with one mask per step shared by both passes. Default 0.1.</summary>
    public double Dropout { get; set; } = 0.1;

    /// <summary>Temperature τ of the output error E = softmax(τ·Y) − T (and of the reported loss). Default 1.</summary>
    public double CeTemperature { get; set; } = 1.0;

    /// <summary>
    /// Divide the forward-only updates (FOTON, PEPITA) by <see cref="TorchTrainerOptions.BatchSize"/> even on an
    /// epoch's last, smaller batch, as the reference code does: that batch then takes a proportionally smaller step
    /// (its rows / <see cref="TorchTrainerOptions.BatchSize"/>, e.g. 96/256 = 0.375× for 60,000 rows in batches of 256).
    /// Default true. False divides by the actual number of rows, so every step is full size. At a large learning rate the
    /// test accuracy read at the end of an epoch depends on the size of that last step; see docs/results/foton.md and
    /// docs/results/foton-reference-seeds.md. Backprop always uses the mean loss over the actual rows.
    /// </summary>
    public bool ScaleByConfiguredBatchSize { get; set; } = true;

    /// <summary>
    /// Re-orthonormalise every layer after every <c>ProjectionInterval</c> steps (FOTON; Backprop with
    /// <see cref="ProjectBackprop"/>): an interval in steps, counted from 1, so with k the first projection follows the
    /// k-th step. Default 1; at least 1. Larger values let the weights drift from orthonormality between projections,
    /// which breaks FOTON's equivalence with backprop and can make training diverge at large learning rates.
    /// </summary>
    public int ProjectionInterval { get; set; } = 1;

    /// <summary>
    /// Recompute Fᵀ = W_L⋯W_0 after every <c>FeedbackRefreshInterval</c> steps (FOTON); 0 = never (F stays the initial
    /// map). Default 1.
    /// </summary>
    public int FeedbackRefreshInterval { get; set; } = 1;

    /// <summary>The former name of <see cref="ProjectionInterval"/> (an interval in steps, not a rate); reads and writes it.</summary>
    [Obsolete("Use ProjectionInterval (the same option under its new name). OrthoRate will be removed in the next release.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public int OrthoRate { get => ProjectionInterval; set => ProjectionInterval = value; }

    /// <summary>The former name of <see cref="FeedbackRefreshInterval"/> (an interval in steps, not a rate); reads and writes it.</summary>
    [Obsolete("Use FeedbackRefreshInterval (the same option under its new name). FRefreshRate will be removed in the next release.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public int FRefreshRate { get => FeedbackRefreshInterval; set => FeedbackRefreshInterval = value; }

    /// <summary>
    /// Björck projection started from the current (already near-orthonormal) weights: no power
    /// iteration, a scale only when a Gershgorin bound says the iteration could diverge, one Gram matrix and one
    /// application per layer and step with adaptive-degree steps on the small side in between, stopped as soon as
    /// the orthogonality error is provably below <see cref="OrthogonalityTolerance"/> (instead of 20 full
    /// iterations). Default true. False = the reference rule: 10 power-iteration steps to scale by σ_max, then
    /// exactly <see cref="BjorckIterations"/> iterations.
    /// </summary>
    public bool WarmStartProjection { get; set; } = true;

    /// <summary>
    /// FOTON only: recompute the clean activations during the modulated pass instead of storing them
    /// (one extra forward pass; activation memory independent of depth). Default false: the clean pass keeps one
    /// B×d tensor per hidden layer (H_i for tanh, the pre-activation otherwise), where backprop's autograd keeps
    /// several per layer plus every layer's gradient; FOTON's updates are applied layer by layer as they are formed,
    /// so at most one layer's update is alive at a time in both modes.
    /// </summary>
    public bool RecomputeActivations { get; set; }

    /// <summary>Björck iterations of the reference rule, and the cap of the warm-started one. Default 20.</summary>
    public int BjorckIterations { get; set; } = 20;

    /// <summary>
    /// Target of the warm-started projection: max |WWᵀ − I| (|WᵀW − I| for tall layers), measured before the
    /// projection (a layer already within it is not touched) and proven, in exact arithmetic, by a bound after the
    /// last step. Default 4e-6: below the 1e-5 the equivalence with backprop needs in float32, above float32's own
    /// rounding floor for 256-wide layers (≈ 1e-6), which no iteration can go below. Range (0, 1). The bound holds in
    /// exact arithmetic: float32 rounding of the projection's products adds to the actual error (see docs/results/foton.md).
    /// </summary>
    public double OrthogonalityTolerance { get; set; } = 4e-6;

    /// <summary>With <see cref="FotonAlgorithm.Backprop"/>: apply the same Björck projection as FOTON after each step. Default false.</summary>
    public bool ProjectBackprop { get; set; }

    /// <summary>
    /// FOTON only: accept hidden layers wider than their input (the equivalence with backprop then no
    /// longer holds) with a warning naming the layer, instead of an error. Default false.
    /// </summary>
    public bool AllowExpandingWidths { get; set; }

    /// <summary>PEPITA only: entries of the fixed feedback matrix F are U(−a, a) with a = scale·√(6/d_0). Default 0.05.</summary>
    public double PepitaFeedbackScale { get; set; } = 0.05;

    /// <summary>
    /// FOTON and PEPITA: on the first mini-batch of every epoch, also compute the backprop gradient (same
    /// weights and masks) and report the cosine with the forward-only update, per layer, in
    /// <see cref="TrainingProgress.Diagnostics"/> as <c>cos[fc0]</c>, …, <c>cos[out]</c>, and the norm ratio
    /// ‖update‖/‖gradient‖ as <c>ratio[fc0]</c>, …. Costs one autograd pass per epoch. Default false.
    /// </summary>
    public bool AlignmentDiagnostics { get; set; }

    internal override void Validate()
    {
        base.Validate();
        ArgumentNullException.ThrowIfNull(HiddenSizes, nameof(HiddenSizes));
        for (int i = 0; i < HiddenSizes.Length; i++)
        {
            if (HiddenSizes[i] < 1)
                throw new ArgumentOutOfRangeException(nameof(HiddenSizes), HiddenSizes[i], $"HiddenSizes[{i}] must be at least 1 (got {HiddenSizes[i]}).");
            if (Activation == FotonActivation.MaxMin && HiddenSizes[i] % 2 != 0)
                throw new ArgumentOutOfRangeException(nameof(HiddenSizes), HiddenSizes[i], $"HiddenSizes[{i}] must be even with the MaxMin activation (got {HiddenSizes[i]}).");
        }
        ArgumentNullException.ThrowIfNull(ConvolutionChannels, nameof(ConvolutionChannels));
        if (ConvolutionChannels.Length > 0)
        {
            if (ConvolutionKernel < 1)
                throw new ArgumentOutOfRangeException(nameof(ConvolutionKernel), ConvolutionKernel, $"ConvolutionKernel must be at least 1 (got {ConvolutionKernel}).");
            if (InputShape is not { Length: 3 } || InputShape.Any(d => d < 1))
                throw new ArgumentOutOfRangeException(nameof(InputShape), InputShape is null ? "null" : string.Join(", ", InputShape),
                    "InputShape must be { channels, height, width } (all positive) when ConvolutionChannels is set.");
            int scale = (int)Math.Pow(ConvolutionKernel, ConvolutionChannels.Length);
            if (InputShape[1] % scale != 0 || InputShape[2] % scale != 0)
                throw new ArgumentOutOfRangeException(nameof(InputShape), $"{InputShape[1]}×{InputShape[2]}",
                    $"InputShape height and width must be multiples of ConvolutionKernel^{ConvolutionChannels.Length} = {scale} (no padding).");
            for (int j = 0; j < ConvolutionChannels.Length; j++)
            {
                if (ConvolutionChannels[j] < 1)
                    throw new ArgumentOutOfRangeException(nameof(ConvolutionChannels), ConvolutionChannels[j], $"ConvolutionChannels[{j}] must be at least 1 (got {ConvolutionChannels[j]}).");
            }
        }
        if (!Enum.IsDefined(Algorithm))
            throw new ArgumentOutOfRangeException(nameof(Algorithm), Algorithm, $"Algorithm {Algorithm} is not a defined FotonAlgorithm.");
        if (!Enum.IsDefined(Activation))
            throw new ArgumentOutOfRangeException(nameof(Activation), Activation, $"Activation {Activation} is not a defined FotonActivation.");
        if (!(Dropout >= 0 && Dropout < 1))
            throw new ArgumentOutOfRangeException(nameof(Dropout), Dropout, $"Dropout must be in [0, 1) (got {Dropout}).");
        if (!(CeTemperature > 0 && double.IsFinite(CeTemperature)))
            throw new ArgumentOutOfRangeException(nameof(CeTemperature), CeTemperature, $"CeTemperature must be a positive finite number (got {CeTemperature}).");
        if (ProjectionInterval < 1)
            throw new ArgumentOutOfRangeException(nameof(ProjectionInterval), ProjectionInterval, $"ProjectionInterval must be at least 1 (got {ProjectionInterval}).");
        if (FeedbackRefreshInterval < 0)
            throw new ArgumentOutOfRangeException(nameof(FeedbackRefreshInterval), FeedbackRefreshInterval, $"FeedbackRefreshInterval must be non-negative (got {FeedbackRefreshInterval}).");
        if (BjorckIterations < 1)
            throw new ArgumentOutOfRangeException(nameof(BjorckIterations), BjorckIterations, $"BjorckIterations must be at least 1 (got {BjorckIterations}).");
        if (!(OrthogonalityTolerance > 0 && OrthogonalityTolerance < 1))
            throw new ArgumentOutOfRangeException(nameof(OrthogonalityTolerance), OrthogonalityTolerance, $"OrthogonalityTolerance must be in (0, 1) (got {OrthogonalityTolerance}).");
        if (!(PepitaFeedbackScale > 0 && double.IsFinite(PepitaFeedbackScale)))
            throw new ArgumentOutOfRangeException(nameof(PepitaFeedbackScale), PepitaFeedbackScale, $"PepitaFeedbackScale must be a positive finite number (got {PepitaFeedbackScale}).");
    }

    /// <summary>Checks the non-expanding rule once the input width is known; returns the first offending layer or null.</summary>
    internal string? FirstExpandingLayer(int inputSize)
    {
        int width = inputSize;
        if (ConvolutionChannels.Length > 0)
        {
            int c = InputShape![0], h = InputShape[1], w = InputShape[2], k = ConvolutionKernel;
            for (int j = 0; j < ConvolutionChannels.Length; j++)
            {
                if (ConvolutionChannels[j] > c * k * k)
                    return $"conv{j} ({c}×{k}×{k} = {c * k * k} → {ConvolutionChannels[j]} channels)";
                c = ConvolutionChannels[j];
                h /= k;
                w /= k;
            }
            width = c * h * w;
        }
        for (int i = 0; i < HiddenSizes.Length; i++)
        {
            if (HiddenSizes[i] > width)
                return $"fc{i} ({width} → {HiddenSizes[i]})";
            width = HiddenSizes[i];
        }
        return null;
    }
}
