namespace Allauzen.ML.Speech;

/// <summary>Which encoder layers make a frame's features.</summary>
public enum SslLayerPolicy
{
    /// <summary>The model's last hidden state.</summary>
    Last,

    /// <summary>One layer of the all-layers output.</summary>
    Layer,

    /// <summary>The average of all layers (= a zero-initialised SUPERB weighted sum).</summary>
    Average,

    /// <summary>A weighted sum of all layers with user-given weights.</summary>
    WeightedSum,
}
