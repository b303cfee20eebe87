using System.Text.Json;
using Allauzen.ML.Foton;
using TorchSharp;
using static TorchSharp.torch;
using static Allauzen.ML.Tests.Foton.FotonFixture;

namespace Allauzen.ML.Tests.Foton;

/// <summary>Parity with the golden traces of Fixtures/Foton (independent float64 implementation of the note's §1).</summary>
[TestClass]
public sealed class FotonFixtureTests
{
    private static FotonActivation ActivationOf(JsonElement config) => config.GetProperty("activation").GetString() switch
    {
        "relu" => FotonActivation.Relu,
        "tanh" => FotonActivation.Tanh,
        "identity" => FotonActivation.Identity,
        var a => throw new InvalidDataException($"activation {a}"),
    };

    private static OrthogonalMlp Net(JsonElement config, Tensor[] weights)
    {
        var dims = config.GetProperty("dims").EnumerateArray().Select(d => d.GetInt32()).ToArray();
        return new OrthogonalMlp(new FotonArchitecture(dims[0], dims[1..^1], dims[^1], ActivationOf(config)), weights);
    }

    private static Tensor?[]? Masks(JsonElement step, ScalarType dtype) =>
        step.GetProperty("dropout_masks_scaled").ValueKind == JsonValueKind.Null ? null : [.. Tensors(step.GetProperty("dropout_masks_scaled"), dtype)];

    [TestMethod]
    [DataRow("foton_onestep_relu.json", ScalarType.Float64, 1e-12)]
    [DataRow("foton_onestep_relu.json", ScalarType.Float32, 1e-5)]
    [DataRow("foton_onestep_linear.json", ScalarType.Float64, 1e-12)]
    [DataRow("foton_onestep_linear.json", ScalarType.Float32, 1e-5)]
    [DataRow("foton_onestep_tanh.json", ScalarType.Float64, 1e-12)]
    [DataRow("foton_onestep_tanh.json", ScalarType.Float32, 1e-5)]
    [DataRow("foton_onestep_relu_dropout.json", ScalarType.Float64, 1e-12)]
    [DataRow("foton_onestep_relu_dropout.json", ScalarType.Float32, 1e-5)]
    public void OneStep_MatchesEveryStoredIntermediate(string file, ScalarType dtype, double tol)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var root = Load(file);
        var config = root.GetProperty("config");
        var s = root.GetProperty("steps")[0];
        var net = Net(config, Tensors(s.GetProperty("W_before"), dtype));
        var x = Tensor(s.GetProperty("batch").GetProperty("X"), dtype);
        var t = Tensor(s.GetProperty("batch").GetProperty("T_onehot"), dtype);
        var masks = Masks(s, dtype);

        var fT = net.FTranspose();
        Assert.IsLessThanOrEqualTo(tol, MaxAbsDiff(fT, Tensor(s.GetProperty("F_T_before"))), "F_T_before");
        var u = TwoPassOracle.Compute(net, x, t, masks, fT, config.GetProperty("ce_temperature").GetDouble());
        void Same(string what, Tensor[] ours, JsonElement stored)
        {
            var expected = Tensors(stored);
            Assert.AreEqual(expected.Length, ours.Length, what);
            for (int i = 0; i < ours.Length; i++)
                Assert.IsLessThanOrEqualTo(tol, MaxAbsDiff(ours[i], expected[i]), $"{what}[{i}]");
        }
        Same("clean.H", u.H, s.GetProperty("clean").GetProperty("H"));
        Same("clean.Y", [u.Y], JsonSerializer.SerializeToElement(new[] { s.GetProperty("clean").GetProperty("Y") }));
        Same("E", [u.E], JsonSerializer.SerializeToElement(new[] { s.GetProperty("E") }));
        Same("X_mod", [u.XMod], JsonSerializer.SerializeToElement(new[] { s.GetProperty("X_mod") }));
        Same("modulated.H", u.HMod, s.GetProperty("modulated").GetProperty("H"));
        Same("G", u.G, s.GetProperty("G"));

        double lr = config.GetProperty("lr").GetDouble();
        for (int i = 0; i < net.Weights.Length; i++)
            net.Weights[i].sub_(lr * u.G[i]);
        Same("W_after_sgd", net.Weights, s.GetProperty("W_after_sgd"));

        // Björck with the stored power-iteration start vectors: the reference rule, bit for bit up to rounding.
        Assert.IsTrue(s.GetProperty("bjorck_applied").GetBoolean());
        var starts = Tensors(s.GetProperty("bjorck_power_start_vectors"), dtype);
        var projected = net.Weights.Select((w, i) => Bjorck.Reference(w, 20, starts[i])).ToArray();
        Same("W_after (reference Björck)", projected, s.GetProperty("W_after"));
        // The warm-started projection reaches the same polar factor.
        var warm = net.Weights.Select(w => w.clone()).ToArray();
        foreach (var w in warm)
            Bjorck.ProjectWarm(w, 40, dtype == ScalarType.Float64 ? 1e-13 : 1e-6, out _);
        Same("W_after (warm Björck)", warm, s.GetProperty("W_after"));
        using var after = new OrthogonalMlp(net.Architecture, projected);
        Assert.IsLessThanOrEqualTo(tol, MaxAbsDiff(after.FTranspose(), Tensor(s.GetProperty("F_T_after"))), "F_T_after");
    }

    [TestMethod]
    [DataRow("foton_onestep_relu_dropout.json")]
    [DataRow("foton_onestep_tanh.json")]
    [DataRow("foton_onestep_linear.json")]
    public void LowMemorySchedule_GivesTheSameUpdates(string file)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var root = Load(file);
        var s = root.GetProperty("steps")[0];
        var net = Net(root.GetProperty("config"), Tensors(s.GetProperty("W_before")));
        var masks = Masks(s, ScalarType.Float64);
        var (g, y) = TwoPassOracle.Run(net, Tensor(s.GetProperty("batch").GetProperty("X")),
            Tensor(s.GetProperty("batch").GetProperty("T_onehot")), i => masks?[i], net.FTranspose(), 1.0);
        var expected = Tensors(s.GetProperty("G"));
        for (int i = 0; i < g.Length; i++)
            Assert.IsLessThanOrEqualTo(1e-12, MaxAbsDiff(g[i], expected[i]), $"G[{i}]");
        Assert.IsLessThanOrEqualTo(1e-12, MaxAbsDiff(y, Tensor(s.GetProperty("clean").GetProperty("Y"))), "logits");
    }

    [TestMethod]
    [DataRow("foton_onestep_linear.json")]
    [DataRow("foton_onestep_relu.json")]
    [DataRow("foton_onestep_tanh.json")]
    public void StoredGradients_LinearIsExact_OutputLayerExactForAnyActivation(string file)
    {
        using var scope = torch.NewDisposeScope();
        var root = Load(file);
        var config = root.GetProperty("config");
        var s = root.GetProperty("steps")[0];
        var net = Net(config, Tensors(s.GetProperty("W_before")));
        var x = Tensor(s.GetProperty("batch").GetProperty("X"));
        var labels = torch.tensor(s.GetProperty("batch").GetProperty("labels").EnumerateArray().Select(l => l.GetInt64()).ToArray());
        var u = TwoPassOracle.Compute(net, x, nn.functional.one_hot(labels, 4).to(ScalarType.Float64), null, net.FTranspose(), 1.0);
        var (grad, _) = BackpropGradient.Compute(net, x, labels, null, 1.0);
        var stored = Tensors(s.GetProperty("diagnostics").GetProperty("autograd_grad_mean_ce"));
        bool linear = config.GetProperty("activation").GetString() == "identity";
        for (int i = 0; i < grad.Length; i++)
        {
            Assert.IsLessThanOrEqualTo(1e-12, MaxAbsDiff(grad[i], stored[i]), $"our autograd vs stored, layer {i}");
            double rel = ((u.G[i] - grad[i]).norm() / grad[i].norm()).ToDouble();
            if (linear || i == grad.Length - 1)
                Assert.IsLessThanOrEqualTo(1e-12, rel, $"layer {i}: FOTON update must equal the gradient");
            else
                Assert.IsGreaterThan(1e-3, rel, $"layer {i}: a nonlinear hidden layer is only approximated");
        }
    }

    [TestMethod]
    [DataRow("foton_threesteps_relu.json")]
    [DataRow("foton_threesteps_relu_orthorate2.json")]
    public void ThreeSteps_TrainStepChainsWeightsAndRefreshesF(string file)
    {
        using var scope = torch.NewDisposeScope();
        var root = Load(file);
        var config = root.GetProperty("config");
        var steps = root.GetProperty("steps");
        int orthoRate = config.GetProperty("ortho_rate").GetInt32();
        var net = Net(config, Tensors(steps[0].GetProperty("W_before")));
        var o = new FotonOptions
        {
            Dropout = 0, LearningRate = config.GetProperty("lr").GetDouble(), ProjectionInterval = orthoRate,
            OrthogonalityTolerance = 1e-13, BjorckIterations = 40, BatchSize = config.GetProperty("batch_size_nominal").GetInt32(),
        };
        using var step = new FotonTrainStep(net, o, 1, torch.CPU);
        step.BeginEpoch(1);
        for (int k = 0; k < steps.GetArrayLength(); k++)
        {
            var s = steps[k];
            var x = Tensor(s.GetProperty("batch").GetProperty("X"));
            var labels = torch.tensor(s.GetProperty("batch").GetProperty("labels").EnumerateArray().Select(l => l.GetInt64()).ToArray());
            Assert.IsLessThanOrEqualTo(1e-12, MaxAbsDiff(step.Feedback!, Tensor(s.GetProperty("F_T_before"))), $"step {k + 1}: F before");
            step.TrainBatch(x, labels);
            Assert.AreEqual(s.GetProperty("step_counter_after_increment").GetInt64(), step.StepCounter);
            Assert.AreEqual((k + 1) % orthoRate == 0, s.GetProperty("bjorck_applied").GetBoolean());
            var expected = Tensors(s.GetProperty("W_after"));
            for (int i = 0; i < expected.Length; i++)
                Assert.IsLessThanOrEqualTo(1e-11, MaxAbsDiff(net.Weights[i], expected[i]), $"step {k + 1}, layer {i}");
            // F is refreshed after every step, also after the steps without projection.
            Assert.IsLessThanOrEqualTo(1e-11, MaxAbsDiff(step.Feedback!, Tensor(s.GetProperty("F_T_after"))), $"step {k + 1}: F after");
            Assert.IsLessThanOrEqualTo(1e-11, MaxAbsDiff(step.Feedback!, net.FTranspose()), $"step {k + 1}: F = W_L⋯W_0");
        }
        if (orthoRate == 2)
        {
            // After step 3 (no projection) the hidden layers have drifted from orthonormality.
            Assert.IsGreaterThan(0.01, Bjorck.OrthogonalityError(net.Weights[0]));
        }
        step.DetachNetwork().Dispose();
    }

    [TestMethod]
    public void DropoutMasks_AreSharedByBothPasses()
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var root = Load("foton_onestep_relu_dropout.json");
        var s = root.GetProperty("steps")[0];
        var net = Net(root.GetProperty("config"), Tensors(s.GetProperty("W_before")));
        var masks = Masks(s, ScalarType.Float64)!;
        var x = Tensor(s.GetProperty("batch").GetProperty("X"));
        var u = TwoPassOracle.Compute(net, x, Tensor(s.GetProperty("batch").GetProperty("T_onehot")), masks, net.FTranspose(), 1.0);
        long dropped = 0;
        for (int i = 0; i < masks.Length; i++)
        {
            var off = masks[i]!.eq(0);
            dropped += off.sum().ToInt64();
            Assert.AreEqual(0.0, u.H[i].masked_select(off).abs().sum().ToDouble(), $"clean pass, layer {i}");
            Assert.AreEqual(0.0, u.HMod[i].masked_select(off).abs().sum().ToDouble(), $"modulated pass, layer {i}");
        }
        Assert.AreEqual(37, dropped, "15 + 22 units dropped in the fixture");

        // The trainer's own masks: one draw per step, used by both passes, never the same draw twice.
        var o = new FotonOptions { Dropout = 0.5, HiddenSizes = [12, 12] };
        using var step = new FotonTrainStep(new OrthogonalMlp(net.Architecture, [.. net.Weights.Select(w => w.clone())]), o, 3, torch.CPU);
        using var drawn = step.DrawMasks(step.StepCounter, 8);
        var m1 = drawn.All()!;
        Assert.AreEqual(0.0, (m1[0]! - drawn.Layer(0)!).abs().sum().ToDouble(), "a mask asked for again within a step is the same");
        using var redrawn = step.DrawMasks(step.StepCounter, 8);
        Assert.AreEqual(0.0, (m1[0]! - redrawn.Layer(0)!).abs().sum().ToDouble(), "a mask is regenerated identically within a step");
        using var next = step.DrawMasks(step.StepCounter + 1, 8);
        Assert.IsGreaterThan(0.0, (m1[0]! - next.Layer(0)!).abs().sum().ToDouble(), "a new mask every step");
        var v = TwoPassOracle.Compute(step.Net, x, Tensor(s.GetProperty("batch").GetProperty("T_onehot")), m1, step.Feedback!, 1.0);
        for (int i = 0; i < m1.Length; i++)
        {
            var off = m1[i]!.eq(0);
            Assert.IsGreaterThan(0L, off.sum().ToInt64());
            Assert.AreEqual(0.0, v.HMod[i].masked_select(off).abs().sum().ToDouble(), $"trainer mask, modulated pass, layer {i}");
        }
    }

    [TestMethod]
    public void Bjorck_ReferenceMatchesFixture_WarmReachesPolarFactor_IllConditionedDoesNotConverge()
    {
        using var scope = torch.NewDisposeScope();
        var cases = Load("bjorck.json").GetProperty("cases");
        foreach (var c in cases.EnumerateArray())
        {
            string name = c.GetProperty("name").GetString()!;
            bool ill = name.StartsWith("ill", StringComparison.Ordinal);
            var start = Tensor(c.GetProperty("power_start_vector"));
            var result = Tensor(c.GetProperty("result"));
            var polar = Tensor(c.GetProperty("svd_polar_factor"));
            var w64 = Tensor(c.GetProperty("W"));
            Assert.IsLessThanOrEqualTo(1e-12, MaxAbsDiff(Bjorck.Reference(w64, 20, start), result), $"{name}: float64");
            var w32 = Tensor(c.GetProperty("W"), ScalarType.Float32);
            var r32 = Bjorck.Reference(w32, 20, start.to(ScalarType.Float32));
            Assert.IsLessThanOrEqualTo(1e-5, MaxAbsDiff(r32, result), $"{name}: float32");
            if (ill)
            {
                // 20 iterations do not converge when σ_min/σ_max = 1e-3: the error must show, not be hidden.
                double err = Bjorck.OrthogonalityError(Bjorck.Reference(w64, 20, start));
                Assert.IsTrue(err is > 5e-5 and < 1e-4, $"{name}: orthogonality error {err:E2} (fixture 7.9e-5)");
                continue;
            }
            Assert.IsLessThanOrEqualTo(1e-12, MaxAbsDiff(result, polar), $"{name}: polar factor");
            Assert.IsLessThanOrEqualTo(1e-5, Bjorck.OrthogonalityError(r32), $"{name}: float32 orthogonality");
            // Idempotence: projecting the result again changes nothing (reference rule with a fresh start vector; warm: 0 iterations).
            using var g = new Generator(5, torch.CPU);
            Assert.IsLessThanOrEqualTo(1e-12, MaxAbsDiff(Bjorck.Reference(result, 20, generator: g), result), $"{name}: idempotent");
            var again = result.clone();
            Assert.AreEqual(0, Bjorck.ProjectWarm(again, 20, 1e-10, out _), $"{name}: warm projection of an orthonormal matrix");
            Assert.AreEqual(0.0, MaxAbsDiff(again, result));
            // Warm projection from the raw matrix (no power iteration; Gershgorin scaling) also reaches UVᵀ.
            var warm = w64.clone();
            int it = Bjorck.ProjectWarm(warm, 100, 1e-14, out _);
            Assert.IsLessThanOrEqualTo(1e-10, MaxAbsDiff(warm, polar), $"{name}: warm ({it} iterations) vs UVᵀ");
            var warm32 = w32.clone();
            Bjorck.ProjectWarm(warm32, 100, 1e-6, out _);
            Assert.IsLessThanOrEqualTo(1e-5, Bjorck.OrthogonalityError(warm32), $"{name}: warm float32 orthogonality");
        }
    }
}
