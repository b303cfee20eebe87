using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Lipschitz;

/// <summary>
/// Spectral rescaling (Delattre, Barthélemy, Allauzen 2024), dense: M ← (M/‖M‖_F)(M/‖M‖_F)ᵀ n times from M = W, then
/// t_i = (Σ_j |M_ij|)^{2^{−n}}·exp(L·2^{−n}) and W_SR = diag(1/t)·W (one scale per <b>output</b> row). n = 1 is AOL on
/// rows; n → ∞ tends to spectral normalisation. Optional ReLU.
/// </summary>
internal sealed class SrDense : RescaledDense
{
    private readonly int _n;

    public SrDense(int inputs, int outputs, int iterations, bool relu, ScalarType dtype = ScalarType.Float32)
        : base("SrDense", inputs, outputs, relu, dtype)
    {
        _n = iterations;
        RegisterComponents();
    }

    public Tensor T()
    {
        var (m, logScale) = GramIteration.RescaledGramPowers(P, _n);
        using var kept = new KeptScalars();
        var p = kept.Of(Math.Pow(2, -_n));
        return m.abs().sum(1).pow(p) * (logScale * p).exp();
    }

    public override Tensor Weight() => P * SafeInv(T()).unsqueeze(1);
}

/// <summary>
/// Spectral rescaling of a convolution: the same iteration with kkt ← conv2d(kkt, kkt, padding = S−1), one t per
/// <b>output</b> channel, K_SR = K / t. Valid for zero padding (the bound is on the bi-infinite Toeplitz operator).
/// </summary>
internal sealed class SrConv : RescaledConv
{
    private readonly int _n;

    public SrConv(int inChannels, int outChannels, int kernel, int height, int width, int iterations, bool relu,
        ScalarType dtype = ScalarType.Float32) : base("SrConv", inChannels, outChannels, kernel, height, width, relu, dtype)
    {
        _n = iterations;
        RegisterComponents();
    }

    public Tensor T()
    {
        var kkt = (Tensor)P;
        var logScale = torch.zeros([], dtype: kkt.dtype);
        using var kept = new KeptScalars();
        Scalar tiny = kept.Of(1e-30), two = kept.Of(2);
        for (int i = 0; i < _n; i++)
        {
            var c = kkt.norm().clamp_min(tiny).detach();
            kkt = kkt / c;
            logScale = two * logScale.add(c.log(), KeptScalars.One);
            kkt = SelfCorrelation(kkt);
        }
        var p = kept.Of(Math.Pow(2, -_n));
        return kkt.abs().sum([1, 2, 3]).pow(p) * (logScale * p).exp();
    }

    public override Tensor Weight() => P * SafeInv(T()).view(-1, 1, 1, 1);
}
