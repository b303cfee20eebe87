using Allauzen.ML.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Allauzen.ML.Lipschitz;

/// <summary>Last linear layer with L2-normalised rows (SLL's LinearNormalized). Its spectral norm enters the network's constant.</summary>
internal sealed class LinearNormalized : LipschitzModule
{
    internal readonly Parameter P;
    internal readonly Parameter b;

    public LinearNormalized(int inputs, int classes, ScalarType dtype = ScalarType.Float32) : base("LinearNormalized")
    {
        var p = torch.empty(classes, inputs, dtype: dtype);
        nn.init.xavier_normal_(p);
        P = Param(p);
        b = Param(torch.zeros(classes, dtype: dtype));
        RegisterComponents();
    }

    public Tensor Weight()
    {
        using var kept = new KeptScalars();
        return P / P.norm(1, keepdim: true, p: 2).clamp_min(kept.Of(1e-12));
    }

    public override Tensor forward(Tensor x) => x.matmul(Weight().t()).add(b, KeptScalars.One);

    public override PlainLayer Fold()
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var w = Weight();
        return PlainDense(w, b, false);
    }
}
