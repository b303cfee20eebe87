using Allauzen.ML.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Allauzen.ML.Quantization;

/// <summary>
/// The n maps f₁..fₙ and the classifier p(i|x) of conditional quantization as one TorchSharp module: a ReLU trunk
/// <c>fc0 → … </c>, then one linear layer <c>heads</c> whose first n·d outputs are the raw points and last n the logits
/// (one layer rather than two: fewer kernels per step). With the sorted
/// parameterisation (d = 1) the raw outputs r give s = (r₀, softplus(r₁), …, softplus(r_{n−1})) and f = s·U with U the
/// upper-triangular matrix of ones, i.e. f₁ = a, f_{i+1} = f_i + softplus(b_i). Points are in standardised label units.
/// </summary>
internal sealed class QuantizerNetwork : nn.Module<Tensor, Tensor>
{
    private readonly Sequential _trunk;
    private readonly Linear _heads;
    private readonly Tensor? _firstMask;
    private readonly Tensor? _cumulative;

    public QuantizerNetwork(QuantizerArchitecture a) : base("ConditionalQuantizer")
    {
        Architecture = a;
        _trunk = nn.Sequential(LinearStack.Hidden(a.InputSize, a.HiddenSizes, () => nn.ReLU()));
        _heads = nn.Linear(LinearStack.OutputWidth(a.InputSize, a.HiddenSizes), a.Points * a.LabelSize + a.Points);
        if (a.Sorted)
        {
            var (mask, upper) = SortedConstants(a.Points);
            _firstMask = torch.tensor(mask.Select(v => v > 0).ToArray(), [1, a.Points]);
            _cumulative = torch.tensor(upper, [a.Points, a.Points]);
        }
        RegisterComponents();
        InitialiseSpread();
    }

    public QuantizerArchitecture Architecture { get; }

    /// <summary>The parameter names and shapes of the network <paramref name="a"/> describes, in <c>named_parameters</c> order.</summary>
    public static IEnumerable<(string Name, long[] Shape)> ParameterShapes(QuantizerArchitecture a)
    {
        long outputs = (long)a.Points * a.LabelSize + a.Points;
        return LinearStack.HiddenShapes(nameof(_trunk), a.InputSize, a.HiddenSizes).Concat(
        [
            ($"{nameof(_heads)}.weight", [outputs, LinearStack.OutputWidth(a.InputSize, a.HiddenSizes)]),
            ($"{nameof(_heads)}.bias", [outputs]),
        ]);
    }

    /// <summary>The mask (1, 0, …, 0) and the upper-triangular ones matrix U (row-major) of the sorted parameterisation.</summary>
    public static (float[] FirstMask, float[] Upper) SortedConstants(int n)
    {
        var mask = new float[n];
        mask[0] = 1;
        var upper = new float[n * n];
        for (int j = 0; j < n; j++)
        {
            for (int i = j; i < n; i++)
                upper[j * n + i] = 1;
        }
        return (mask, upper);
    }

    /// <summary>The linear layers in order, by name: fc0, fc1, …, then the two heads.</summary>
    public IEnumerable<(string Name, Linear Layer)> TrunkLayers() => LinearStack.LinearLayers(_trunk);

    /// <summary>The output layer: rows [0, n·d) give the raw points, rows [n·d, n·d + n) the logits.</summary>
    public Linear Heads => _heads;

    /// <summary>Points (flattened, standardised units) and logits side by side: [B, n·d + n].</summary>
    public override Tensor forward(Tensor x)
    {
        var (f, logits) = Forward(x);
        return torch.cat([f.flatten(1), logits], 1);
    }

    /// <summary>Points [B, n, d] (standardised units) and logits [B, n].</summary>
    public (Tensor Points, Tensor Logits) Forward(Tensor x)
    {
        var (f, logits) = ForwardFlat(x);
        return (f.view(-1, Architecture.Points, Architecture.LabelSize), logits);
    }

    /// <summary>The output layer's values [B, n·d + n]: the raw points, then the logits.</summary>
    public Tensor HeadsOutput(Tensor x) => _heads.forward(_trunk.forward(x));

    /// <summary>Points [B, n·d] (row-major n × d, standardised units) and logits [B, n].</summary>
    public (Tensor Points, Tensor Logits) ForwardFlat(Tensor x)
    {
        int nd = Architecture.Points * Architecture.LabelSize;
        var out_ = HeadsOutput(x);
        return (SortPoints(out_.narrow(1, 0, nd)), out_.narrow(1, nd, Architecture.Points));
    }

    /// <summary>
    /// The points from the raw outputs r [B, n·d]: r itself, or with the sorted parameterisation (r₀, softplus(r₁), …) · U.
    /// The mask selects exactly as the ONNX graph's r ⊙ m + softplus(r) ⊙ (1 − m) does; the mask and U are buffers, so
    /// they move with the module (no per-call device transfer).
    /// </summary>
    public Tensor SortPoints(Tensor raw) =>
        _firstMask is null ? raw : torch.where(_firstMask, raw, nn.functional.softplus(raw)).matmul(_cumulative!);

    /// <summary>
    /// The vector-Jacobian product of <see cref="SortPoints"/> at <paramref name="raw"/>: the gradient g with respect to
    /// the points gives g · Uᵀ ⊙ (1, sigmoid(r₁), …, sigmoid(r_{n−1})) with respect to the raw outputs (softplus′ = sigmoid).
    /// </summary>
    public Tensor SortPointsBackward(Tensor raw, Tensor grad)
    {
        if (_firstMask is null)
            return grad;
        using var kept = new KeptScalars();
        return grad.matmul(_cumulative!.t()).mul_(nn.functional.sigmoid(raw).masked_fill_(_firstMask, kept.Of(1)));
    }

    /// <summary>
    /// Starts the points spread over [−1, 1] standard deviations (biases only), so that the heads differ from the first step.
    /// </summary>
    private void InitialiseSpread()
    {
        int n = Architecture.Points, d = Architecture.LabelSize;
        if (n == 1)
            return;
        var bias = new float[n * d];
        if (Architecture.Sorted)
        {
            double gap = 2.0 / (n - 1);
            bias[0] = -1;
            for (int i = 1; i < n; i++)
                bias[i] = (float)Math.Log(Math.Exp(gap) - 1); // softplus⁻¹(gap)
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                for (int k = 0; k < d; k++)
                    bias[i * d + k] = (float)(-1 + 2.0 * i / (n - 1));
            }
        }
        using var _ = torch.no_grad();
        using var t = torch.tensor(bias);
        _heads.bias!.narrow(0, 0, n * d).copy_(t);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _trunk.Dispose();
            _heads.Dispose();
            _firstMask?.Dispose();
            _cumulative?.Dispose();
        }
        base.Dispose(disposing);
    }
}
