using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Allauzen.ML.Onnx;
using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

[assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(Allauzen.ML.Lipschitz.LipschitzClassifierTransformer), Allauzen.ML.Lipschitz.LipschitzClassifierTransformer.Signature, "LipschitzClassifier")]

namespace Allauzen.ML.Lipschitz;

/// <summary>What a trained Lipschitz classifier records about its training (persisted as JSON).</summary>
internal sealed record LipschitzModelInfo(LipschitzArchitecture Architecture, bool Convolutional, LipschitzInputNormalization InputNormalization,
    float TrainingMin, float TrainingMax, LipschitzRadiusRule RadiusRule = LipschitzRadiusRule.Global);

/// <summary>
/// A trained certified classifier. It appends <c>Score</c>, <c>PredictedLabel</c> and <c>CertifiedRadius</c>, the L2 radius
/// (in the units of the feature column) within which the predicted class provably cannot change. By default
/// (<see cref="LipschitzRadiusRule.Global"/>) radius = (top1 − top2 logit)/(√2·<see cref="LipschitzConstant"/>); the
/// <see cref="RadiusRule"/> chosen in training may use the last layer's rows instead. The constraints are folded into plain
/// weights, so scoring, saving and the ONNX export (Gemm / Conv / Relu) use the same network.
/// </summary>
public sealed class LipschitzClassifierTransformer : AllauzenClassifierTransformerBase
{
    internal const string Signature = "ALZ-LIPC";
    private const int Version = 1;
    private PlainNetwork? _net;
    private readonly LipschitzModelInfo _info;
    private readonly double _radiusScale;

    // LastLayerPairwise: per predicted class i and class j, 1/(L_body·‖w_i − w_j‖) and 0 where the pair is ignored, plus a
    // "never" term (3e38) on the diagonal and where w_i = w_j (that pair's logit difference is constant: it cannot flip).
    private readonly float[]? _pairInverse, _pairNever;

    internal LipschitzClassifierTransformer(IHostEnvironment env, PlainNetwork net, LipschitzModelInfo info, string featureColumnName,
        int featureCount, LabelNames classes, string scoreColumnName, string predictedLabelColumnName)
        : base(env, "Allauzen.LipschitzClassifier", featureColumnName, featureCount, classes, scoreColumnName, predictedLabelColumnName,
            [LipschitzClassifierTrainer.CertifiedRadiusColumnName])
    {
        _net = net;
        _info = info;
        _radiusScale = 1 / (Math.Sqrt(2) * net.LipschitzConstant);
        if (info.RadiusRule != LipschitzRadiusRule.Global)
        {
            var head = net.Layers[^1];
            if (head.Kind != PlainKind.Dense || head.Relu || head.Dims[0] != NumberOfClasses)
                throw new InvalidDataException($"Radius rule {info.RadiusRule} needs a linear last layer with one row per class.");
            double body = net.LayerBounds.Take(net.Layers.Count - 1).Aggregate(1.0, (a, b) => a * b);
            var (w, shape) = head.T("W");
            int k = (int)shape[0], f = (int)shape[1];
            const double Round = 1 + 1e-12;
            if (info.RadiusRule == LipschitzRadiusRule.ClassWise)
            {
                double maxRow = Enumerable.Range(0, k).Max(i => Math.Sqrt(Enumerable.Range(0, f).Sum(j => (double)w[i * f + j] * w[i * f + j])));
                _radiusScale = 1 / (2 * body * maxRow * Round);
            }
            else
            {
                _pairInverse = new float[k * k];
                _pairNever = new float[k * k];
                for (int i = 0; i < k; i++)
                {
                    for (int j = 0; j < k; j++)
                    {
                        double d = 0;
                        for (int c = 0; c < f; c++)
                        {
                            double diff = (double)w[i * f + c] - w[j * f + c];
                            d += diff * diff;
                        }
                        d = Math.Sqrt(d) * body * Round;
                        if (i == j || d == 0)
                            _pairNever[i * k + j] = NeverRadius;
                        else
                            _pairInverse[i * k + j] = (float)(1 / d * (1 - 1e-6)); // rounded down: float32 only lowers the radius
                    }
                }
            }
        }
    }

    private const float NeverRadius = 3e38f;

    /// <summary>The rule of the <c>CertifiedRadius</c> column (chosen in <see cref="LipschitzClassifierOptions.RadiusRule"/>).</summary>
    public LipschitzRadiusRule RadiusRule => _info.RadiusRule;

    /// <summary>
    /// The same network (a copy of its weights) with another rule for the <c>CertifiedRadius</c> column, e.g. to compare the
    /// global and the last-layer pairwise certificates of one trained model. The caller disposes the new transformer.
    /// </summary>
    public LipschitzClassifierTransformer WithRadiusRule(LipschitzRadiusRule rule)
    {
        if (!Enum.IsDefined(rule))
            throw new ArgumentOutOfRangeException(nameof(rule), rule, "rule must be a defined LipschitzRadiusRule.");
        return new LipschitzClassifierTransformer(Env, new PlainNetwork(Net.Layers), _info with { RadiusRule = rule }, FeatureColumnName,
            FeatureCount, Classes, ScoreColumnName, PredictedLabelColumnName);
    }

    /// <summary>
    /// Certified upper bound on the L2 Lipschitz constant of the map features → logits: the product of per-layer bounds
    /// recomputed in float64 from the deployed weights (input scale × 1-Lipschitz blocks × the normalised last layer's norm).
    /// </summary>
    public double LipschitzConstant => Net.LipschitzConstant;

    /// <summary>Per-layer upper bounds whose product is <see cref="LipschitzConstant"/>.</summary>
    public IReadOnlyList<double> LayerBounds => Net.LayerBounds;

    /// <summary>The layer family the model was trained with.</summary>
    public LipschitzArchitecture Architecture => _info.Architecture;

    /// <summary>Whether the model is convolutional.</summary>
    public bool Convolutional => _info.Convolutional;

    /// <summary>Smallest feature value seen in training (the radius is in the units of this range).</summary>
    public float TrainingFeatureMin => _info.TrainingMin;

    /// <summary>Largest feature value seen in training.</summary>
    public float TrainingFeatureMax => _info.TrainingMax;

    /// <summary>Name of the certified radius column.</summary>
    public string CertifiedRadiusColumnName => LipschitzClassifierTrainer.CertifiedRadiusColumnName;

    private PlainNetwork Net => _net ?? throw new ObjectDisposedException(nameof(LipschitzClassifierTransformer));

private protected override torch.Device NetworkDevice => torch.CPU;

    private protected override Tensor ForwardLogits(Tensor features) => Net.Forward(features);

    private protected override double? LipschitzUpperBound() => LipschitzConstant;

    private protected override string ComponentName => "LipschitzClassifier";

    private protected override string LoaderSignature => Signature;

    private protected override int PayloadVersion => Version;

    /// <summary>
    /// Checks that <paramref name="data"/>'s feature values lie in the training range (widened by
    /// <paramref name="tolerance"/> × its span; default 2, which accepts held-out data scaled with the training statistics but
    /// catches e.g. raw 0–255 pixels given to a model trained on [0, 1]): data normalised differently from training would make
    /// the radius meaningless.
    /// Throws <see cref="InvalidOperationException"/> naming the column, the expected and the actual range.
    /// </summary>
    public void CheckInputRange(IDataView data, double tolerance = 2.0)
    {
        ArgumentNullException.ThrowIfNull(data);
        SchemaChecks.FeatureVector(data.Schema, FeatureColumnName, "feature", FeatureCount);
        double span = Math.Max(_info.TrainingMax - _info.TrainingMin, 1e-12);
        double lo = _info.TrainingMin - tolerance * span, hi = _info.TrainingMax + tolerance * span;
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        var col = data.Schema[FeatureColumnName];
        using var cursor = data.GetRowCursor([col]);
        var get = cursor.GetGetter<VBuffer<float>>(col);
        VBuffer<float> v = default;
        while (cursor.MoveNext())
        {
            get(ref v);
            foreach (var x in v.DenseValues())
            {
                min = Math.Min(min, x);
                max = Math.Max(max, x);
            }
        }
        if (min < lo || max > hi)
            throw new InvalidOperationException(
                $"Feature column '{FeatureColumnName}': expected values in the training range [{_info.TrainingMin:G4}, {_info.TrainingMax:G4}] " +
                $"(widened by {tolerance:G3} × the span), found [{min:G4}, {max:G4}]. The data seems normalised differently from the training data, so the " +
                "certified radius (in feature units) would not apply; apply the same normalisation as in training.");
    }

    /// <summary>Radius = (ln p_top1 − ln p_top2)/(√2·L): the logit margin recovered from the scores (p_top2 floored at 1e-30, which only lowers the radius).</summary>
    internal override void ComputeExtraColumns(ReadOnlySpan<float> scores, Span<float> values)
    {
        if (scores.Length < 2)
        {
            values[0] = 0;
            return;
        }
        float p1 = float.NegativeInfinity, p2 = float.NegativeInfinity;
        foreach (var p in scores)
        {
            if (p > p1)
            {
                p2 = p1;
                p1 = p;
            }
            else if (p > p2)
            {
                p2 = p;
            }
        }
        float logTop = MathF.Log(MathF.Max(p1, 1e-30f));
        if (_pairInverse is null)
        {
            values[0] = (logTop - MathF.Log(MathF.Max(p2, 1e-30f))) * (float)_radiusScale;
            return;
        }
        int k = scores.Length, top = 0;
        for (int j = 1; j < k; j++)
        {
            if (scores[j] > scores[top])
                top = j;
        }
        float radius = float.PositiveInfinity;
        for (int j = 0; j < k; j++)
        {
            float margin = logTop - MathF.Log(MathF.Max(scores[j], 1e-30f));
            radius = MathF.Min(radius, margin * _pairInverse[top * k + j] + _pairNever![top * k + j]);
        }
        values[0] = radius;
    }

    private protected override void SaveSettings(ModelPayloadWriter writer) => writer.WriteJson("info", _info);

    private protected override bool SavesFeatureCount => true;

    private protected override void SaveNetwork(ModelPayloadWriter writer) => Net.Save(writer);

    /// <summary>
    /// Rebuilds a transformer from its payload (registered in <see cref="AllauzenLoaders"/>). The settings are checked with
    /// <see cref="LipschitzClassifierOptions"/>' rules, the layer chain against the feature and class counts, and every
    /// tensor against its layer's shape, before the network is built.
    /// </summary>
    internal static LipschitzClassifierTransformer Load(IHostEnvironment env, ModelPayloadReader payload)
    {
        payload.RequireVersion(Version);
        var info = payload.ReadJson<LipschitzModelInfo>("info");
        payload.ValidateSettings("info", () => new LipschitzClassifierOptions
        {
            Architecture = info.Architecture, InputNormalization = info.InputNormalization, RadiusRule = info.RadiusRule,
        }.Validate());
        payload.Require(float.IsFinite(info.TrainingMin) && float.IsFinite(info.TrainingMax) && info.TrainingMin <= info.TrainingMax,
            "info", "the training range", $"[{info.TrainingMin}, {info.TrainingMax}] is not a finite interval");
        int featureCount = ClassifierHeader.ReadFeatureCount(payload);
        var layers = PlainNetwork.ReadLayers(payload, featureCount, out int outputs);
        var header = ClassifierHeader.Read(payload, outputs);
        if (info.RadiusRule != LipschitzRadiusRule.Global)
        {
            var head = layers[^1];
            payload.Require(head.Kind == PlainKind.Dense && !head.Relu, "layers", "the last layer",
                $"must be linear (Dense, no ReLU) for the radius rule {info.RadiusRule}");
        }
        TorchRuntime.EnsureInitialized();
        var net = new PlainNetwork(layers);
        try
        {
            return new LipschitzClassifierTransformer(env, net, info, header.FeatureColumnName, featureCount, header.Classes,
                header.ScoreColumnName, header.PredictedLabelColumnName);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    private protected override string EmitLogits(OnnxGraphBuilder graph, string features) => Net.EmitOnnx(graph, features);

    /// <summary>The <c>CertifiedRadius</c> column from the probabilities, as <see cref="ComputeExtraColumns"/> computes it.</summary>
    private protected override void EmitExtraColumns(OnnxGraphBuilder g, string probs, string argmax, IDictionary<string, string> columns)
    {
        if (NumberOfClasses < 2)
        {
            columns[CertifiedRadiusColumnName] = g.Node("Mul", [g.Node("ReduceMax", [probs], "p_max", ("axes", new[] { 1L }), ("keepdims", 1L)),
                g.Initializer("zero", [0f], 1)], "certified_radius");
            return;
        }
        var top = g.Node("TopK", [probs, g.Initializer("two", [2L], 1)], ["top_values", "top_indices"], ("axis", 1L));
        string logp = g.Node("Log", [g.Node("Max", [top[0], g.Initializer("floor", [1e-30f], 1)], "top_floored")], "top_log");
        string a = g.Node("Slice", [logp, g.Initializer("s0", [0L], 1), g.Initializer("e1", [1L], 1), g.Initializer("ax1", [1L], 1)], "log_p1");
        string b = g.Node("Slice", [logp, g.Initializer("s1", [1L], 1), g.Initializer("e2", [2L], 1), g.Initializer("ax1b", [1L], 1)], "log_p2");
        if (_pairInverse is null)
        {
            string margin = g.Node("Sub", [a, b], "margin");
            columns[CertifiedRadiusColumnName] = g.Node("Mul", [margin, g.Initializer("radius_scale", [(float)_radiusScale], 1)], "certified_radius");
            return;
        }
        int k = NumberOfClasses;
        string logAll = g.Node("Log", [g.Node("Max", [probs, g.Initializer("floor_all", [1e-30f], 1)], "p_floored")], "log_p");
        string margins = g.Node("Sub", [a, logAll], "margins");
        string topIndex = g.Node("Reshape", [argmax, g.Initializer("flat", [-1L], 1)], "top_index");
        string inv = g.Node("Gather", [g.Initializer("pair_inverse", _pairInverse, k, k), topIndex], "pair_inverse_rows", ("axis", 0L));
        string never = g.Node("Gather", [g.Initializer("pair_never", _pairNever!, k, k), topIndex], "pair_never_rows", ("axis", 0L));
        string ratios = g.Node("Add", [g.Node("Mul", [margins, inv], "pair_scaled"), never], "pair_radii");
        columns[CertifiedRadiusColumnName] = g.Node("ReduceMin", [ratios], "certified_radius", ("axes", new[] { 1L }), ("keepdims", 1L));
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _net?.Dispose();
            _net = null;
        }
        base.Dispose(disposing);
    }
}
