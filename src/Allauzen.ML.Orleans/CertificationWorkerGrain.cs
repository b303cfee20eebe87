using System.Diagnostics;
using Allauzen.ML.Data;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Smoothing;
using Microsoft.ML;
using Orleans.Concurrency;
using Orleans.Runtime;

namespace Allauzen.ML.Orleans;

/// <summary>The per-silo worker (see <see cref="ICertificationWorkerGrain"/>).</summary>
/// <param name="silo">The local silo.</param>
[StatelessWorker(1)]
public sealed class CertificationWorkerGrain(ILocalSiloDetails silo) : Grain, ICertificationWorkerGrain
{
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(1);
    private readonly MLContext _ml = new(seed: 0);
    private ITransformer? _model;
    private string? _modelPath;
    private long _rowsBefore;

    /// <inheritdoc />
    public Task<ShardResult> Process(CertificationJob job, int shard, string? jobId)
    {
        ArgumentNullException.ThrowIfNull(job);
        var coordinator = jobId is null ? null : GrainFactory.GetGrain<ICertificationJobGrain>(jobId);
        // CPU-bound: off the grain's turn so the silo's messaging stays responsive; the grain is not reentrant, so
        // the next shard waits for this one.
        return Task.Run(() => Work(job, shard, coordinator));
    }

    private ShardResult Work(CertificationJob job, int shardIndex, ICertificationJobGrain? coordinator)
    {
        var clock = Stopwatch.StartNew();
        var shard = job.Shards[shardIndex];
        double loadMs = 0;
        if (_model is null || _modelPath != job.ModelPath)
        {
            (_model as IDisposable)?.Dispose();
            _model = _ml.Model.Load(job.ModelPath, out _);
            _modelPath = job.ModelPath;
            _rowsBefore = 0;
            loadMs = clock.Elapsed.TotalMilliseconds;
        }
        IDataView data = _ml.Data.LoadFromBinary(shard.InputPath);
        if (shard.Count > 1)
            data = data.Shard(shard.Index, shard.Count, job.KeyColumnName);
        var smoothing = Find(_model);
        var lastReport = Stopwatch.StartNew();
        long rowsAtStart = _rowsBefore;
        if (smoothing is not null)
        {
            smoothing.Progress = new Reporter(p =>
            {
                _rowsBefore = p.Rows;
                if (coordinator is not null && lastReport.Elapsed >= ProgressInterval)
                {
                    lastReport.Restart();
                    coordinator.ReportProgress(shardIndex, p.Rows - rowsAtStart).Ignore();
                }
            });
        }
        try
        {
            var output = _model.Transform(data);
            if (job.OutputColumns is { } columns)
            {
                string[] keep = [.. new[] { job.KeyColumnName }.Concat(job.LabelColumnName is null ? [] : [job.LabelColumnName]).Concat(columns).Distinct()];
                output = _ml.Transforms.SelectColumns(keep).Fit(output).Transform(output);
            }
            string tmp = $"{shard.OutputPath}.{Guid.NewGuid():N}.tmp";
            try
            {
                using (var stream = File.Create(tmp))
                    _ml.Data.SaveAsBinary(output, stream, keepHidden: false);
                File.Move(tmp, shard.OutputPath, overwrite: true);
            }
            finally
            {
                File.Delete(tmp);
            }
        }
        finally
        {
            if (smoothing is not null)
                smoothing.Progress = null;
        }
        var saved = _ml.Data.LoadFromBinary(shard.OutputPath);
        double saturation = (smoothing as RandomizedSmoothingTransformer)?.SaturationRadius ?? double.NaN;
        CertifiedAccuracyCounts? counts = job.LabelColumnName is { } label
            ? _ml.MulticlassClassification.EvaluateCertified(saved, labelColumnName: label, radii: job.Radii, saturationRadius: saturation).Counts
            : null;
        long rows = counts?.Rows ?? saved.GetRowCount() ?? CountRows(saved);
        return new ShardResult
        {
            OutputPath = shard.OutputPath, Rows = rows, Correct = counts?.Certified.ToArray(), Accurate = counts?.Correct ?? 0, Abstained = counts?.Abstained ?? 0,
            SaturationRadius = saturation, Silo = silo.SiloAddress.ToParsableString(), SiloName = silo.Name,
            WorkMs = clock.Elapsed.TotalMilliseconds, ModelLoadMs = loadMs,
        };
    }

    private static long CountRows(IDataView view)
    {
        using var cursor = view.GetRowCursor([]);
        long rows = 0;
        while (cursor.MoveNext())
            rows++;
        return rows;
    }

    /// <summary>The smoothing transformer of the model (itself or in a chain), for progress and the saturation radius.</summary>
    private static SmoothingTransformerBase? Find(ITransformer model) => model switch
    {
        SmoothingTransformerBase s => s,
        IEnumerable<ITransformer> chain => chain.Select(Find).FirstOrDefault(s => s is not null),
        _ => null,
    };

    private sealed class Reporter(Action<SmoothingProgress> report) : IProgress<SmoothingProgress>
    {
        public void Report(SmoothingProgress value) => report(value);
    }
}

/// <summary>One shard attempt on the silo chosen by the coordinator (see <see cref="IShardRunnerGrain"/>).</summary>
[global::Orleans.Placement.RandomPlacement]
public sealed class ShardRunnerGrain : Grain, IShardRunnerGrain
{
    /// <inheritdoc />
    public async Task<ShardResult> Run(CertificationJob job, int shard, string jobId)
    {
        try
        {
            return await GrainFactory.GetGrain<ICertificationWorkerGrain>(0).Process(job, shard, jobId);
        }
        finally
        {
            DeactivateOnIdle();
        }
    }
}
