using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Diachronic;

/// <summary>One slice's part of a minibatch: target ids, their context ids (n×cs) and negatives (n×ns), and the
/// likelihood scale N_t / n_t that puts the minibatch log-likelihood on the full-data scale.</summary>
internal sealed record DbeSliceBatch(int Slice, long[] Targets, long[] Contexts, long[] Negatives, double Scale);

/// <summary>
/// Dynamic Bernoulli embeddings (Rudolph &amp; Blei 2018) as a MAP fit in TorchSharp, with manual gradients:
/// η_i = ρ^{(t)}_{w_i} · Σ_{j∈c_i} α_{w_j}; per target one positive log σ(η) and <c>ns</c> negatives log σ(−η)
/// from the global unigram^0.75; log-likelihood × N_t/n_t per slice; priors λ₀/2‖ρ_0‖² (+‖α‖² when α is trained)
/// and the drift penalty. All parameters, gradients and Adam moments are preallocated; rows are gathered with
/// <c>index_select</c>, gradients scattered with <c>index_add_</c>, the prior gradient and Adam run in place.
/// </summary>
internal sealed class DynamicBernoulliTrainer : IDisposable
{
    private readonly int _v, _k, _t;
    private readonly DiachronicEmbeddingsOptions _o;
    private readonly Device _device;
    private readonly Tensor? _freqWeight;
    private Tensor _alpha, _rho;
    private Tensor _gAlpha, _gRho, _mAlpha, _vAlpha, _mRho, _vRho, _tmpAlpha, _tmpRho, _diff;
    private int _stepAlpha, _stepRho;

    /// <summary>Creates the state; <paramref name="alpha0"/> (V×K) and <paramref name="rho0"/> (T×V×K) are the initial values.</summary>
    public DynamicBernoulliTrainer(int v, int k, int slices, DiachronicEmbeddingsOptions options, float[] alpha0, float[] rho0,
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

    public int Slices => _t;

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

    private void Adam(Tensor p, Tensor g, Tensor m, Tensor v, Tensor tmp, double lr, int step)
    {
        const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
        m.mul_(S(b1)).add_(g, S(1 - b1));
        v.mul_(S(b2)).addcmul_(g, g, S(1 - b2));
        double bc1 = 1 - Math.Pow(b1, step), bc2 = 1 - Math.Pow(b2, step);
        tmp.copy_(v).sqrt_().div_(S(Math.Sqrt(bc2))).add_(S(eps));
        p.addcdiv_(m, tmp, S(-lr / bc1));
    }

    /// <summary>Starts a new phase: resets the Adam moments and step counters.</summary>
    public void ResetOptimizer()
    {
        using var noGrad = torch.no_grad();
        _mAlpha.zero_();
        _vAlpha.zero_();
        _mRho.zero_();
        _vRho.zero_();
        _stepAlpha = 0;
        _stepRho = 0;
    }

    public void Dispose()
    {
        ReleaseScalars();
        foreach (var t in new[] { _alpha, _rho, _gAlpha, _gRho, _mAlpha, _vAlpha, _mRho, _vRho, _tmpAlpha, _tmpRho, _diff, _freqWeight })
            t?.Dispose();
    }

    /// <summary>Bytes of model state for V words, K dimensions and T slices (parameters, gradients, two Adam moments, a temporary, drift buffer).</summary>
    public static long StateBytes(long v, long k, long t) => 4L * v * k * (5 * (t + 1) + Math.Max(1, t - 1) + 1);

    /// <summary>
    /// Fits the model: a static phase (α and one ρ shared by all slices, <see cref="DiachronicEmbeddingsOptions.StaticSteps"/>)
    /// then the dynamic phase (ρ_t := static ρ, α frozen, drift penalty, <see cref="DiachronicEmbeddingsOptions.DynamicSteps"/>).
    /// </summary>
    public static DiachronicFit Fit(DiachronicCorpus corpus, DiachronicEmbeddingsOptions o)
    {
        int v = corpus.VocabularySize, k = o.Dimensions, T = corpus.SliceCount;
        var rng = new SplitMix64(SkipGramEngine.Hash((ulong)o.Seed, 0xDBE, 0));
        var streams = Subsample(corpus, o.Subsampling, ref rng);
        var table = SkipGramEngine.BuildNegativeTable(corpus.TotalCounts);
        var alpha0 = new float[v * k];
        var rhoS = new float[v * k];
        for (int i = 0; i < alpha0.Length; i++)
        {
            alpha0[i] = (float)(rng.NextGaussian() / k);
            rhoS[i] = (float)(rng.NextGaussian() / k);
        }
        var cancel = o.CancellationToken;
        float[] alpha;
        float[] rhoStatic;
        using (var st = new DynamicBernoulliTrainer(v, k, 1, o, alpha0, rhoS))
        {
            st.TrainAlpha = true;
            for (int s = 0; s < o.StaticSteps; s++)
            {
                cancel.ThrowIfCancellationRequested();
                var batch = SampleBatch(streams, o, table, ref rng, staticPhase: true);
                bool report = o.Progress is not null && (s % 50 == 0 || s == o.StaticSteps - 1);
                double loss = st.ComputeLossAndGradients(batch, report);
                st.AdamStep(o.DynamicLearningRate);
                if (report)
                    o.Progress!.Report(new DiachronicProgress("static", -1, (s + 1.0) / o.StaticSteps, 0, loss / batch.Sum(b => b.Targets.Length * b.Scale)));
            }
            alpha = st.Alpha;
            rhoStatic = st.Rho;
        }
        var rho0 = new float[(long)T * v * k];
        for (int t = 0; t < T; t++)
            rhoStatic.CopyTo(rho0, (long)t * v * k);
        using var dyn = new DynamicBernoulliTrainer(v, k, T, o, alpha, rho0, corpus.SliceCounts) { TrainAlpha = false, Lambda = o.DriftPrecision };
        for (int s = 0; s < o.DynamicSteps; s++)
        {
            cancel.ThrowIfCancellationRequested();
            var batch = SampleBatch(streams, o, table, ref rng, staticPhase: false);
            bool report = o.Progress is not null && (s % 50 == 0 || s == o.DynamicSteps - 1);
            double loss = dyn.ComputeLossAndGradients(batch, report);
            dyn.AdamStep(o.DynamicLearningRate);
            if (report)
                o.Progress!.Report(new DiachronicProgress("dynamic", -1, (s + 1.0) / o.DynamicSteps, 0, loss / batch.Sum(b => b.Targets.Length * b.Scale)));
        }
        var rho = dyn.Rho;
        var vectors = new float[T][];
        var defined = new bool[T][];
        for (int t = 0; t < T; t++)
        {
            vectors[t] = rho.AsSpan(t * v * k, v * k).ToArray();
            defined[t] = Enumerable.Repeat(true, v).ToArray();
        }
        return new DiachronicFit(vectors, defined, 0, 0);
    }

    /// <summary>Subsamples each slice once (Rudolph: keep with probability min(1, √(s/f_w)), f_w over in-vocabulary tokens).</summary>
    internal static int[][] Subsample(DiachronicCorpus corpus, double sample, ref SplitMix64 rng)
    {
        var result = new int[corpus.SliceCount][];
        double total = corpus.TotalCounts.Sum();
        var keep = corpus.TotalCounts.Select(c => sample <= 0 || c == 0 ? 1.0 : Math.Min(1.0, Math.Sqrt(sample / (c / total)))).ToArray();
        for (int t = 0; t < corpus.SliceCount; t++)
        {
            var list = new List<int>(corpus.Tokens[t].Length);
            foreach (int w in corpus.Tokens[t])
            {
                if (keep[w] >= 1 || rng.NextDouble() < keep[w])
                    list.Add(w);
            }
            result[t] = list.ToArray();
        }
        return result;
    }

    /// <summary>From every slice, one contiguous window of n_t = ⌈N_t·fraction⌉ centres at a random offset.</summary>
    internal static List<DbeSliceBatch> SampleBatch(int[][] streams, DiachronicEmbeddingsOptions o, int[] table, ref SplitMix64 rng, bool staticPhase)
    {
        int cs = o.ContextSize, half = cs / 2, ns = o.DynamicNegatives;
        var batch = new List<DbeSliceBatch>(streams.Length);
        for (int t = 0; t < streams.Length; t++)
        {
            var s = streams[t];
            int centres = s.Length - cs;
            if (centres <= 0)
                continue;
            int n = Math.Max(1, Math.Min(centres, (int)Math.Ceiling(centres * o.BatchFraction)));
            int offset = centres == n ? 0 : rng.NextInt(centres - n + 1);
            var tg = new long[n];
            var cx = new long[n * cs];
            var ng = new long[n * ns];
            for (int j = 0; j < n; j++)
            {
                int i = offset + half + j;
                tg[j] = s[i];
                int c = 0;
                for (int d = -half; d <= half; d++)
                {
                    if (d != 0)
                        cx[j * cs + c++] = s[i + d];
                }
                for (int q = 0; q < ns; q++)
                    ng[j * ns + q] = table[rng.NextInt(table.Length)];
            }
            batch.Add(new DbeSliceBatch(staticPhase ? 0 : t, tg, cx, ng, centres / (double)n));
        }
        return batch;
    }
}
