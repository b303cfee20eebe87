using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Diachronic;

/// <summary>
/// The state of <see cref="DynamicBernoulliEngine"/> on a TorchSharp device (used when <c>Device</c> is not the CPU;
/// on the CPU the managed <see cref="DynamicBernoulliEngine"/> computes the same objective and dense Adam step), with manual gradients:
/// η_i = ρ^{(t)}_{w_i} · Σ_{j∈c_i} α_{w_j}; per target one positive log σ(η) and <c>ns</c> negatives log σ(−η)
/// from the global unigram^0.75; log-likelihood × N_t/n_t per slice; priors λ₀/2‖ρ_0‖² (+‖α‖² when α is trained)
/// and the drift penalty. All parameters, gradients and Adam moments are preallocated; rows are gathered with
/// <c>index_select</c>, gradients scattered with <c>index_add_</c>, the prior gradient and Adam run in place.
/// </summary>
internal sealed class DynamicBernoulliTorchEngine : IDynamicBernoulliState
{
    private readonly int _v, _k, _t;
    private readonly DiachronicEmbeddingsOptions _o;
    private readonly Device _device;
    private readonly Tensor? _freqWeight;
    private Tensor _alpha, _rho;
    private Tensor _gAlpha, _gRho, _mAlpha, _vAlpha, _mRho, _vRho, _tmpAlpha, _tmpRho, _diff;
    private int _stepAlpha, _stepRho;

    /// <summary>Creates the state; <paramref name="alpha0"/> (V×K) and <paramref name="rho0"/> (T×V×K) are the initial values.</summary>
    public DynamicBernoulliTorchEngine(int v, int k, int slices, DiachronicEmbeddingsOptions options, float[] alpha0, float[] rho0,
        long[][]? sliceCounts = null)
    {
        TorchRuntime.EnsureInitialized();
        _v = v;
        _k = k;
        _t = slices;
        _o = options;
        _device = TorchDevice.ToTorch(TorchDevice.Resolve(options.Device));
        _alpha = torch.tensor(alpha0, [v, k], device: _device);
        _rho = torch.tensor(rho0, [slices, v, k], device: _device);
        _gAlpha = torch.zeros_like(_alpha);
        _mAlpha = torch.zeros_like(_alpha);
        _vAlpha = torch.zeros_like(_alpha);
        _tmpAlpha = torch.zeros_like(_alpha);
        _gRho = torch.zeros_like(_rho);
        _mRho = torch.zeros_like(_rho);
        _vRho = torch.zeros_like(_rho);
        _tmpRho = torch.zeros_like(_rho);
        _diff = torch.zeros([Math.Max(1, slices - 1), v, k], device: _device);
        if (options.DriftRegularizer == DriftRegularizer.FrequencyAware && slices > 1)
        {
            if (sliceCounts is null)
                throw new ArgumentException("The frequency-aware penalty needs the slice counts.", nameof(sliceCounts));
            var w = new float[(slices - 1) * v];
            for (int t = 1; t < slices; t++)
            {
                for (int i = 0; i < v; i++)
                    w[(t - 1) * v + i] = (float)(1 + options.DriftPenaltyWeight / (1 + sliceCounts[t][i]));
            }
            _freqWeight = torch.tensor(w, [slices - 1, v, 1], device: _device);
        }
    }

    // TorchSharp Scalars are finalizable native objects: a temporary created by an implicit conversion can be
    // collected (and freed) while the native call that received its handle is still running, which corrupts the
    // value. Every Scalar is therefore created here, kept reachable in this list, and disposed after the call.
    private readonly List<Scalar> _scalars = [];

    private Scalar S(double value)
    {
        var s = value.ToScalar();
        _scalars.Add(s);
        return s;
    }

    private void ReleaseScalars()
    {
        foreach (var s in _scalars)
            s.Dispose();
        _scalars.Clear();
    }

    /// <summary>Whether α receives gradients (static phase) or is frozen (dynamic phase).</summary>
    public bool TrainAlpha { get; set; } = true;

    /// <summary>Random-walk precision λ used by <see cref="ComputeLossAndGradients"/>.</summary>
    public double Lambda { get; set; }

    public float[] Alpha => _alpha.cpu().data<float>().ToArray();

    public float[] Rho => _rho.cpu().data<float>().ToArray();

    public float[] GradAlpha => _gAlpha.cpu().data<float>().ToArray();

    public float[] GradRho => _gRho.cpu().data<float>().ToArray();

    /// <summary>Overwrites the parameters (tests: finite differences).</summary>
    public void SetParameters(float[]? alpha, float[]? rho)
    {
        using var _ = torch.no_grad();
        if (alpha is not null)
            _alpha.copy_(torch.tensor(alpha, [_v, _k]).to(_device));
        if (rho is not null)
            _rho.copy_(torch.tensor(rho, [_t, _v, _k]).to(_device));
    }

    /// <summary>
    /// The negative log-posterior of one minibatch, L = −Σ_t s_t (Σ log σ(η⁺) + Σ log σ(−η⁻)) + prior, and its
    /// gradients into the preallocated gradient buffers (overwritten). Returns L (the prior's value is included
    /// when <paramref name="withPriorValue"/>; it costs a few extra dense passes).
    /// </summary>
    public double ComputeLossAndGradients(IReadOnlyList<DbeSliceBatch> batch, bool withPriorValue = true)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        _gRho.zero_();
        if (TrainAlpha)
            _gAlpha.zero_();
        double loss = 0;
        int cs = 0, ns = 0;
        foreach (var b in batch)
        {
            int n = b.Targets.Length;
            if (n == 0)
                continue;
            cs = b.Contexts.Length / n;
            ns = b.Negatives.Length / n;
            var tgt = torch.tensor(b.Targets, device: _device);
            var ctx = torch.tensor(b.Contexts, device: _device);
            var neg = torch.tensor(b.Negatives, device: _device);
            var rhoT = _rho.select(0, b.Slice);
            var gRhoT = _gRho.select(0, b.Slice);
            var sigma = _alpha.index_select(0, ctx).view(n, cs, _k).sum(1);
            var rPos = rhoT.index_select(0, tgt);
            var etaPos = (rPos * sigma).sum(1);
            var rNeg = rhoT.index_select(0, neg).view(n, ns, _k);
            var etaNeg = torch.bmm(rNeg, sigma.unsqueeze(2)).squeeze(2);
            double ll = nn.functional.logsigmoid(etaPos).sum().item<float>() + nn.functional.logsigmoid(-etaNeg).sum().item<float>();
            loss -= b.Scale * ll;
            var gPos = torch.sigmoid(-etaPos).mul_(S(-b.Scale));
            var gNeg = torch.sigmoid(etaNeg).mul_(S(b.Scale));
            gRhoT.index_add_(0, tgt, gPos.unsqueeze(1) * sigma, S(1));
            gRhoT.index_add_(0, neg, (gNeg.unsqueeze(2) * sigma.unsqueeze(1)).view(n * ns, _k), S(1));
            if (TrainAlpha)
            {
                var gSigma = (gPos.unsqueeze(1) * rPos).add_(torch.bmm(gNeg.unsqueeze(1), rNeg).squeeze(1), S(1));
                _gAlpha.index_add_(0, ctx, gSigma.unsqueeze(1).expand(n, cs, _k).reshape(n * cs, _k), S(1));
            }
        }
        loss += AddPrior(withPriorValue);
        ReleaseScalars();
        return loss;
    }

    private double AddPrior(bool withValue)
    {
        double value = 0;
        double l0 = _o.PriorPrecision;
        var rho0 = _rho.select(0, 0);
        _gRho.select(0, 0).add_(rho0, S(l0));
        if (withValue)
            value += 0.5 * l0 * rho0.square().sum().item<float>();
        if (TrainAlpha)
        {
            _gAlpha.add_(_alpha, S(l0));
            if (withValue)
                value += 0.5 * l0 * _alpha.square().sum().item<float>();
        }
        if (_t < 2)
            return value;
        double lam = Lambda;
        int m = _t - 1;
        var d = _diff.narrow(0, 0, m);
        d.copy_(_rho.narrow(0, 1, m)).sub_(_rho.narrow(0, 0, m));
        double mu = _o.DriftPenaltyWeight;
        switch (_o.DriftRegularizer)
        {
            case DriftRegularizer.FrequencyAware:
                if (withValue)
                    value += 0.5 * lam * (d.square() * _freqWeight!).sum().item<float>();
                d.mul_(_freqWeight!);
                break;
            case DriftRegularizer.GroupLasso:
            {
                var norms = d.norm(2, true).clamp_min(S(1e-8));
                if (withValue)
                    value += 0.5 * lam * d.square().sum().item<float>() + mu * norms.sum().item<float>();
                var sub = d / norms;
                _gRho.narrow(0, 1, m).add_(sub, S(mu));
                _gRho.narrow(0, 0, m).add_(sub, S(-mu));
                break;
            }
            case DriftRegularizer.Anchored:
            {
                var a = _rho.narrow(0, 1, m) - rho0.unsqueeze(0);
                if (withValue)
                    value += 0.5 * lam * d.square().sum().item<float>() + mu * a.square().sum().item<float>();
                _gRho.narrow(0, 1, m).add_(a, S(2 * mu));
                _gRho.select(0, 0).add_(a.sum(0L, false), S(-2 * mu));
                break;
            }
            default:
                if (withValue)
                    value += 0.5 * lam * d.square().sum().item<float>();
                break;
        }
        // random walk part: ∂/∂ρ_t of λ/2 Σ‖Δ‖² = λ Δ_t − λ Δ_{t+1} (d already weighted for the frequency-aware variant)
        _gRho.narrow(0, 1, m).add_(d, S(lam));
        _gRho.narrow(0, 0, m).add_(d, S(-lam));
        return value;
    }

    /// <summary>One dense Adam step on the trained parameters (in place), then the hard-shrink projection if chosen.</summary>
    public double Step(IReadOnlyList<DbeSliceBatch> batch, double lr, bool withLossValue, Action? alongside = null)
    {
        // the draw on the host while the device works
        var beside = alongside is null ? null : Task.Run(alongside);
        double loss = ComputeLossAndGradients(batch, withLossValue);
        AdamStep(lr);
        beside?.GetAwaiter().GetResult();
        return loss;
    }

    public void Steps(IReadOnlyList<IReadOnlyList<DbeSliceBatch>> batches, double lr, Action? alongside = null)
    {
        for (int u = 0; u < batches.Count; u++)
            Step(batches[u], lr, withLossValue: false, u == 0 ? alongside : null);
    }

    public void AdamStep(double lr)
    {
        using var noGrad = torch.no_grad();
        if (TrainAlpha)
            Adam(_alpha, _gAlpha, _mAlpha, _vAlpha, _tmpAlpha, lr, ++_stepAlpha);
        Adam(_rho, _gRho, _mRho, _vRho, _tmpRho, lr, ++_stepRho);
        if (_o.DriftRegularizer == DriftRegularizer.HardShrink && _t > 1)
        {
            using var scope = torch.NewDisposeScope();
            double th = _o.HardShrinkThreshold;
            for (int t = 1; t < _t; t++)
            {
                var prev = _rho.select(0, t - 1);
                var cur = _rho.select(0, t);
                var delta = cur - prev;
                var kept = delta * (delta.abs() >= S(th)).to_type(delta.dtype);
                cur.copy_(prev.add(kept, S(1)));
            }
        }
        ReleaseScalars();
    }

    /// <summary><see cref="RowAdam"/>'s update (same constants) on whole tensors of the device.</summary>
    private void Adam(Tensor p, Tensor g, Tensor m, Tensor v, Tensor tmp, double lr, int step)
    {
        const double b1 = RowAdam.Beta1, b2 = RowAdam.Beta2, eps = RowAdam.Epsilon;
        m.mul_(S(b1)).add_(g, S(1 - b1));
        v.mul_(S(b2)).addcmul_(g, g, S(1 - b2));
        double bc1 = 1 - Math.Pow(b1, step), bc2 = 1 - Math.Pow(b2, step);
        tmp.copy_(v).sqrt_().div_(S(Math.Sqrt(bc2))).add_(S(eps));
        p.addcdiv_(m, tmp, S(-lr / bc1));
    }

    public void Dispose()
    {
        ReleaseScalars();
        foreach (var t in new[] { _alpha, _rho, _gAlpha, _gRho, _mAlpha, _vAlpha, _mRho, _vRho, _tmpAlpha, _tmpRho, _diff, _freqWeight })
            t?.Dispose();
    }
}
