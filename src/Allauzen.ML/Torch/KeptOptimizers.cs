using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Allauzen.ML.Torch;

/// <summary>
/// TorchSharp's Adam with its step's scalars held by <see cref="KeptScalars"/>: TorchSharp 0.107's own <c>step()</c>
/// converts β₁, 1 − β₁, the step size and the others to implicit (finalizer-freed) Scalars for every parameter at every
/// step, which a GC on another thread can free while libtorch reads them (see <see cref="KeptScalars"/>). The step
/// performs the same tensor operations in the same order with the same Scalars, so the parameters are bit-identical to
/// <c>torch.optim.Adam</c>'s (<c>KeptOptimizersTests</c>); everything else (parameter groups, learning-rate changes, state)
/// is the base class's. No AMSGrad, no maximisation.
/// </summary>
internal sealed class KeptAdam(IEnumerable<Parameter> parameters, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
    double weightDecay = 0) : Adam(parameters, lr, beta1, beta2, eps, weightDecay, amsgrad: false, maximize: false)
{
    /// <summary>One Adam step on every parameter with a gradient (decoupled: <paramref name="decoupledDecay"/>, AdamW).</summary>
    internal static void Step(Parameter param, Tensor expAvg, Tensor expAvgSq, long step, double lr, double beta1, double beta2, double eps,
        double weightDecay, bool decoupledDecay, KeptScalars kept)
    {
        var grad = param.grad!;
        if (decoupledDecay)
            param.mul_(kept.Of(1 - lr * weightDecay));
        double biasCorrection1 = 1 - Math.Pow(beta1, step);
        double biasCorrection2 = 1 - Math.Pow(beta2, step);
        if (!decoupledDecay && weightDecay != 0)
            grad = grad.add(param, alpha: kept.Of(weightDecay));
        expAvg.mul_(kept.Of(beta1)).add_(grad, alpha: kept.Of(1 - beta1));
        expAvgSq.mul_(kept.Of(beta2)).addcmul_(grad, decoupledDecay ? grad : grad.conj(), value: kept.Of(1 - beta2));
        var denom = (expAvgSq.sqrt() / kept.Of(Math.Sqrt(biasCorrection2))).add_(kept.Of(eps), KeptScalars.One);
        param.addcdiv_(expAvg, denom, value: kept.Of(-(lr / biasCorrection1)));
    }

    /// <summary>One Adam step on a group's parameters that have a gradient; <paramref name="state"/> counts the step and gives its moments.</summary>
    internal static void StepGroup(IEnumerable<Parameter> parameters, double lr, double beta1, double beta2, double eps, double weightDecay,
        bool decoupledDecay, Func<Parameter, (Tensor ExpAvg, Tensor ExpAvgSq, long Step)> state)
    {
        using var kept = new KeptScalars();
        foreach (var param in parameters)
        {
            if (param.grad is null)
                continue;
            var (m, v, step) = state(param);
            Step(param, m, v, step, lr, beta1, beta2, eps, weightDecay, decoupledDecay, kept);
        }
    }

    /// <inheritdoc/>
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var o = (Options)group.Options;
        StepGroup(group.Parameters, o.LearningRate!.Value, o.beta1!.Value, o.beta2!.Value, o.eps!.Value, o.weight_decay!.Value,
            decoupledDecay: false, p =>
            {
                var st = (State)_state[p.Handle]; // the step counter and the moments TorchSharp's own step would use
                return (st.exp_avg, st.exp_avg_sq, ++st.step);
            });
    }, closure);
}

/// <summary>TorchSharp's AdamW with its step's scalars held by <see cref="KeptScalars"/> (as <see cref="KeptAdam"/>; bit-identical to <c>torch.optim.AdamW</c>).</summary>
internal sealed class KeptAdamW(IEnumerable<Parameter> parameters, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
    double weightDecay = 0.01) : AdamW(parameters, lr, beta1, beta2, eps, weightDecay, amsgrad: false, maximize: false)
{
    /// <inheritdoc/>
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var o = (Options)group.Options;
        KeptAdam.StepGroup(group.Parameters, o.LearningRate!.Value, o.beta1!.Value, o.beta2!.Value, o.eps!.Value, o.weight_decay!.Value,
            decoupledDecay: true, p =>
            {
                var st = (State)_state[p.Handle]; // the step counter and the moments TorchSharp's own step would use
                return (st.exp_avg, st.exp_avg_sq, ++st.step);
            });
    }, closure);
}

/// <summary>TorchSharp's SGD (momentum, dampening, weight decay; no Nesterov, no maximisation) with its step's scalars held by <see cref="KeptScalars"/> (bit-identical to <c>torch.optim.SGD</c>).</summary>
internal sealed class KeptSgd(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double dampening = 0, double weightDecay = 0)
    : SGD(parameters, lr, momentum, dampening, weightDecay, nesterov: false, maximize: false)
{
    /// <inheritdoc/>
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var o = group.Options;
        double momentum = o.momentum!.Value, dampening = o.dampening!.Value, weightDecay = o.weight_decay!.Value, lr = o.LearningRate!.Value;
        using var kept = new KeptScalars();
        foreach (var param in group.Parameters)
        {
            var grad = param.grad;
            if (grad is null)
                continue;
            var state = (State)_state[param.Handle];
            if (weightDecay != 0)
                grad = grad.add(param, alpha: kept.Of(weightDecay));
            if (momentum != 0)
            {
                var buf = state.momentum_buffer;
                if (buf is null)
                {
                    buf = grad.clone().detach().DetachFromDisposeScope();
                    state.momentum_buffer = buf;
                }
                else
                    buf.mul_(kept.Of(momentum)).add_(grad, alpha: kept.Of(1 - dampening));
                grad = buf;
            }
            param.add_(grad, alpha: kept.Of(-lr));
        }
    }, closure);
}
