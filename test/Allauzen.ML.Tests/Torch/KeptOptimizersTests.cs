using Allauzen.ML.Torch;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Allauzen.ML.Tests.Torch;

/// <summary>
/// The optimizers whose step holds its Scalars (<see cref="KeptAdam"/>, <see cref="KeptAdamW"/>, <see cref="KeptSgd"/>)
/// against TorchSharp's own: the same operations with the same Scalars, so after several steps on the same network and
/// data the parameters have the same bits (one machine, the same native calls: exact comparison).
/// </summary>
[TestClass]
public sealed class KeptOptimizersTests
{
    private static Sequential Network(long seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(nn.Linear(7, 16), nn.Tanh(), nn.Linear(16, 3));
    }

    private static int[] Bits(Sequential net) =>
        net.parameters().SelectMany(p => p.detach().contiguous().data<float>().ToArray()).Select(BitConverter.SingleToInt32Bits).ToArray();

    private static void Train(Sequential net, optim.Optimizer optimizer, Tensor x, Tensor y, int steps, double changeLrTo)
    {
        for (int s = 0; s < steps; s++)
        {
            if (s == steps / 2)
                TrainingLoop.SetLearningRate(optimizer, changeLrTo);
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(net.forward(x), y);
            loss.backward();
            optimizer.step();
        }
    }

    [TestMethod]
    [DataRow("adam", 0.0)]
    [DataRow("adam", 0.01)]
    [DataRow("adamw", 0.01)]
    [DataRow("sgd", 0.0)]
    [DataRow("sgd", 0.001)]
    public void KeptOptimizersGiveTorchSharpsBits(string kind, double weightDecay)
    {
        using var gen = new Generator(3);
        using var x = randn([32, 7], generator: gen);
        using var y = randint(0, 3, [32], generator: gen);
        var nets = new[] { Network(11), Network(11) };
        optim.Optimizer Make(Sequential net, bool kept) => (kind, kept) switch
        {
            ("adam", false) => optim.Adam(net.parameters(), 0.01, 0.9, 0.999, 1e-8, weightDecay, false, false),
            ("adam", true) => new KeptAdam(net.parameters(), 0.01, 0.9, 0.999, 1e-8, weightDecay),
            ("adamw", false) => optim.AdamW(net.parameters(), 0.01, 0.9, 0.999, 1e-8, weightDecay, false, false),
            ("adamw", true) => new KeptAdamW(net.parameters(), 0.01, 0.9, 0.999, 1e-8, weightDecay),
            ("sgd", false) => optim.SGD(net.parameters(), 0.05, 0.9, 0, weightDecay, false, false),
            _ => new KeptSgd(net.parameters(), 0.05, 0.9, 0, weightDecay),
        };
        CollectionAssert.AreEqual(Bits(nets[0]), Bits(nets[1]), "the same initial parameters");
        var before = Bits(nets[0]);
        using (var reference = Make(nets[0], kept: false))
            Train(nets[0], reference, x, y, 6, 0.003);
        using (var kept = Make(nets[1], kept: true))
            Train(nets[1], kept, x, y, 6, 0.003);
        CollectionAssert.AreEqual(Bits(nets[0]), Bits(nets[1]), $"{kind} (weight decay {weightDecay}): parameters after 6 steps");
        CollectionAssert.AreNotEqual(before, Bits(nets[1]), "the steps moved the parameters");
    }
}
