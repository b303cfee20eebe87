namespace Allauzen.ML.Lipschitz;

/// <summary>The 1-Lipschitz layer family of a <see cref="LipschitzClassifierTrainer"/>.</summary>
public enum LipschitzArchitecture
{
    /// <summary>SDP-based Lipschitz layers (Araujo et al., ICLR 2023): residual x − 2WᵀT·ReLU(Wx + b), T from a q-weighted Gershgorin bound.</summary>
    Sll,

    /// <summary>Convex potential layers (Meunier et al., ICML 2022): x − (2/σ²)·Wᵀ ReLU(Wx + b), σ a Gram-iteration <b>upper</b> bound.</summary>
    Cpl,

    /// <summary>Almost-orthogonal layers (Prach &amp; Lampert, ECCV 2022): P·D with a per-input-column rescaling, then ReLU.</summary>
    Aol,

    /// <summary>Spectral rescaling (Delattre, Barthélemy, Allauzen 2024): diag(1/t)·W with t from Gram steps, then ReLU.</summary>
    SpectralRescaling,

    /// <summary>
    /// Residual spectral rescaling with SLL's q weights (Delattre, Barthélemy, Allauzen 2024): the SLL block x − 2WᵀT·ReLU(Wx + b)
    /// with T from <see cref="LipschitzClassifierOptions.RescalingIterations"/> Gram steps on WWᵀ (1 step = SLL; more steps give a
    /// tighter T, closer to 1/‖W‖²).
    /// </summary>
    SpectralRescalingResidual,
}

/// <summary>How the certified radius of a <see cref="LipschitzClassifierTransformer"/> is computed from the logits.</summary>
public enum LipschitzRadiusRule
{
    /// <summary>
    /// (top1 − top2)/(√2·L) with L the certified constant of the whole network (Tsuzuku et al. 2018). Default: sound for any
    /// network and the rule the papers' tables use for 1-Lipschitz networks.
    /// </summary>
    Global,

    /// <summary>
    /// The rule for a 1-Lipschitz body followed by the last layer with unit-norm rows w_j (SLL's <c>reproduce_tables.py</c>):
    /// min over j ≠ top of (f_top − f_j)/(L_body·‖w_top − w_j‖). Never smaller than <see cref="Global"/>, since
    /// ‖w_i − w_j‖ ≤ √2·‖W‖.
    /// </summary>
    LastLayerPairwise,

    /// <summary>(top1 − top2)/(2·L_body): each logit is L_body-Lipschitz (unit-norm rows), so the margin shrinks by at most 2·L_body·ε (orthogonium's "classwise" VRA).</summary>
    ClassWise,
}

/// <summary>Training loss of a <see cref="LipschitzClassifierTrainer"/>.</summary>
public enum LipschitzLoss
{
    /// <summary>Cross-entropy with a margin offset: τ·CE((z − u·onehot(y))/τ, y) (SLL's and AOL's loss). Uses <see cref="LipschitzClassifierOptions.Offset"/> and <see cref="LipschitzClassifierOptions.Temperature"/>.</summary>
    OffsetCrossEntropy,

    /// <summary>Multi-class hinge: mean over j ≠ y of max(0, m − z_y + z_j) (PyTorch's MultiMarginLoss). Uses <see cref="LipschitzClassifierOptions.Margin"/>.</summary>
    MultiMargin,
}

/// <summary>How the trainer normalises the inputs before the first layer; the scale enters the certified constant.</summary>
public enum LipschitzInputNormalization
{
    /// <summary>Inputs are used as they are.</summary>
    None,

    /// <summary>Subtract the training mean of every feature (free: a translation does not change the Lipschitz constant). Default.</summary>
    Center,

    /// <summary>Center, then divide by the training standard deviation pooled over all features: the constant is multiplied by 1/std.</summary>
    Standardize,
}

/// <summary>
/// Options of the <see cref="LipschitzClassifierTrainer"/>: a network that is 1-Lipschitz by construction (apart from the
/// input scale and the normalised last layer, both counted), trained with a margin loss, whose outputs come with a
/// certified L2 radius. <c>new LipschitzClassifierOptions()</c> trains a dense SLL network of depth 4.
/// </summary>
/// <remarks>
/// The radius is in the units of the <i>feature column the model reads</i>: if the pipeline rescales features before the
/// trainer (e.g. <c>NormalizeMinMax</c>), the radius is in rescaled units. Score data normalised the same way as the training
/// data; <see cref="LipschitzClassifierTransformer.CheckInputRange"/> detects inputs outside the training range.
/// </remarks>
public sealed class LipschitzClassifierOptions : TorchTrainerOptions
{
    /// <summary>Layer family. Default <see cref="LipschitzArchitecture.Sll"/>.</summary>
    public LipschitzArchitecture Architecture { get; set; } = LipschitzArchitecture.Sll;

    /// <summary>Use convolutions: the features are an image of <see cref="ImageChannels"/> × <see cref="ImageHeight"/> × <see cref="ImageWidth"/> (channel-major). Default false (dense layers).</summary>
    public bool Convolutional { get; set; }

    /// <summary>Image height (convolutional only). Default 0 (must be set when <see cref="Convolutional"/>).</summary>
    public int ImageHeight { get; set; }

    /// <summary>Image width (convolutional only). Default 0 (must be set when <see cref="Convolutional"/>).</summary>
    public int ImageWidth { get; set; }

    /// <summary>Image channels (convolutional only). Default 1.</summary>
    public int ImageChannels { get; set; } = 1;

    /// <summary>Number of Lipschitz blocks (conv blocks when convolutional, else dense blocks). Default 4.</summary>
    public int Depth { get; set; } = 4;

    /// <summary>Width: inner width of residual dense blocks (SLL, CPL), output width of AOL/SR dense blocks, channels of conv blocks. Default 128 (dense) — use 16–64 for convolutions.</summary>
    public int Width { get; set; } = 128;

    /// <summary>Kernel size of conv blocks (odd). Default 3.</summary>
    public int KernelSize { get; set; } = 3;

    /// <summary>Window of the sum pooling after the conv blocks (1 = none; must divide nothing, the remainder is cropped). Default 4.</summary>
    public int PoolSize { get; set; } = 4;

    /// <summary>Dense blocks after the conv blocks and the pooling (convolutional only). Default 1.</summary>
    public int DenseDepth { get; set; } = 1;

    /// <summary>Width of the dense blocks after the conv blocks. Default 256.</summary>
    public int DenseWidth { get; set; } = 256;

    /// <summary>Gram / rescaling steps of <see cref="LipschitzArchitecture.SpectralRescaling"/> (1 = AOL on rows) and
    /// <see cref="LipschitzArchitecture.SpectralRescalingResidual"/> (1 = SLL). Default 2.</summary>
    public int RescalingIterations { get; set; } = 2;

    /// <summary>Input normalisation. Default <see cref="LipschitzInputNormalization.Center"/>.</summary>
    public LipschitzInputNormalization InputNormalization { get; set; } = LipschitzInputNormalization.Center;

    /// <summary>Loss. Default <see cref="LipschitzLoss.OffsetCrossEntropy"/>.</summary>
    public LipschitzLoss Loss { get; set; } = LipschitzLoss.OffsetCrossEntropy;

    /// <summary>Offset u of <see cref="LipschitzLoss.OffsetCrossEntropy"/> (larger = more robust, less accurate). Default 3√2/2 ≈ 2.1213 (SLL).</summary>
    public double Offset { get; set; } = 1.5 * Math.Sqrt(2);

    /// <summary>Temperature τ of <see cref="LipschitzLoss.OffsetCrossEntropy"/>. Default 0.25.</summary>
    public double Temperature { get; set; } = 0.25;

    /// <summary>Margin of <see cref="LipschitzLoss.MultiMargin"/>. Default 0.7 (SLL).</summary>
    public double Margin { get; set; } = 0.7;

    /// <summary>
    /// Rule of the <c>CertifiedRadius</c> column. Default <see cref="LipschitzRadiusRule.Global"/>, (top1 − top2)/(√2·L);
    /// <see cref="LipschitzRadiusRule.LastLayerPairwise"/> is never smaller (tighter certificates, same guarantee).
    /// </summary>
    public LipschitzRadiusRule RadiusRule { get; set; } = LipschitzRadiusRule.Global;

    internal override void Validate()
    {
        base.Validate();
        static void Check(bool ok, string name, object value, string rule)
        {
            if (!ok)
                throw new ArgumentOutOfRangeException(name, value, $"{name} {rule} (got {value}).");
        }
        Check(Enum.IsDefined(Architecture), nameof(Architecture), Architecture, "must be a defined LipschitzArchitecture");
        Check(Enum.IsDefined(Loss), nameof(Loss), Loss, "must be a defined LipschitzLoss");
        Check(Enum.IsDefined(RadiusRule), nameof(RadiusRule), RadiusRule, "must be a defined LipschitzRadiusRule");
        Check(Enum.IsDefined(InputNormalization), nameof(InputNormalization), InputNormalization, "must be a defined LipschitzInputNormalization");
        Check(Depth >= 0, nameof(Depth), Depth, "must be non-negative");
        Check(Width >= 1, nameof(Width), Width, "must be at least 1");
        Check(RescalingIterations is >= 1 and <= 4, nameof(RescalingIterations), RescalingIterations, "must be in [1, 4]");
        Check(Offset >= 0 && double.IsFinite(Offset), nameof(Offset), Offset, "must be a non-negative finite number");
        Check(Temperature > 0 && double.IsFinite(Temperature), nameof(Temperature), Temperature, "must be a positive finite number");
        Check(Margin > 0 && double.IsFinite(Margin), nameof(Margin), Margin, "must be a positive finite number");
        if (Convolutional)
        {
            Check(ImageHeight >= 1, nameof(ImageHeight), ImageHeight, "must be at least 1 when Convolutional is true");
            Check(ImageWidth >= 1, nameof(ImageWidth), ImageWidth, "must be at least 1 when Convolutional is true");
            Check(ImageChannels >= 1, nameof(ImageChannels), ImageChannels, "must be at least 1 when Convolutional is true");
            Check(KernelSize >= 1 && KernelSize % 2 == 1, nameof(KernelSize), KernelSize, "must be a positive odd number");
            Check(KernelSize <= ImageHeight && KernelSize <= ImageWidth, nameof(KernelSize), KernelSize,
                $"must not exceed the image size {ImageHeight}×{ImageWidth}");
            Check(PoolSize >= 1 && PoolSize <= ImageHeight && PoolSize <= ImageWidth, nameof(PoolSize), PoolSize,
                $"must be in [1, min(ImageHeight, ImageWidth)] = [1, {Math.Min(ImageHeight, ImageWidth)}]");
            Check(Width >= ImageChannels, nameof(Width), Width, $"must be at least ImageChannels ({ImageChannels}) for convolutions");
            Check(DenseDepth >= 0, nameof(DenseDepth), DenseDepth, "must be non-negative");
            Check(DenseWidth >= 1, nameof(DenseWidth), DenseWidth, "must be at least 1");
        }
        else if (ImageHeight != 0 || ImageWidth != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(Convolutional), Convolutional,
                $"ImageHeight/ImageWidth are set ({ImageHeight}×{ImageWidth}) but Convolutional is false: set Convolutional = true or clear them.");
        }
    }
}
