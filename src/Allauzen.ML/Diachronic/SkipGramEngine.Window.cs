using System.Diagnostics;
using System.Numerics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Allauzen.ML.Diachronic;

// The window-batched update rule (SkipGramUpdate.Window): the job loop, one window's step and its two matrix kernels.
internal sealed unsafe partial class SkipGramEngine
{
    // SkipGramUpdate.Window. For the center word w with context rows c_1..c_C (the random effective window) and targets
    // t_0 = w, t_1..t_{T−1} (negatives drawn once for the window, w itself skipped as in word2vec):
    //   g_ij = (label_j − σ(syn0[c_i]·syn1[t_j]))·lr, every score from the rows as they were before the window;
    //   syn0[c_i] += Σ_j g_ij syn1[t_j],  syn1[t_j] += Σ_i g_ij syn0[c_i].
    // Each of the C + T rows is loaded once per window (into L1, where the C·T scores and updates then run) instead
    // of C·(T + 1) scattered row visits per window, and the window draws T − 1 negatives instead of C·(T − 1).
    // The job is subsampled first into one stream (sentence ends kept); each window is drawn Lookahead windows before
    // it is trained, and the rows it will touch are prefetched then, so the cache misses overlap earlier windows' work.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private long RunJobWindow(int[] tokens, int[] ends, int s0, int s1, ulong[] aliasEntries, uint[] keep, int window, int negatives,
        float lr, ref SplitMix64 rng, int[] buf, int[] sentenceEnds, float[] inRowsArray, int inOffset, float[] outRowsArray,
        int outOffset, int rowStride, out long trained)
    {
        const int Ring = 4, Lookahead = Ring - 1;
        int k = K;
        int maxC = 2 * window, stride = negatives + 1;
        float** inRows = stackalloc float*[maxC];
        float** outRows = stackalloc float*[stride];
        float* g = stackalloc float[maxC * stride];
        var nv = stackalloc Vector<float>[maxC];
        int* lo = stackalloc int[Ring];
        int* hi = stackalloc int[Ring];
        int* nt = stackalloc int[Ring];
        int* tg = stackalloc int[Ring * stride];
        long words = 0;
        int n = 0, ns = 0;
        fixed (float* in0 = inRowsArray, out0 = outRowsArray, exp = ExpTable)
        fixed (int* tok = tokens, stream = buf, sEnds = sentenceEnds)
        fixed (uint* kp = keep)
        fixed (ulong* alias = aliasEntries)
        {
            // rows of `rowStride` floats (K, or K padded to 64 bytes) from the given offsets; the kernels touch K of them
            float* syn0 = in0 + inOffset, syn1 = out0 + outOffset;
            // 1. subsample the job into one stream
            for (int s = s0; s < s1; s++)
            {
                int start = s == 0 ? 0 : ends[s - 1];
                int end = ends[s];
                words += end - start;
                int n0 = n;
                for (int i = start; i < end; i++)
                {
                    int w = tok[i];
                    if (kp[w] == uint.MaxValue || (uint)rng.Next() < kp[w])
                        stream[n++] = w;
                }
                if (n > n0)
                    sEnds[ns++] = n;
            }
            trained = n;
            // 2. windows, drawn and prefetched Lookahead windows ahead of their training
            int aliasLength = aliasEntries.Length;
            int prepSentence = 0, prepStart = 0, prefetched = -1;
            for (int q = 0; q < n + Lookahead; q++)
            {
                if (q < n)
                {
                    while (q >= sEnds[prepSentence])
                        prepStart = sEnds[prepSentence++];
                    int slot = q & (Ring - 1);
                    int word = stream[q];
                    int b = (int)(((rng.Next() >> 32) * (ulong)window) >> 32);
                    int l = Math.Max(prepStart, q - window + b), h = Math.Min(sEnds[prepSentence] - 1, q + window - b);
                    lo[slot] = l;
                    hi[slot] = h;
                    int* t = tg + slot * stride;
                    int m = 0;
                    if (h > l)
                    {
                        t[m++] = word;
                        Prefetch(syn1 + (long)word * rowStride, k);
                        for (int d = 1; d <= negatives; d++)
                        {
                            int target = AliasTable.Sample(alias, aliasLength, rng.Next());
                            if (target == word)
                                continue;
                            t[m++] = target;
                            Prefetch(syn1 + (long)target * rowStride, k);
                        }
                        for (int c = Math.Max(l, prefetched + 1); c <= h; c++)
                            Prefetch(syn0 + (long)stream[c] * rowStride, k);
                        prefetched = Math.Max(prefetched, h);
                    }
                    nt[slot] = m;
                }
                int pos = q - Lookahead;
                if (pos < 0)
                    continue;
                int ps = pos & (Ring - 1);
                int nts = nt[ps];
                if (nts == 0)
                    continue;
                int nc = 0;
                for (int c = lo[ps]; c <= hi[ps]; c++)
                {
                    if (c != pos)
                        inRows[nc++] = syn0 + (long)stream[c] * rowStride;
                }
                int* ts = tg + ps * stride;
                for (int j = 0; j < nts; j++)
                    outRows[j] = syn1 + (long)ts[j] * rowStride;
                WindowStep(inRows, nc, outRows, nts, k, lr, g, nv, exp);
            }
        }
        return words;
    }

    /// <summary>One window's update: scores, gradients (target 0 is the positive), both matrices' summed deltas.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WindowStep(float** inRows, int nc, float** outRows, int nt, int k, float lr, float* g, Vector<float>* nv, float* exp)
    {
        Scores(inRows, nc, outRows, nt, k, g);
        for (int i = 0; i < nc; i++)
        {
            float* gi = g + i * nt;
            gi[0] = Gradient(gi[0], 1f, lr, exp);
            for (int j = 1; j < nt; j++)
                gi[j] = Gradient(gi[j], 0f, lr, exp);
        }
        ApplyWindow(inRows, nc, outRows, nt, k, g, nv);
    }

    /// <summary>
    /// One window-batched update (<see cref="SkipGramUpdate.Window"/>) on given rows, for tests: <paramref name="contexts"/>
    /// index <see cref="Syn0"/>, <paramref name="targets"/> index <see cref="Syn1"/> (the first is the positive).
    /// </summary>
    internal void TrainWindow(int[] contexts, int[] targets, float lr)
    {
        int nc = contexts.Length, nt = targets.Length;
        float** inRows = stackalloc float*[nc];
        float** outRows = stackalloc float*[nt];
        var g = new float[nc * nt];
        var nv = new Vector<float>[nc];
        fixed (float* syn0 = Syn0, syn1 = Syn1, exp = ExpTable, gp = g)
        fixed (Vector<float>* nvp = nv)
        {
            for (int i = 0; i < nc; i++)
                inRows[i] = syn0 + (long)contexts[i] * K;
            for (int j = 0; j < nt; j++)
                outRows[j] = syn1 + (long)targets[j] * K;
            WindowStep(inRows, nc, outRows, nt, K, lr, gp, nvp, exp);
        }
    }

    /// <summary>g[i·nt + j] = a_i·b_j, in 2×2 register blocks (an odd last row or column is computed twice).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scores(float** a, int na, float** b, int nb, int k, float* g)
    {
        int w = Vector<float>.Count;
        for (int i = 0; i < na; i += 2)
        {
            float* a0 = a[i], a1 = a[Math.Min(i + 1, na - 1)];
            for (int j = 0; j < nb; j += 2)
            {
                float* b0 = b[j], b1 = b[Math.Min(j + 1, nb - 1)];
                var s00 = Vector<float>.Zero;
                var s01 = Vector<float>.Zero;
                var s10 = Vector<float>.Zero;
                var s11 = Vector<float>.Zero;
                int c = 0;
                for (; c <= k - w; c += w)
                {
                    var x0 = Unsafe.ReadUnaligned<Vector<float>>(a0 + c);
                    var x1 = Unsafe.ReadUnaligned<Vector<float>>(a1 + c);
                    var y0 = Unsafe.ReadUnaligned<Vector<float>>(b0 + c);
                    var y1 = Unsafe.ReadUnaligned<Vector<float>>(b1 + c);
                    s00 = Vector.FusedMultiplyAdd(x0, y0, s00);
                    s01 = Vector.FusedMultiplyAdd(x0, y1, s01);
                    s10 = Vector.FusedMultiplyAdd(x1, y0, s10);
                    s11 = Vector.FusedMultiplyAdd(x1, y1, s11);
                }
                float f00 = Vector.Sum(s00), f01 = Vector.Sum(s01), f10 = Vector.Sum(s10), f11 = Vector.Sum(s11);
                if (w > 4 && c <= k - 4)
                {
                    // K = 100 with 8-float vectors leaves 4 columns: one 128-bit step instead of 4 scalar ones
                    var t00 = Vector128<float>.Zero;
                    var t01 = Vector128<float>.Zero;
                    var t10 = Vector128<float>.Zero;
                    var t11 = Vector128<float>.Zero;
                    for (; c <= k - 4; c += 4)
                    {
                        var x0 = Vector128.Load(a0 + c);
                        var x1 = Vector128.Load(a1 + c);
                        var y0 = Vector128.Load(b0 + c);
                        var y1 = Vector128.Load(b1 + c);
                        t00 = Vector128.FusedMultiplyAdd(x0, y0, t00);
                        t01 = Vector128.FusedMultiplyAdd(x0, y1, t01);
                        t10 = Vector128.FusedMultiplyAdd(x1, y0, t10);
                        t11 = Vector128.FusedMultiplyAdd(x1, y1, t11);
                    }
                    f00 += Vector128.Sum(t00);
                    f01 += Vector128.Sum(t01);
                    f10 += Vector128.Sum(t10);
                    f11 += Vector128.Sum(t11);
                }
                for (; c < k; c++)
                {
                    f00 += a0[c] * b0[c];
                    f01 += a0[c] * b1[c];
                    f10 += a1[c] * b0[c];
                    f11 += a1[c] * b1[c];
                }
                g[i * nb + j] = f00;
                if (j + 1 < nb)
                    g[i * nb + j + 1] = f01;
                if (i + 1 < na)
                {
                    g[(i + 1) * nb + j] = f10;
                    if (j + 1 < nb)
                        g[(i + 1) * nb + j + 1] = f11;
                }
            }
        }
    }

    /// <summary>
    /// in_i += Σ_j g_ij out_j and out_j += Σ_i g_ij in_i, both from the old rows: column block by column block, the
    /// input deltas are computed (into <paramref name="nv"/>) before the output rows change, and the output deltas
    /// before the input rows change. Repeated rows (a word twice in the window, a negative drawn twice) receive every
    /// delta, as in a minibatch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ApplyWindow(float** inRows, int nc, float** outRows, int nt, int k, float* g, Vector<float>* nv)
    {
        int w = Vector<float>.Count;
        int c = 0;
        for (; c <= k - w; c += w)
        {
            for (int i = 0; i < nc; i++)
            {
                float* gi = g + i * nt;
                var acc = Vector<float>.Zero;
                for (int j = 0; j < nt; j++)
                    acc = Vector.FusedMultiplyAdd(new Vector<float>(gi[j]), Unsafe.ReadUnaligned<Vector<float>>(outRows[j] + c), acc);
                nv[i] = acc;
            }
            for (int j = 0; j < nt; j++)
            {
                float* o = outRows[j] + c;
                var acc = Unsafe.ReadUnaligned<Vector<float>>(o);
                for (int i = 0; i < nc; i++)
                    acc = Vector.FusedMultiplyAdd(new Vector<float>(g[i * nt + j]), Unsafe.ReadUnaligned<Vector<float>>(inRows[i] + c), acc);
                Unsafe.WriteUnaligned(o, acc);
            }
            for (int i = 0; i < nc; i++)
                Unsafe.WriteUnaligned(inRows[i] + c, Unsafe.ReadUnaligned<Vector<float>>(inRows[i] + c) + nv[i]);
        }
        if (w > 4)
        {
            var nq = (Vector128<float>*)nv;
            for (; c <= k - 4; c += 4)
            {
                for (int i = 0; i < nc; i++)
                {
                    float* gi = g + i * nt;
                    var acc = Vector128<float>.Zero;
                    for (int j = 0; j < nt; j++)
                        acc = Vector128.FusedMultiplyAdd(Vector128.Create(gi[j]), Vector128.Load(outRows[j] + c), acc);
                    nq[i] = acc;
                }
                for (int j = 0; j < nt; j++)
                {
                    float* o = outRows[j] + c;
                    var acc = Vector128.Load(o);
                    for (int i = 0; i < nc; i++)
                        acc = Vector128.FusedMultiplyAdd(Vector128.Create(g[i * nt + j]), Vector128.Load(inRows[i] + c), acc);
                    acc.Store(o);
                }
                for (int i = 0; i < nc; i++)
                    (Vector128.Load(inRows[i] + c) + nq[i]).Store(inRows[i] + c);
            }
        }
        float* nf = (float*)nv;
        for (; c < k; c++)
        {
            for (int i = 0; i < nc; i++)
            {
                float* gi = g + i * nt;
                float acc = 0;
                for (int j = 0; j < nt; j++)
                    acc += gi[j] * outRows[j][c];
                nf[i] = acc;
            }
            for (int j = 0; j < nt; j++)
            {
                float acc = outRows[j][c];
                for (int i = 0; i < nc; i++)
                    acc += g[i * nt + j] * inRows[i][c];
                outRows[j][c] = acc;
            }
            for (int i = 0; i < nc; i++)
                inRows[i][c] += nf[i];
        }
    }
}
