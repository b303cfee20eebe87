using System.Numerics.Tensors;

namespace Allauzen.ML.Diachronic;

/// <summary>The fused training step of the managed dynamic Bernoulli state.</summary>
internal sealed partial class DynamicBernoulliEngine
{
    // Rows whose gradient the likelihood wrote since the last fused step (ρ: slice-major T×V; α: V).
    private readonly byte[] _touchedRho, _touchedAlpha;

    // Whether the gradient buffers may hold non-zero rows not marked as touched (after ComputeLossAndGradients).
    private bool _gradientsDense = true;

    /// <summary>
    /// <see cref="ComputeLossAndGradients"/> then <see cref="AdamStep"/> in one pass over the words for the random-walk
    /// and hard-shrink priors: per word, the gradient of each of its T rows is formed in a small buffer (the likelihood's
    /// row if the minibatch touched it, else +0; then the prior's terms, with the operations and order of
    /// <see cref="PriorOfWord"/>), the touched gradient rows are cleared for the next step, and Adam moves the rows. The
    /// dense gradient clear and the separate prior and Adam passes over T×V×K floats are gone; the bits are those of the
    /// two-call form (<c>FusedStepGivesTheBitsOfComputeThenAdam</c>). The other regularisers, and steps that report the
    /// prior's value, take the two-call form.
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
            var g = new float[_t * _k];
            var tmp = new float[_k];
            for (int w = from; w < to; w++)
                FusedWordStep(w, alpha, g, tmp);
        });
        return loss;
    }

    /// <summary>Word <paramref name="w"/>'s share of the fused step: gradient rows in <paramref name="g"/> (T×K), Adam, hard shrink.</summary>
    private void FusedWordStep(int w, bool alpha, float[] g, float[] tmp)
    {
        int k = _k;
        float l0 = (float)_o.PriorPrecision;
        if (alpha)
        {
            var ga = g.AsSpan(0, k);
            TakeGradient(_gAlpha, _touchedAlpha, w, ga);
            var a = Row(_alpha, 0, w);
            TensorPrimitives.MultiplyAdd(a, l0, ga, ga);
            _adamAlpha.Update(a, ga, w * k, tmp);
        }
        // a touched row's gradient is formed in place in the gradient buffer, an untouched one from +0 in the scratch
        for (int t = 0; t < _t; t++)
        {
            if (_touchedRho[t * _v + w] == 0)
                g.AsSpan(t * k, k).Clear();
        }
        var g0 = GradientRow(0, w, g);
        TensorPrimitives.MultiplyAdd(Row(_rho, 0, w), l0, g0, g0);
        float lam = (float)Lambda;
        for (int t = 1; t < _t; t++)
            RandomWalkGradient(Row(_rho, t, w), Row(_rho, t - 1, w), GradientRow(t, w, g), GradientRow(t - 1, w, g), lam);
        for (int t = 0; t < _t; t++)
        {
            var gt = GradientRow(t, w, g);
            _adamRho.Update(Row(_rho, t, w), gt, (t * _v + w) * k, tmp);
            if (_touchedRho[t * _v + w] != 0)
            {
                gt.Clear();
                _touchedRho[t * _v + w] = 0;
            }
        }
        if (_o.DriftRegularizer == DriftRegularizer.HardShrink)
            HardShrink(w, tmp);
    }

    /// <summary>Row (t, w) of ρ's gradient: the buffer's row when the minibatch touched it, else row t of <paramref name="scratch"/>.</summary>
    private Span<float> GradientRow(int t, int w, float[] scratch) =>
        _touchedRho[t * _v + w] != 0 ? _gRho.AsSpan((t * _v + w) * _k, _k) : scratch.AsSpan(t * _k, _k);

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
}
