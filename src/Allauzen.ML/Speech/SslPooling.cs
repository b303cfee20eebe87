namespace Allauzen.ML.Speech;

/// <summary>How the frames of an utterance become the output column.</summary>
public enum SslPooling
{
    /// <summary>Mean over frames: a vector of the hidden size H (the SUPERB utterance-level recipe).</summary>
    Mean,

    /// <summary>Mean then population standard deviation over frames ("statistics pooling"): a vector of 2H.</summary>
    MeanStd,

    /// <summary>Element-wise maximum over frames: a vector of H.</summary>
    Max,

    /// <summary>No pooling: the frame matrix, frame-major (frames × H values), as a variable-size vector, plus a frame-count column.</summary>
    None,
}
