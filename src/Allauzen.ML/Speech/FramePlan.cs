namespace Allauzen.ML.Speech;

/// <summary>One encoder call of an utterance: samples [Start, Start + Length) of the waveform, of whose output frames
/// [KeepFrom, KeepFrom + KeepCount) are global frames [FirstFrame, FirstFrame + KeepCount).</summary>
internal readonly record struct ChunkWindow(int Start, int Length, int KeepFrom, int KeepCount, int FirstFrame);

/// <summary>
/// Frame arithmetic of a strided convolutional front end and the chunk plan of long audio.
/// </summary>
/// <remarks>
/// A stack of convolutions with kernels kᵢ and strides sᵢ maps n samples to n → ⌊(n − kᵢ)/sᵢ⌋ + 1 per layer. For
/// wav2vec 2.0 (k = 10,3,3,3,3,2,2; s = 5,2,2,2,2,2,2) the cascade collapses to ⌊(n − 400)/320⌋ + 1 for n ≥ 400
/// (receptive field r = 400, total stride s = 320); frame f covers samples [320f, 320f + 400).
/// A chunk starting at sample 320·a therefore yields global frames a, a + 1, ...: chunks are cut on that grid,
/// encoded with <c>context</c> frames on each side, and only their central frames are kept.
/// </remarks>
internal static class FramePlan
{
    /// <summary>⌊(n − r)/s⌋ + 1 for n ≥ r, else 0.</summary>
    public static int Frames(long samples, int stride, int receptiveField) =>
        samples < receptiveField ? 0 : checked((int)((samples - receptiveField) / stride + 1));

    /// <summary>The exact cascade ⌊(n − kᵢ)/sᵢ⌋ + 1 through every layer (0 when a layer gets fewer samples than its kernel).</summary>
    public static int CascadeFrames(long samples, ReadOnlySpan<int> kernels, ReadOnlySpan<int> strides)
    {
        long n = samples;
        for (int i = 0; i < kernels.Length; i++)
        {
            if (n < kernels[i])
                return 0;
            n = (n - kernels[i]) / strides[i] + 1;
        }
        return (int)n;
    }

    /// <summary>
    /// The encoder calls for <paramref name="samples"/> samples: one window when the whole file fits in
    /// <paramref name="chunkFrames"/> + 2 × <paramref name="contextFrames"/> frames (or chunking is off,
    /// <paramref name="chunkFrames"/> ≤ 0), else chunks of <paramref name="chunkFrames"/> output frames, each encoded
    /// with up to <paramref name="contextFrames"/> frames of context on each side.
    /// </summary>
    public static List<ChunkWindow> Windows(int samples, int stride, int receptiveField, int chunkFrames, int contextFrames)
    {
        int total = Frames(samples, stride, receptiveField);
        if (chunkFrames <= 0 || total <= chunkFrames + 2L * contextFrames)
            return [new ChunkWindow(0, samples, 0, total, 0)];
        var windows = new List<ChunkWindow>();
        for (int a = 0; a < total; a += chunkFrames)
        {
            int b = Math.Min(total, a + chunkFrames);
            int lo = Math.Max(0, a - contextFrames);
            int hi = Math.Min(total, b + contextFrames);
            int start = lo * stride;
            // Samples covering frames [lo, hi): (hi − lo − 1)·s + r; the last window runs to the end of the file.
            long end = hi == total ? samples : (long)(hi - 1) * stride + receptiveField;
            windows.Add(new ChunkWindow(start, (int)(end - start), a - lo, b - a, a));
        }
        return windows;
    }
}
