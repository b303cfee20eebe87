namespace Allauzen.ML.Speech;

/// <summary>
/// The layer choice of <see cref="SslFeaturizerOptions.Layers"/>: <see cref="Last"/> (default), <see cref="Layer(int)"/>,
/// <see cref="Average"/> or <see cref="WeightedSum(float[])"/>. All but <see cref="Last"/> read the all-layers output
/// (<c>hidden_states</c>, [batch, layers, frames, hidden], HuggingFace convention: index 0 = input of the first
/// transformer layer, index L = the last hidden state).
/// </summary>
public sealed class SslLayers
{
    private SslLayers(SslLayerPolicy policy, int index, float[] weights)
    {
        Policy = policy;
        Index = index;
        Weights = weights;
    }

    /// <summary>The policy.</summary>
    public SslLayerPolicy Policy { get; }

    /// <summary>The layer of <see cref="SslLayerPolicy.Layer"/> (negative counts from the end: −1 = last).</summary>
    public int Index { get; }

    /// <summary>The weights of <see cref="SslLayerPolicy.WeightedSum"/>, one per layer, used as given (not normalised).</summary>
    public IReadOnlyList<float> Weights { get; }

    /// <summary>The last hidden state (default).</summary>
    public static SslLayers Last { get; } = new(SslLayerPolicy.Last, -1, []);

    /// <summary>The average of all layers.</summary>
    public static SslLayers Average { get; } = new(SslLayerPolicy.Average, 0, []);

    /// <summary>Layer <paramref name="index"/> of the all-layers output (0 = transformer input; −1 = last).</summary>
    public static SslLayers Layer(int index) => new(SslLayerPolicy.Layer, index, []);

    /// <summary>Σ<sub>l</sub> w<sub>l</sub>·h<sub>l</sub> over all layers; <paramref name="weights"/> needs one value per layer
    /// (L+1 for an L-layer wav2vec2), used as given (apply a softmax yourself for SUPERB-style logits).</summary>
    public static SslLayers WeightedSum(params float[] weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.Length == 0 || weights.Any(w => !float.IsFinite(w)))
            throw new ArgumentOutOfRangeException(nameof(weights), "WeightedSum needs at least one weight, all finite.");
        return new(SslLayerPolicy.WeightedSum, 0, (float[])weights.Clone());
    }

    internal static SslLayers From(SslLayerPolicy policy, int index, float[]? weights) => policy switch
    {
        SslLayerPolicy.Last => Last,
        SslLayerPolicy.Average => Average,
        SslLayerPolicy.Layer => Layer(index),
        SslLayerPolicy.WeightedSum => WeightedSum(weights ?? []),
        _ => throw new InvalidDataException($"Unknown layer policy {policy}."),
    };

    /// <inheritdoc />
    public override string ToString() => Policy switch
    {
        SslLayerPolicy.Layer => $"Layer({Index})",
        SslLayerPolicy.WeightedSum => $"WeightedSum({string.Join(", ", Weights)})",
        _ => Policy.ToString(),
    };
}
