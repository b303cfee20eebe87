using System.Runtime.CompilerServices;
using System.Numerics;
using System.Numerics.Tensors;
using Allauzen.ML.Torch;

namespace Allauzen.ML.Diachronic;

/// <summary>One slice's part of a minibatch: target ids, their context ids (n×cs) and negatives (n×ns), and the
/// likelihood scale N_t / n_t that puts the minibatch log-likelihood on the full-data scale.</summary>
internal sealed record DbeSliceBatch(int Slice, long[] Targets, long[] Contexts, long[] Negatives, double Scale);

/// <summary>The trainable state of the dynamic Bernoulli model: the objective's value and gradients on a minibatch, and a dense Adam step.</summary>
internal interface IDynamicBernoulliState : IDisposable
{
    /// <summary>Whether α receives gradients (static phase) or is frozen (dynamic phase).</summary>
    bool TrainAlpha { get; set; }

    /// <summary>Random-walk precision λ.</summary>
    double Lambda { get; set; }

    float[] Alpha { get; }

    float[] Rho { get; }

    float[] GradAlpha { get; }

    float[] GradRho { get; }

    /// <summary>Overwrites the parameters (tests: finite differences).</summary>
    void SetParameters(float[]? alpha, float[]? rho);

    /// <summary>
    /// The negative log-posterior of one minibatch, L = −Σ_t s_t (Σ log σ(η⁺) + Σ log σ(−η⁻)) + prior, and its gradients
    /// into the gradient buffers (overwritten). The prior's value is included when <paramref name="withPriorValue"/>.
    /// </summary>
    double ComputeLossAndGradients(IReadOnlyList<DbeSliceBatch> batch, bool withPriorValue = true);

    /// <summary>One dense Adam step on the trained parameters (in place), then the hard-shrink projection if chosen.</summary>
    void AdamStep(double lr);

    /// <summary>
    /// One training step: the parameters after <see cref="ComputeLossAndGradients"/> then <see cref="AdamStep"/>, with
    /// the same bits; the gradient buffers are left unspecified. Returns the loss (the prior's value included only when
    /// <paramref name="withLossValue"/>). <paramref name="alongside"/> (independent work: the next minibatch's draw) runs
    /// to completion during the step, on one of the step's own threads when the step has several.
    /// </summary>
    double Step(IReadOnlyList<DbeSliceBatch> batch, double lr, bool withLossValue, Action? alongside = null);

    /// <summary>
    /// One <see cref="Step"/> per minibatch of <paramref name="batches"/>, in order, without the loss: the same bits as
    /// the steps one by one. <paramref name="alongside"/> runs to completion during them.
    /// </summary>
    void Steps(IReadOnlyList<IReadOnlyList<DbeSliceBatch>> batches, double lr, Action? alongside = null);
}

/// <summary>
/// Dynamic Bernoulli embeddings (Rudolph &amp; Blei 2018) as a MAP fit, on the CPU with hand-written gradients:
/// η_i = ρ^{(t)}_{w_i} · Σ_{j∈c_i} α_{w_j}; per target one positive log σ(η) and <c>ns</c> negatives log σ(−η)
/// from the global unigram^0.75; log-likelihood × N_t/n_t per slice; priors λ₀/2‖ρ_0‖² (+‖α‖² when α is trained)
/// and the drift penalty. The likelihood gradient is scattered into the rows the minibatch touches; the prior gradient
/// and Adam (<see cref="RowAdam"/> on every row: the same dense Adam as <see cref="DynamicBernoulliTorchEngine"/>)
/// run word by word over the T rows of a word, in parallel over words (<c>Threads</c>; words are independent, so the
/// result does not depend on the thread count).
/// </summary>
internal sealed partial class DynamicBernoulliEngine : IDynamicBernoulliState
{
    private readonly int _v, _k, _t;
    private readonly DiachronicEmbeddingsOptions _o;
    private readonly float[]? _freqWeight;
    private readonly float[] _alpha, _rho;
    // the gradient arrays and α's moments, allocated at their first use: the fused steps need no gradient array, and
    // the dynamic phase never moves α
    private float[] _gAlpha = [], _gRho = [];
    private RowAdam? _adamAlphaState;
    private readonly RowAdam _adamRho;

    /// <summary>
    /// Creates the state; <paramref name="alpha0"/> (V×K) and <paramref name="rho0"/> (T×V×K) are the initial values,
    /// copied, or taken over when <paramref name="adopt"/> (the caller no longer uses them).
    /// </summary>
    public DynamicBernoulliEngine(int v, int k, int slices, DiachronicEmbeddingsOptions options, float[] alpha0, float[] rho0,
        long[][]? sliceCounts = null, bool adopt = false)
    {
        _v = v;
        _k = k;
        _t = slices;
        _o = options;
        _alpha = adopt ? alpha0 : (float[])alpha0.Clone();
        _rho = adopt ? rho0 : (float[])rho0.Clone();
        _adamRho = new RowAdam(_rho.Length);
        if (options.DriftRegularizer == DriftRegularizer.FrequencyAware && slices > 1)
        {
            if (sliceCounts is null)
                throw new ArgumentException("The frequency-aware penalty needs the slice counts.", nameof(sliceCounts));
            _freqWeight = new float[(slices - 1) * v];
            for (int t = 1; t < slices; t++)
            {
                for (int i = 0; i < v; i++)
                    _freqWeight[(t - 1) * v + i] = (float)(1 + options.DriftPenaltyWeight / (1 + sliceCounts[t][i]));
            }
        }
    }

    public bool TrainAlpha { get; set; } = true;

    public double Lambda { get; set; }

    public float[] Alpha => (float[])_alpha.Clone();

    public float[] Rho => (float[])_rho.Clone();

    public float[] GradAlpha => (float[])EnsureGradients()._gAlpha.Clone();

    public float[] GradRho => (float[])EnsureGradients()._gRho.Clone();

    private RowAdam AdamAlpha => _adamAlphaState ??= new RowAdam(_alpha.Length);

    /// <summary>Allocates the gradient arrays (zero) at their first use.</summary>
    private DynamicBernoulliEngine EnsureGradients()
    {
        if (_gRho.Length != _rho.Length)
        {
            _gAlpha = new float[_alpha.Length];
            _gRho = new float[_rho.Length];
        }
        return this;
    }

    public void SetParameters(float[]? alpha, float[]? rho)
    {
        alpha?.CopyTo(_alpha, 0);
        rho?.CopyTo(_rho, 0);
    }

    private Span<float> Row(float[] a, int t, long w) => a.AsSpan((int)(((long)t * _v + w) * _k), _k);

    public double ComputeLossAndGradients(IReadOnlyList<DbeSliceBatch> batch, bool withPriorValue = true)
    {
        EnsureGradients();
        Array.Clear(_gRho);
        if (TrainAlpha)
            Array.Clear(_gAlpha);
        return NegativeLogLikelihood(batch, withValue: true) + AddPrior(withPriorValue);
    }

    /// <summary>Adds the prior's gradient (every row) and returns its value (0 unless <paramref name="withValue"/>).</summary>
    private double AddPrior(bool withValue)
    {
        double value = 0;
        var gate = new object();
        ForWords((from, to) =>
        {
            var d = new float[_k];
            var a = new float[_k];
            double part = 0;
            for (int w = from; w < to; w++)
                part += PriorOfWord(w, withValue, d, a);
            if (withValue)
            {
                lock (gate)
                    value += part;
            }
        });
        return value;
    }

    private double PriorOfWord(int w, bool withValue, float[] d, float[] a)
    {
        double value = 0;
        float l0 = (float)_o.PriorPrecision;
        var rho0 = Row(_rho, 0, w);
        var g0 = Row(_gRho, 0, w);
        TensorPrimitives.MultiplyAdd(rho0, l0, g0, g0);
        if (withValue)
            value += 0.5 * l0 * TensorPrimitives.Dot(rho0, rho0);
        if (TrainAlpha)
        {
            var al = Row(_alpha, 0, w);
            var ga = Row(_gAlpha, 0, w);
            TensorPrimitives.MultiplyAdd(al, l0, ga, ga);
            if (withValue)
                value += 0.5 * l0 * TensorPrimitives.Dot(al, al);
        }
        float lam = (float)Lambda, mu = (float)_o.DriftPenaltyWeight;
        if (!withValue && _o.DriftRegularizer is DriftRegularizer.RandomWalk or DriftRegularizer.HardShrink)
        {
            // The random walk's gradient alone (no value wanted): the passes below fused into one loop per slice, with
            // the same operations per element in the same order (same bits; RandomWalkPriorFusedGivesThePassesBits).
            for (int t = 1; t < _t; t++)
                RandomWalkGradient(Row(_rho, t, w), Row(_rho, t - 1, w), Row(_gRho, t, w), Row(_gRho, t - 1, w), lam);
            return 0;
        }
        for (int t = 1; t < _t; t++)
        {
            var cur = Row(_rho, t, w);
            var gCur = Row(_gRho, t, w);
            var gPrev = Row(_gRho, t - 1, w);
            TensorPrimitives.Subtract(cur, Row(_rho, t - 1, w), d);
            double sq = TensorPrimitives.Dot(d, d);
            switch (_o.DriftRegularizer)
            {
                case DriftRegularizer.FrequencyAware:
                {
                    float fw = _freqWeight![(t - 1) * _v + w];
                    value += withValue ? 0.5 * lam * fw * sq : 0;
                    TensorPrimitives.Multiply(d, fw, d);
                    break;
                }
                case DriftRegularizer.GroupLasso:
                {
                    float norm = Math.Max(MathF.Sqrt((float)sq), 1e-8f);
                    value += withValue ? 0.5 * lam * sq + mu * norm : 0;
                    TensorPrimitives.MultiplyAdd(d, mu / norm, gCur, gCur);
                    TensorPrimitives.MultiplyAdd(d, -mu / norm, gPrev, gPrev);
                    break;
                }
                case DriftRegularizer.Anchored:
                {
                    TensorPrimitives.Subtract(cur, rho0, a);
                    value += withValue ? 0.5 * lam * sq + mu * TensorPrimitives.Dot(a, a) : 0;
                    TensorPrimitives.MultiplyAdd(a, 2 * mu, gCur, gCur);
                    TensorPrimitives.MultiplyAdd(a, -2 * mu, g0, g0);
                    break;
                }
                default:
                    value += withValue ? 0.5 * lam * sq : 0;
                    break;
            }
            // random walk: ∂/∂ρ_t of λ/2 Σ‖Δ‖² = λ Δ_t − λ Δ_{t+1} (Δ already weighted for the frequency-aware variant)
            TensorPrimitives.MultiplyAdd(d, lam, gCur, gCur);
            TensorPrimitives.MultiplyAdd(d, -lam, gPrev, gPrev);
        }
        return value;
    }

    /// <summary>g_cur += λ(cur − prev), g_prev −= λ(cur − prev), element by element (products and sums rounded separately).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised at once: a fit is too short for tiered JIT to pay off
    internal static void RandomWalkGradient(ReadOnlySpan<float> cur, ReadOnlySpan<float> prev, Span<float> gCur, Span<float> gPrev, float lam)
    {
        int i = 0, n = cur.Length;
        float nlam = -lam;
        if (Vector.IsHardwareAccelerated && n >= Vector<float>.Count)
        {
            var vl = new Vector<float>(lam);
            var vn = new Vector<float>(nlam);
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                var d = new Vector<float>(cur[i..]) - new Vector<float>(prev[i..]);
                (d * vl + new Vector<float>(gCur[i..])).CopyTo(gCur[i..]);
                (d * vn + new Vector<float>(gPrev[i..])).CopyTo(gPrev[i..]);
            }
        }
        for (; i < n; i++)
        {
            float d = cur[i] - prev[i];
            gCur[i] = d * lam + gCur[i];
            gPrev[i] = d * nlam + gPrev[i];
        }
    }

    public void AdamStep(double lr)
    {
        EnsureGradients();
        bool alpha = TrainAlpha;
        if (alpha)
            AdamAlpha.BeginStep(lr);
        _adamRho.BeginStep(lr);
        ForWords((from, to) =>
        {
            var tmp = new float[_k];
            for (int w = from; w < to; w++)
            {
                if (alpha)
                    AdamAlpha.Update(Row(_alpha, 0, w), Row(_gAlpha, 0, w), w * _k, tmp);
                for (int t = 0; t < _t; t++)
                    _adamRho.Update(Row(_rho, t, w), Row(_gRho, t, w), (t * _v + w) * _k, tmp);
                if (_o.DriftRegularizer == DriftRegularizer.HardShrink)
                    HardShrink(w);
            }
        });
    }

    /// <summary>Per-coordinate drifts |ρ_t − ρ_{t−1}| &lt; θ are set to zero, slice after slice.</summary>
    private void HardShrink(int w)
    {
        float th = (float)_o.HardShrinkThreshold;
        for (int t = 1; t < _t; t++)
            HardShrink(Row(_rho, t - 1, w), Row(_rho, t, w), th);
    }

    /// <summary>cur[i] = prev[i] + (|cur[i] − prev[i]| ≥ θ ? cur[i] − prev[i] : 0).</summary>
    private static void HardShrink(ReadOnlySpan<float> prev, Span<float> cur, float th)
    {
        for (int i = 0; i < cur.Length; i++)
        {
            float d = cur[i] - prev[i];
            cur[i] = prev[i] + (Math.Abs(d) >= th ? d : 0);
        }
    }

    /// <summary>Runs <paramref name="body"/>(from, to) over blocks of words on up to <c>Threads</c> threads.</summary>
    private void ForWords(Action<int, int> body)
    {
        int threads = Math.Min(_o.Threads, Math.Max(1, _v / 256));
        if (threads <= 1)
        {
            body(0, _v);
            return;
        }
        int block = (_v + threads - 1) / threads;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, i => body(i * block, Math.Min(_v, (i + 1) * block)));
    }

    public void Dispose()
    {
    }

    /// <summary>The managed state on the CPU, the TorchSharp state on another device.</summary>
    internal static IDynamicBernoulliState Create(int v, int k, int slices, DiachronicEmbeddingsOptions o, float[] alpha0, float[] rho0,
        long[][]? sliceCounts = null) => TorchDevice.Resolve(o.Device) == "cpu"
        ? new DynamicBernoulliEngine(v, k, slices, o, alpha0, rho0, sliceCounts, adopt: true)
        : new DynamicBernoulliTorchEngine(v, k, slices, o, alpha0, rho0, sliceCounts);
}
