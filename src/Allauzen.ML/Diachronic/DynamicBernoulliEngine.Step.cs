using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace Allauzen.ML.Diachronic;

/// <summary>The fused training step of the managed dynamic Bernoulli state.</summary>
internal sealed partial class DynamicBernoulliEngine
{
    // Whether the gradient buffers may hold non-zero values at a step's start (after ComputeLossAndGradients).
    private bool _gradientsDense = true;

    // Rows whose gradient the likelihood wrote since the last fused step (ρ: slice-major T×V; α: V).
    private readonly byte[] _touchedRho, _touchedAlpha;

    // Words per block of the fused pass: a block's T rows of ρ, its gradient and both moments stay in the core's L2.
    private const int BlockWords = 32;

    /// <summary>
    /// <see cref="ComputeLossAndGradients"/> then <see cref="AdamStep"/> in one pass over blocks of words for the random-walk
    /// and hard-shrink priors. The likelihood leaves its gradient in the (otherwise zero) gradient buffers and marks the
    /// rows it wrote; then, block after block, the block's gradient rows are gathered into a small buffer (a touched row
    /// is moved there and cleared, an untouched one is +0 without reading the buffer), the prior's terms are added (the
    /// operations and order of <see cref="PriorOfWord"/>, so the same bits), and Adam moves the block's rows. A block is
    /// contiguous in every slice, so each operation runs over BlockWords·K floats at once, and only the touched gradient
    /// rows are read: the dense gradient clear and the separate prior and Adam passes over T×V×K floats are gone. The
    /// bits are those of the two-call form (<c>FusedStepGivesTheBitsOfComputeThenAdam</c>). The other regularisers, and
    /// steps that report the prior's value, take the two-call form.
    /// </summary>
    public double Step(IReadOnlyList<DbeSliceBatch> batch, double lr, bool withLossValue)
    {
        if (withLossValue || _o.DriftRegularizer is not (DriftRegularizer.RandomWalk or DriftRegularizer.HardShrink))
        {
            double value = ComputeLossAndGradients(batch, withLossValue);
            AdamStep(lr);
            return value;
        }
        if (_gradientsDense)
        {
            Array.Clear(_gRho);
            Array.Clear(_gAlpha);
            Array.Clear(_touchedRho);
            Array.Clear(_touchedAlpha);
            _gradientsDense = false;
        }
        double loss = NegativeLogLikelihood(batch, withValue: false);
        bool alpha = TrainAlpha;
        if (alpha)
            _adamAlpha.BeginStep(lr);
        _adamRho.BeginStep(lr);
        ForWords((from, to) =>
        {
            var g = new float[_t * BlockWords * _k];
            for (int w0 = from; w0 < to; w0 += BlockWords)
                FusedBlockStep(w0, Math.Min(to, w0 + BlockWords), alpha, g);
        });
        return loss;
    }

    /// <summary>Words [<paramref name="w0"/>, <paramref name="w1"/>)'s share of the fused step: gradient rows gathered into <paramref name="g"/>, prior terms, Adam, hard shrink.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    private void FusedBlockStep(int w0, int w1, bool alpha, float[] g)
    {
        int k = _k, len = (w1 - w0) * k;
        float l0 = (float)_o.PriorPrecision;
        if (alpha)
        {
            var ga = g.AsSpan(0, len);
            for (int w = w0; w < w1; w++)
                TakeGradient(_gAlpha, _touchedAlpha, w, ga.Slice((w - w0) * k, k));
            var a = _alpha.AsSpan(w0 * k, len);
            TensorPrimitives.MultiplyAdd(a, l0, ga, ga);
            _adamAlpha.Update(a, ga, w0 * k, ga);
        }
        for (int t = 0; t < _t; t++)
        {
            var gt = g.AsSpan(t * len, len);
            for (int w = w0; w < w1; w++)
                TakeGradient(_gRho, _touchedRho, t * _v + w, gt.Slice((w - w0) * k, k));
        }
        var g0 = g.AsSpan(0, len);
        TensorPrimitives.MultiplyAdd(Block(_rho, 0, w0, len), l0, g0, g0);
        float lam = (float)Lambda;
        for (int t = 1; t < _t; t++)
            RandomWalkGradient(Block(_rho, t, w0, len), Block(_rho, t - 1, w0, len), g.AsSpan(t * len, len), g.AsSpan((t - 1) * len, len), lam);
        for (int t = 0; t < _t; t++)
        {
            var gt = g.AsSpan(t * len, len);
            _adamRho.Update(Block(_rho, t, w0, len), gt, (t * _v + w0) * k, gt);
        }
        if (_o.DriftRegularizer == DriftRegularizer.HardShrink)
        {
            float th = (float)_o.HardShrinkThreshold;
            for (int t = 1; t < _t; t++)
                HardShrink(Block(_rho, t - 1, w0, len), Block(_rho, t, w0, len), th);
        }
    }

    /// <summary>Moves gradient row <paramref name="row"/> into <paramref name="into"/> and clears it if it was touched; else writes +0.</summary>
    private void TakeGradient(float[] grad, byte[] touched, int row, Span<float> into)
    {
        if (touched[row] == 0)
        {
            into.Clear();
            return;
        }
        var src = grad.AsSpan(row * _k, _k);
        src.CopyTo(into);
        src.Clear();
        touched[row] = 0;
    }

    /// <summary>Slice <paramref name="t"/>'s rows of words [<paramref name="w0"/>, w0 + len/K) in a slice-major T×V×K array.</summary>
    private Span<float> Block(float[] a, int t, int w0, int len) => a.AsSpan((t * _v + w0) * _k, len);
}
