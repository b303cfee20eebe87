using Allauzen.ML.Diachronic;
using Allauzen.ML.Foton;
using Allauzen.ML.Lipschitz;
using Allauzen.ML.Mlp;
using Allauzen.ML.Persistence;
using Allauzen.ML.Smoothing;
using Allauzen.ML.Tests.Diachronic;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>One tiny fitted model of every payload kind, with the data it scores; built once per process.</summary>
internal static class TinyModels
{
    public sealed record Model(string Kind, ITransformer Transformer, IDataView Input, byte[] Payload, string Signature)
    {
        public RawPayload Raw() => RawPayload.Parse(Payload);
    }

    private static readonly Lazy<IReadOnlyList<Model>> Built = new(Build);

    public static MLContext Ml { get; } = new(seed: 1);

    public static IReadOnlyList<Model> All => Built.Value;

    public static Model Get(string kind) => All.Single(m => m.Kind == kind);

    /// <summary>Loads a payload with its registered loader, as both persistence routes do.</summary>
    public static ITransformer Load(byte[] payload, string source = "tampered.bin")
    {
        var header = new ModelPayloadReader(payload, source);
        var loader = AllauzenLoaders.TryGet(header.Signature) ?? throw new InvalidDataException($"'{source}': unknown signature '{header.Signature}'.");
        return loader.Load(Ml, new ModelPayloadReader(payload, source, loader.ComponentName, loader.Signature));
    }

    private static IReadOnlyList<Model> Build()
    {
        var ml = Ml;
        var data = ml.Data.Cache(TestData.BlobsPrepared(ml, 24));
        var scoring = ml.Data.Cache(ml.Data.TakeRows(data, 6));
        var result = new List<Model>();
        void Add(string kind, ITransformer t, IDataView input)
        {
            var a = (IAllauzenTransformer)t;
            result.Add(new Model(kind, t, input, ModelPayloadWriter.Serialize(a), a.LoaderSignature));
        }

        var mlp = ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [4], Epochs = 1, BatchSize = 8, Seed = 1 }).Fit(data);
        Add("Mlp", mlp, scoring);
        Add("Foton", ml.MulticlassClassification.Trainers.Foton(new FotonOptions { HiddenSizes = [4], Epochs = 1, BatchSize = 8, Seed = 1 }).Fit(data), scoring);
        Add("Lipschitz", ml.MulticlassClassification.Trainers.LipschitzClassifier(
            new LipschitzClassifierOptions { Depth = 1, Width = 4, Epochs = 1, BatchSize = 8, Seed = 1 }).Fit(data), scoring);
        var smoothing = new RandomizedSmoothingOptions
        {
            BaseModel = mlp, Sigma = 0.25, SelectionSamples = 8, EstimationSamples = 16, Alpha = 0.01, BatchSize = 32, Seed = 3,
        };
        Add("RandomizedSmoothing", ml.Transforms.CertifyRandomizedSmoothing(smoothing).Fit(scoring), scoring);
        var sampler = ml.Transforms.SampleRandomizedSmoothing(new RandomizedSmoothingOptions
        {
            BaseModel = mlp, Sigma = 0.25, SelectionSamples = 8, EstimationSamples = 16, Alpha = 0.01, BatchSize = 32, Seed = 3,
            Method = SmoothingMethod.LvmSound, LvmMaps = [new SimplexMap(SimplexMapKind.Softmax, 1), new SimplexMap(SimplexMapKind.Sparsemax, 2)],
        }).Fit(scoring);
        Add("SmoothingSampler", sampler, scoring);
        var statistics = ml.Data.Cache(sampler.Transform(scoring));
        Add("SmoothingStatisticsCertifier", ml.Transforms.CertifySmoothingStatistics(
            new SmoothingCertifierOptions { Method = SmoothingMethod.LvmSound, Alpha = 0.01, Sigma = 0.25 }).Fit(statistics), statistics);
        var sentences = DiachronicTestData.ToDataView(ml, DiachronicTestData.Synthetic(2, 12, 1));
        var diachronic = DiachronicTestData.Options(DiachronicModel.IncrementalSkipGram);
        diachronic.Dimensions = 4;
        diachronic.Epochs = 1;
        diachronic.InitEpochs = 1;
        diachronic.TokenEmbeddingsColumnName = "TokenVectors";
        Add("DiachronicEmbeddings", ml.Transforms.Text.DiachronicEmbeddings(diachronic).Fit(sentences), ml.Data.Cache(ml.Data.TakeRows(sentences, 6)));
        return result;
    }
}
