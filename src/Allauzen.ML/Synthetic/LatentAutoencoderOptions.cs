namespace Allauzen.ML.Synthetic;

/// <summary>
/// The latent mode of <c>ml.Transforms.PrivateSyntheticData</c> (<see cref="PrivateSyntheticDataOptions.Latent"/>): a
/// small fully connected autoencoder is trained first, the private rows are encoded to unit-norm codes of
/// <see cref="LatentDimension"/> values, the flow runs on the codes, and the generated codes are decoded back to the
/// feature space. This is how the paper runs DPSWflow on images (MNIST and Fashion-MNIST with d = 8).
/// </summary>
/// <remarks>
/// Privacy: the reported (ε, δ) covers the release of the codes only. The decoder is part of the generator (it is saved
/// with it and shapes every generated row), so it must be trained on <see cref="PublicData"/>, rows that are not
/// private (the reference code trains it on a disjoint half of the training set, treated as public). When
/// <see cref="PublicData"/> is null the autoencoder is trained on the private rows themselves, without any privacy
/// protection, and <see cref="PrivacyReport.CoversWholeGenerator"/> is false.
/// </remarks>
public sealed class LatentAutoencoderOptions
{
    /// <summary>d of the code space the flow runs in (the sensitivity and σ are computed for this d). Default 8.</summary>
    public int LatentDimension { get; set; } = 8;

    /// <summary>Widths of the encoder's hidden layers (ReLU); the decoder mirrors them. Default [128].</summary>
    public int[] HiddenSizes { get; set; } = [128];

    /// <summary>Passes over the autoencoder's training rows. Default 100.</summary>
    public int Epochs { get; set; } = 100;

    /// <summary>Rows per Adam step. Default 64.</summary>
    public int BatchSize { get; set; } = 64;

    /// <summary>Adam learning rate. Default 1e-3.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Seed of the initial weights and of the mini-batch order. Default 0.</summary>
    public int Seed { get; set; }

    /// <summary>
    /// Non-private rows the autoencoder is trained on (the same feature column name and size as the private data), or
    /// null (default) to train it on the private rows, in which case the privacy report does not cover the generator's
    /// decoder. Not persisted.
    /// </summary>
    public IDataView? PublicData { get; set; }

    internal void Validate()
    {
        Check(LatentDimension, 1, 4096, nameof(LatentDimension));
        if (HiddenSizes is null)
            throw new ArgumentNullException(nameof(HiddenSizes), "HiddenSizes must be an array of widths (it may be empty).");
        for (int i = 0; i < HiddenSizes.Length; i++)
            Check(HiddenSizes[i], 1, 1 << 16, $"{nameof(HiddenSizes)}[{i}]");
        Check(Epochs, 0, 1_000_000, nameof(Epochs));
        Check(BatchSize, 1, 1 << 20, nameof(BatchSize));
        if (!(LearningRate > 0 && double.IsFinite(LearningRate)))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, $"LearningRate must be a positive finite number (got {LearningRate}).");
    }

    private static void Check(int value, int min, int max, string name)
    {
        if (value < min || value > max)
            throw new ArgumentOutOfRangeException(name, value, $"Latent.{name} must be in [{min}, {max}] (got {value}).");
    }
}
