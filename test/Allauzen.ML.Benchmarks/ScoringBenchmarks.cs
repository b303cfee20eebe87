using Allauzen.ML.Mlp;
using BenchmarkDotNet.Attributes;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Scoring throughput of a trained MLP over the test set: ML.NET's PredictionEngine (one row per call,
/// the baseline) vs the batched lazy IDataView of <c>Transform</c> at several batch sizes.
/// </summary>
[MemoryDiagnoser]
public class ScoringBenchmarks
{
    private MLContext _ml = null!;
    private MlpTransformer _model = null!;
    private IDataView _test = null!;
    private FeatureRow[] _rows = [];
    private PredictionEngine<FeatureRow, Prediction> _engine = null!;

    [Params(1, 64, 256)]
    public int ScoringBatchSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _ml = new MLContext(seed: 1);
        var (train, test, _) = BenchData.Prepared(_ml);
        _model = _ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [256], Epochs = 1, BatchSize = 128 }).Fit(train);
        _test = _ml.Data.Cache(_ml.Transforms.DropColumns("Label").Fit(test).Transform(test));
        int n = _model.FeatureCount;
        var def = SchemaDefinition.Create(typeof(FeatureRow));
        def["Features"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, n);
        _rows = _ml.Data.CreateEnumerable<FeatureRow>(_test, false, schemaDefinition: def).ToArray();
        _engine = _ml.Model.CreatePredictionEngine<FeatureRow, Prediction>(_model, inputSchemaDefinition: def);
        _model.ScoringBatchSize = ScoringBatchSize;
    }

    [Benchmark(Baseline = true)]
    public float PredictionEngineRowByRow()
    {
        float s = 0;
        foreach (var r in _rows)
            s += _engine.Predict(r).Score[0];
        return s;
    }

    [Benchmark]
    public float BatchedTransform()
    {
        float s = 0;
        var scored = _model.Transform(_test);
        using var cursor = scored.GetRowCursor([scored.Schema["Score"]]);
        var g = cursor.GetGetter<VBuffer<float>>(scored.Schema["Score"]);
        VBuffer<float> v = default;
        while (cursor.MoveNext())
        {
            g(ref v);
            s += v.GetValues()[0];
        }
        return s;
    }

    public sealed class FeatureRow
    {
        public float[] Features { get; set; } = [];
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = [];
    }
}
