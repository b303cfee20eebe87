using Allauzen.ML.Persistence;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Synthetic;

/// <summary>The persisted shape of a latent decoder (JSON), checked before its tensors are read.</summary>
/// <param name="FeatureDimensions">D: the size of the feature column the generator emits.</param>
/// <param name="LatentDimension">d: the size of the codes the flow runs on.</param>
/// <param name="HiddenSizes">The encoder's hidden widths; the decoder uses them in reverse order.</param>
/// <param name="TrainedOnPrivateData">True when the autoencoder saw the private rows (no public rows were given).</param>
/// <param name="LowerBounds">Public lower bounds the decoded values are clamped to, or null.</param>
/// <param name="UpperBounds">Public upper bounds the decoded values are clamped to, or null.</param>
internal sealed record LatentArchitecture(int FeatureDimensions, int LatentDimension, int[] HiddenSizes, bool TrainedOnPrivateData,
    float[]? LowerBounds, float[]? UpperBounds)
{
    /// <summary>Widths of the decoder's layers from the code to the output: d → h_last → … → h_0 → D.</summary>
    public int[] DecoderWidths => [LatentDimension, .. HiddenSizes.Reverse(), FeatureDimensions];
}

/// <summary>
/// The autoencoder of the latent mode. The encoder (D → hidden → d, ReLU, then division by the norm) maps a
/// standardised row to a unit-norm code, so every code lies in the unit ball the sensitivity bound of the flow needs,
/// by construction (as the reference's normalised encoder does). The decoder (d → reversed hidden → D, ReLU, linear
/// output) maps codes back; it is the only part kept by the generator, with the standardisation (mean, scale).
/// </summary>
internal sealed class LatentAutoencoder
{
    private readonly float[][] _weights;
    private readonly float[][] _biases;
    private readonly float[] _mean;
    private readonly float[] _scale;

    private LatentAutoencoder(LatentArchitecture architecture, float[] mean, float[] scale, float[][] weights, float[][] biases)
    {
        Architecture = architecture;
        (_mean, _scale) = (mean, scale);
        (_weights, _biases) = (weights, biases);
    }

    public LatentArchitecture Architecture { get; }

    /// <summary>
    /// Trains the autoencoder on <paramref name="rows"/> (n×D, row-major) with Adam on the mean squared reconstruction
    /// error of the standardised rows, and returns it with the encoder (to encode the private rows once).
    /// </summary>
    public static (LatentAutoencoder Decoder, Func<float[], int, float[]> Encode) Train(float[] rows, int n, int featureDimensions,
        LatentAutoencoderOptions o, bool trainedOnPrivateData, float[]? lowerBounds, float[]? upperBounds, CancellationToken cancellationToken)
    {
        if (n < 1)
            throw new InvalidOperationException("The latent autoencoder has no training row.");
        int d = featureDimensions;
        var (mean, scale) = Standardisation(rows, n, d);
        var a = new LatentArchitecture(d, o.LatentDimension, [.. o.HiddenSizes], trainedOnPrivateData, lowerBounds?.ToArray(), upperBounds?.ToArray());
        TorchRuntime.SetSeed(o.Seed);
        using var scope = torch.NewDisposeScope();
        var encoder = Stack([d, .. a.HiddenSizes, a.LatentDimension], "enc");
        var decoder = Stack(a.DecoderWidths, "dec");
        var parameters = encoder.parameters().Concat(decoder.parameters()).ToArray();
        using var optimizer = new KeptAdam(parameters, o.LearningRate);
        var x = Standardise(torch.tensor(rows, [n, d]), mean, scale);
        var rng = new Random(o.Seed);
        var order = Enumerable.Range(0, n).ToArray();
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            rng.Shuffle(order);
            for (int start = 0; start < n; start += o.BatchSize)
            {
                using var step = torch.NewDisposeScope();
                var index = torch.tensor(order.AsSpan(start, Math.Min(o.BatchSize, n - start)).ToArray().Select(i => (long)i).ToArray());
                var batch = x.index_select(0, index);
                optimizer.zero_grad();
                var loss = torch.nn.functional.mse_loss(decoder.forward(Normalise(encoder.forward(batch))), batch);
                loss.backward();
                optimizer.step();
            }
        }
        encoder.eval();
        decoder.eval();
        var linears = decoder.children().OfType<TorchSharp.Modules.Linear>().ToArray();
        var weights = linears.Select(l => l.weight!.detach().contiguous().data<float>().ToArray()).ToArray();
        var biases = linears.Select(l => l.bias!.detach().contiguous().data<float>().ToArray()).ToArray();
        var encoderWeights = encoder.children().OfType<TorchSharp.Modules.Linear>()
            .Select(l => (l.weight!.detach().contiguous().data<float>().ToArray(), l.bias!.detach().contiguous().data<float>().ToArray())).ToArray();
        int[] encoderWidths = [d, .. a.HiddenSizes, a.LatentDimension];
        float[] Encode(float[] values, int rowCount)
        {
            using var s = torch.NewDisposeScope();
            var h = Standardise(torch.tensor(values, [rowCount, d]), mean, scale);
            h = Forward(h, encoderWidths, encoderWeights.Select(w => w.Item1).ToArray(), encoderWeights.Select(w => w.Item2).ToArray());
            return Normalise(h).contiguous().data<float>().ToArray();
        }
        return (new LatentAutoencoder(a, mean, scale, weights, biases), Encode);
    }

    /// <summary>
    /// The latent mode of Fit: trains the autoencoder on <c>Latent.PublicData</c> (its feature column checked
    /// against D) or, when null, on all the private rows, then encodes each class's private rows to codes of norm
    /// 1 − 1e-6 (strictly inside the unit ball, as the release requires).
    /// </summary>
    public static (List<float[]>[] Codes, LatentAutoencoder Decoder) FitAndEncode(List<float[]>[] privateRows, int featureDimensions,
        PrivateSyntheticDataOptions o)
    {
        var latent = o.Latent!;
        float[] training;
        int n;
        if (latent.PublicData is { } publicData)
        {
            int dPublic = Data.SchemaChecks.FeatureVector(publicData.Schema, o.FeatureColumnName);
            if (dPublic != featureDimensions)
                throw new ArgumentOutOfRangeException(nameof(o.Latent), dPublic,
                    $"Latent.PublicData: the column '{o.FeatureColumnName}' has {dPublic} values, the private data {featureDimensions}.");
            var list = new List<float>();
            var column = publicData.Schema[o.FeatureColumnName];
            using var cursor = publicData.GetRowCursor([column]);
            var getter = cursor.GetGetter<VBuffer<float>>(column);
            var buffer = default(VBuffer<float>);
            var values = new float[featureDimensions];
            n = 0;
            while (cursor.MoveNext())
            {
                getter(ref buffer);
                buffer.CopyTo(values);
                foreach (float v in values)
                {
                    if (!float.IsFinite(v))
                        throw new InvalidOperationException(
                            $"Latent.PublicData: the column '{o.FeatureColumnName}' holds {v} at row {n}: every value must be finite.");
                }
                list.AddRange(values);
                n++;
            }
            training = [.. list];
        }
        else
        {
            training = [.. privateRows.SelectMany(c => c).SelectMany(r => r)];
            n = privateRows.Sum(c => c.Count);
        }
        var (decoder, encode) = Train(training, n, featureDimensions, latent, latent.PublicData is null, o.LowerBounds, o.UpperBounds,
            o.CancellationToken);
        int dz = latent.LatentDimension;
        var codes = new List<float[]>[privateRows.Length];
        for (int c = 0; c < privateRows.Length; c++)
        {
            codes[c] = [];
            if (privateRows[c].Count == 0)
                continue;
            var z = encode([.. privateRows[c].SelectMany(r => r)], privateRows[c].Count);
            for (int i = 0; i < privateRows[c].Count; i++)
                codes[c].Add([.. z.AsSpan(i * dz, dz).ToArray().Select(v => v * (1 - 1e-6f))]);
        }
        return (codes, decoder);
    }

    /// <summary>
    /// Decodes <paramref name="rows"/> codes (rows×d) to rows×D in the feature scale, clamped to the public bounds. Each
    /// code is first projected onto the unit sphere, where the encoder puts every code (the decoder was trained there
    /// only): post-processing of the flow's particles, which costs no privacy.
    /// </summary>
    public float[] Decode(float[] codes, int rows)
    {
        var a = Architecture;
        TorchRuntime.EnsureInitialized();
        using var scope = torch.NewDisposeScope();
        var h = Forward(Normalise(torch.tensor(codes, [rows, a.LatentDimension])), a.DecoderWidths, _weights, _biases);
        var output = (h * torch.tensor(_scale) + torch.tensor(_mean)).contiguous().data<float>().ToArray();
        if (a.LowerBounds is { } lo && a.UpperBounds is { } hi)
        {
            for (int i = 0; i < output.Length; i++)
                output[i] = Math.Clamp(output[i], lo[i % a.FeatureDimensions], hi[i % a.FeatureDimensions]);
        }
        return output;
    }

    /// <summary>Writes the decoder: the architecture (JSON), the standardisation and the layers' tensors.</summary>
    public void Save(ModelPayloadWriter writer)
    {
        var a = Architecture;
        writer.WriteJson("latent", a);
        writer.WriteTensor("latent.mean", _mean, [a.FeatureDimensions]);
        writer.WriteTensor("latent.scale", _scale, [a.FeatureDimensions]);
        var widths = a.DecoderWidths;
        for (int l = 0; l < _weights.Length; l++)
        {
            writer.WriteTensor($"latent.dec{l}.weight", _weights[l], [widths[l + 1], widths[l]]);
            writer.WriteTensor($"latent.dec{l}.bias", _biases[l], [widths[l + 1]]);
        }
    }

    /// <summary>Reads and checks a decoder written by <see cref="Save"/> for codes of size <paramref name="latentDimension"/>.</summary>
    public static LatentAutoencoder Load(ModelPayloadReader payload, int latentDimension)
    {
        var a = payload.ReadJson<LatentArchitecture>("latent");
        payload.Require(a is not null && a.HiddenSizes is not null, "latent", "architecture", "is missing");
        payload.Require(a!.LatentDimension == latentDimension, "latent", nameof(a.LatentDimension),
            $"must equal the flow's dimension {latentDimension} (got {a.LatentDimension})");
        payload.Require(a.FeatureDimensions is >= 1 and <= 1_000_000, "latent", nameof(a.FeatureDimensions),
            $"must be in [1, 1000000] (got {a.FeatureDimensions})");
        payload.Require(a.HiddenSizes!.Length <= 16 && a.HiddenSizes.All(h => h is >= 1 and <= 1 << 16), "latent", nameof(a.HiddenSizes),
            "must hold at most 16 widths in [1, 65536]");
        payload.Require((a.LowerBounds is null) == (a.UpperBounds is null), "latent", "bounds", "must be both set or both absent");
        if (a.LowerBounds is { } lo && a.UpperBounds is { } hi)
        {
            payload.Require(lo.Length == a.FeatureDimensions && hi.Length == a.FeatureDimensions, "latent", "bounds",
                $"must have {a.FeatureDimensions} values");
            for (int t = 0; t < lo.Length; t++)
                payload.Require(float.IsFinite(lo[t]) && float.IsFinite(hi[t]) && lo[t] < hi[t], "latent", $"bounds[{t}]", "must be finite with lower < upper");
        }
        var widths = a.DecoderWidths;
        for (int l = 0; l + 1 < widths.Length; l++)
            payload.Require((long)widths[l] * widths[l + 1] <= 1L << 28, "latent", "size", "a layer has more than 2^28 weights");
        var mean = payload.ReadTensor("latent.mean", [a.FeatureDimensions]);
        var scale = payload.ReadTensor("latent.scale", [a.FeatureDimensions]);
        var weights = new float[widths.Length - 1][];
        var biases = new float[widths.Length - 1][];
        for (int l = 0; l < weights.Length; l++)
        {
            weights[l] = payload.ReadTensor($"latent.dec{l}.weight", [widths[l + 1], widths[l]]);
            biases[l] = payload.ReadTensor($"latent.dec{l}.bias", [widths[l + 1]]);
        }
        bool finite = mean.Concat(scale).Concat(weights.SelectMany(w => w)).Concat(biases.SelectMany(b => b)).All(float.IsFinite);
        payload.Require(finite && scale.All(s => s > 0), "latent", "tensors", "must be finite, with a positive scale");
        return new LatentAutoencoder(a, mean, scale, weights, biases);
    }

    /// <summary>Per-feature mean and standard deviation (1 for a constant feature).</summary>
    private static (float[] Mean, float[] Scale) Standardisation(float[] rows, int n, int d)
    {
        var mean = new double[d];
        var sq = new double[d];
        for (int i = 0; i < n; i++)
        {
            for (int t = 0; t < d; t++)
                mean[t] += rows[i * d + t];
        }
        for (int t = 0; t < d; t++)
            mean[t] /= n;
        for (int i = 0; i < n; i++)
        {
            for (int t = 0; t < d; t++)
            {
                double v = rows[i * d + t] - mean[t];
                sq[t] += v * v;
            }
        }
        var scale = new float[d];
        for (int t = 0; t < d; t++)
        {
            double sd = Math.Sqrt(sq[t] / n);
            scale[t] = sd > 1e-6 ? (float)sd : 1f;
        }
        return ([.. mean.Select(m => (float)m)], scale);
    }

    private static Tensor Standardise(Tensor x, float[] mean, float[] scale) => (x - torch.tensor(mean)) / torch.tensor(scale);

    /// <summary>Projection onto the unit sphere (the reference's normalised encoder), guarded against a zero code.</summary>
    private static Tensor Normalise(Tensor h)
    {
        using var kept = new KeptScalars();
        return h / h.norm(1, keepdim: true).clamp_min(kept.Of(1e-12));
    }

    private static TorchSharp.Modules.Sequential Stack(int[] widths, string prefix)
    {
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (int l = 0; l + 1 < widths.Length; l++)
        {
            modules.Add(($"{prefix}{l}", nn.Linear(widths[l], widths[l + 1])));
            if (l + 2 < widths.Length)
                modules.Add(($"{prefix}{l}act", nn.ReLU()));
        }
        return nn.Sequential(modules);
    }

    /// <summary>The fully connected stack from stored weights: ReLU between layers, linear output.</summary>
    private static Tensor Forward(Tensor h, int[] widths, float[][] weights, float[][] biases)
    {
        for (int l = 0; l < weights.Length; l++)
        {
            h = torch.nn.functional.linear(h, torch.tensor(weights[l], [widths[l + 1], widths[l]]), torch.tensor(biases[l]));
            if (l + 1 < weights.Length)
                h = torch.nn.functional.relu(h);
        }
        return h;
    }
}
