using Allauzen.ML.Core;
using Allauzen.ML.Data;

namespace Allauzen.ML.Smoothing;

/// <summary>
/// Wraps a base classifier (ONNX file or Allauzen network) in a randomized-smoothing certifier. Nothing is
/// trained: <c>Fit</c> validates the base model against the data's feature column and returns a
/// <see cref="RandomizedSmoothingTransformer"/>. Create it with <c>ml.Transforms.CertifyRandomizedSmoothing</c>.
/// </summary>
public sealed class RandomizedSmoothingEstimator : SmoothingEstimatorBase<RandomizedSmoothingTransformer>
{
    internal RandomizedSmoothingEstimator(IHostEnvironment env, RandomizedSmoothingOptions options) : base(env, options)
    {
    }

    private protected override RandomizedSmoothingTransformer Create(IHostEnvironment env, SmoothingBaseModel model, SmoothingSettings settings) =>
        new(env, model, settings);

    private protected override IEnumerable<SchemaShape.Column> AddedShapes()
    {
        foreach (var c in CertificateColumns.Shapes())
            yield return c;
        yield return SchemaShapes.Column(SmoothingColumnNames.NoiseSeed, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt64, false);
    }
}

/// <summary>
/// The sampling stage alone (see <see cref="SmoothingSamplerTransformer"/>). Create it with
/// <c>ml.Transforms.SampleRandomizedSmoothing</c>.
/// </summary>
public sealed class SmoothingSamplerEstimator : SmoothingEstimatorBase<SmoothingSamplerTransformer>
{
    internal SmoothingSamplerEstimator(IHostEnvironment env, RandomizedSmoothingOptions options) : base(env, options)
    {
    }

    private protected override SmoothingSamplerTransformer Create(IHostEnvironment env, SmoothingBaseModel model, SmoothingSettings settings) =>
        new(env, model, settings);

    private protected override IEnumerable<SchemaShape.Column> AddedShapes()
    {
        yield return SchemaShapes.Column(SmoothingColumnNames.SelectionCounts, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Double, false);
        yield return SchemaShapes.Column(SmoothingColumnNames.EstimationCounts, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Double, false);
        if (Options.EffectiveMaps.Count > 0)
        {
            yield return SchemaShapes.Column(SmoothingColumnNames.MapSums, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Double, false);
            yield return SchemaShapes.Column(SmoothingColumnNames.MapCentredSquares, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Double, false);
        }
        yield return SchemaShapes.Column(SmoothingColumnNames.NoiseSeed, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt64, false);
    }
}

/// <summary>Common validation and fitting of the smoothing estimators.</summary>
/// <typeparam name="T">The transformer type.</typeparam>
public abstract class SmoothingEstimatorBase<T> : IEstimator<T>
    where T : SmoothingTransformerBase
{
    private readonly IHostEnvironment _env;

    private protected SmoothingEstimatorBase(IHostEnvironment env, RandomizedSmoothingOptions options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _env = env;
        Options = options;
        if (options.BaseModel is not null)
        {
            var model = SmoothingBaseModel.FindLogitsModel(options.BaseModel);
            if (options.UseModelLipschitzConstant)
            {
                _lipschitz = model.LipschitzUpperBound()
                    ?? throw new ArgumentOutOfRangeException(nameof(RandomizedSmoothingOptions.UseModelLipschitzConstant), true,
                        $"UseModelLipschitzConstant: the base model {model.GetType().Name} exposes no certified Lipschitz bound; set LipschitzConstant instead.");
            }
        }
        _lipschitz ??= options.LipschitzConstant;
    }

    private readonly double? _lipschitz;

    private protected RandomizedSmoothingOptions Options { get; }

    private protected abstract T Create(IHostEnvironment env, SmoothingBaseModel model, SmoothingSettings settings);

    private protected abstract IEnumerable<SchemaShape.Column> AddedShapes();

    /// <summary>Validates the base model against the feature column of <paramref name="input"/> and returns the transformer.</summary>
    /// <param name="input">Data with the feature column (only its schema is read).</param>
    public T Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int d = SchemaChecks.FeatureVector(input.Schema, Options.FeatureColumnName);
        if (Options.RowKeyColumnName is { } key)
            RowKeys.Find(input.Schema, key, "row key");
        var model = SmoothingBaseModel.Create(_env, Options, d);
        try
        {
            var t = Create(_env, model, SmoothingSettings.From(Options, _lipschitz));
            t.Progress = Options.Progress;
            t.CancellationToken = Options.CancellationToken;
            return t;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The input shape plus the added columns.</summary>
    /// <param name="inputSchema">The input shape.</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SchemaChecks.FeatureVector(inputSchema, Options.FeatureColumnName);
        if (Options.RowKeyColumnName is { } key)
            RowKeys.Check(inputSchema, key, "row key");
        return SchemaShapes.With(inputSchema, AddedShapes());
    }
}
