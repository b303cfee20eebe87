using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

/// <summary>
/// In-place optimizer on plain weight tensors, fed with the per-layer updates G (forward-only or
/// autograd): SGD (with PyTorch's momentum convention: v ← μv + d, W ← W − ηv), Adam (bias-corrected,
/// L2 weight decay added to G) or AdamW (decoupled decay). Its state tensors live outside the
/// per-step dispose scope.
/// </summary>
internal sealed class WeightOptimizer(OptimizerKind kind, double momentum, double weightDecay) : IDisposable
{
    private const double Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8;
    private Tensor[]? _m;
    private Tensor[]? _v;
    private long _t;

    /// <summary>Applies one step to every weight, in place.</summary>
    public void Step(Tensor[] weights, Tensor[] updates, double lr)
    {
        BeginStep();
        for (int i = 0; i < weights.Length; i++)
            StepLayer(i, weights.Length, weights[i], updates[i], lr);
    }

    /// <summary>Starts a step (the bias-correction counter); then call <see cref="StepLayer"/> once per layer.</summary>
    public void BeginStep() => _t++;

    /// <summary>Updates layer <paramref name="i"/> (of <paramref name="count"/>) in place.</summary>
    public void StepLayer(int i, int count, Tensor w, Tensor d, double lr)
    {
        using var k = new KeptScalars(); // explicit Scalars, alive for the whole update (same values, same bits)
        if (weightDecay > 0 && kind != OptimizerKind.AdamW)
            d = d.add(k.Of(weightDecay) * w, KeptScalars.One);
        switch (kind)
        {
            case OptimizerKind.Sgd:
                if (momentum > 0)
                {
                    var buf = State(ref _m, count, i, w);
                    if (_t == 1)
                        buf.copy_(d);
                    else
                        buf.mul_(k.Of(momentum)).add_(d, KeptScalars.One);
                    d = buf;
                }
                using (var step = (-lr).ToScalar())
                    w.add_(d, alpha: step);
                break;
            default:
                if (kind == OptimizerKind.AdamW && weightDecay > 0)
                    w.mul_(k.Of(1 - lr * weightDecay));
                var m = State(ref _m, count, i, w);
                var v = State(ref _v, count, i, w);
                m.mul_(k.Of(Beta1)).add_(k.Of(1 - Beta1) * d, KeptScalars.One);
                v.mul_(k.Of(Beta2)).add_(k.Of(1 - Beta2) * d * d, KeptScalars.One);
                double c1 = 1 - Math.Pow(Beta1, _t), c2 = 1 - Math.Pow(Beta2, _t);
                w.sub_(k.Of(lr) * (m / k.Of(c1)) / (v / k.Of(c2)).sqrt().add(k.Of(Eps), KeptScalars.One));
                break;
        }
    }

    private static Tensor State(ref Tensor[]? state, int count, int i, Tensor like)
    {
        state ??= new Tensor[count];
        if (state[i] is null)
            state[i] = torch.zeros_like(like).DetachFromDisposeScope();
        return state[i];
    }

    public void Dispose()
    {
        foreach (var t in (_m ?? []).Concat(_v ?? []))
            t?.Dispose();
    }
}
