namespace Allauzen.ML.Mlp;

/// <summary>Activation functions of the hidden layers.</summary>
public enum MlpActivation
{
    /// <summary>max(0, x).</summary>
    Relu,

    /// <summary>Hyperbolic tangent.</summary>
    Tanh,

    /// <summary>Logistic sigmoid.</summary>
    Sigmoid,

    /// <summary>Gaussian error linear unit (exact, erf-based).</summary>
    Gelu,

    /// <summary>max(x, 0.01·x).</summary>
    LeakyRelu,
}

/// <summary>
/// Options of the <see cref="MlpTrainer"/>: a plain multilayer perceptron trained with backprop and
/// cross-entropy, the baseline the FOTON and Lipschitz trainers compare against. Every option has a
/// working default: <c>new MlpOptions()</c> trains a 128-unit ReLU network with Adam for 20 epochs.
/// </summary>
public sealed class MlpOptions : TorchTrainerOptions
{
    /// <summary>Widths of the hidden layers, input side first. Default { 128 }. Empty = multinomial logistic regression.</summary>
    public int[] HiddenSizes { get; set; } = [128];

    /// <summary>Activation of the hidden layers. Default <see cref="MlpActivation.Relu"/>.</summary>
    public MlpActivation Activation { get; set; } = MlpActivation.Relu;

    /// <summary>Dropout probability after each hidden activation (training only). Default 0.</summary>
    public double Dropout { get; set; }

    /// <summary>
    /// Weight λ of a Lipschitz regulariser: λ·Σ_l σ̄(W_l), where σ̄ is the differentiable Gram-iteration upper bound (6 steps)
    /// on each linear layer's spectral norm. Default 0 (off). See <see cref="MlpTransformer.LipschitzBound"/>.
    /// </summary>
    public double LipschitzPenalty { get; set; }

    internal override void Validate()
    {
        base.Validate();
        if (!(LipschitzPenalty >= 0 && double.IsFinite(LipschitzPenalty)))
            throw new ArgumentOutOfRangeException(nameof(LipschitzPenalty), LipschitzPenalty, $"LipschitzPenalty must be a non-negative finite number (got {LipschitzPenalty}).");
        ArgumentNullException.ThrowIfNull(HiddenSizes, nameof(HiddenSizes));
        for (int i = 0; i < HiddenSizes.Length; i++)
        {
            if (HiddenSizes[i] < 1)
                throw new ArgumentOutOfRangeException(nameof(HiddenSizes), HiddenSizes[i], $"HiddenSizes[{i}] must be at least 1 (got {HiddenSizes[i]}).");
        }
        if (!Enum.IsDefined(Activation))
            throw new ArgumentOutOfRangeException(nameof(Activation), Activation, $"Activation {Activation} is not a defined MlpActivation.");
        if (!(Dropout >= 0 && Dropout < 1))
            throw new ArgumentOutOfRangeException(nameof(Dropout), Dropout, $"Dropout must be in [0, 1) (got {Dropout}).");
    }
}
