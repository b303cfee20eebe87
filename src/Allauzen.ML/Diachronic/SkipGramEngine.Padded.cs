namespace Allauzen.ML.Diachronic;

// Cache-line-aligned rows for Hogwild threads. Syn0/Syn1 rows of K = 100 floats are 400 bytes, so most rows share their
// first and last 64-byte line with the neighbouring ids' rows, and ids are ordered by first slice and count: a frequent
// word's neighbours are frequent too. Two threads updating neighbouring rows then fight over the shared lines (false
// sharing) besides the true sharing of the same words. With several threads the window rule trains on copies of both
// matrices whose rows start on 64-byte boundaries and take a multiple of 64 bytes (K = 100 → 112 floats): copied in at
// the start of Train and back out at its end, so Syn0/Syn1 stay the V×K matrices callers read and write between calls.
// The arithmetic on each row is unchanged (the padding is never read); one thread trains in place as before.
internal sealed unsafe partial class SkipGramEngine
{
    /// <summary>Train on 64-byte-aligned, padded copies of the rows when threads &gt; 1 under the window rule (default true).</summary>
    internal bool PadRows { get; set; } = true;

    /// <summary>Floats between consecutive rows of the padded copies: K rounded up to 16 (64 bytes).</summary>
    internal int PaddedStride => (K + 15) / 16 * 16;

    /// <summary>New padded copies of Syn0 and Syn1 (dropped after the Train call) with their rows filled from the V×K
    /// matrices, and the offsets (floats) of their first 64-byte-aligned element. The arrays are pinned (never moved), so
    /// the offsets stay valid; the padding floats are never read by the kernels.</summary>
    private (float[] In, int InOffset, float[] Out, int OutOffset) PaddedCopies()
    {
        long size = (long)V * PaddedStride + 16;
        if (size > Array.MaxLength)
            throw new InvalidOperationException($"Skip-gram: V × padded K = {V} × {PaddedStride} exceeds the largest array ({Array.MaxLength}).");
        var in_ = GC.AllocateUninitializedArray<float>((int)size, pinned: true);
        var out_ = GC.AllocateUninitializedArray<float>((int)size, pinned: true);
        int o0 = AlignedOffset(in_), o1 = AlignedOffset(out_);
        CopyRows(Syn0, 0, K, in_, o0, PaddedStride);
        CopyRows(Syn1, 0, K, out_, o1, PaddedStride);
        return (in_, o0, out_, o1);
    }

    /// <summary>Copies the padded rows back into Syn0 and Syn1.</summary>
    private void CopyBack(float[] in_, int inOffset, float[] out_, int outOffset)
    {
        CopyRows(in_, inOffset, PaddedStride, Syn0, 0, K);
        CopyRows(out_, outOffset, PaddedStride, Syn1, 0, K);
    }

    private void CopyRows(float[] from, int fromOffset, int fromStride, float[] to, int toOffset, int toStride)
    {
        for (int w = 0; w < V; w++)
            from.AsSpan(fromOffset + w * fromStride, K).CopyTo(to.AsSpan(toOffset + w * toStride, K));
    }

    private static int AlignedOffset(float[] pinned)
    {
        fixed (float* p = pinned)
            return (int)((64 - (long)p % 64) % 64 / sizeof(float));
    }
}
