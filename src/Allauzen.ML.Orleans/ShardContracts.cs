using System.Globalization;

namespace Allauzen.ML.Orleans;

/// <summary>
/// One shard of a job: the rows of the binary IDataView file <see cref="InputPath"/> whose key falls in shard
/// <see cref="Index"/> of <see cref="Count"/> (<c>DataShards.Shard</c>); 0 of 1 is the whole file (pre-split inputs).
/// </summary>
[GenerateSerializer, Immutable]
public sealed class ShardInput
{
    /// <summary>Path of the input, an ML.NET binary IDataView file (<c>ml.Data.SaveAsBinary</c>) readable by every silo.</summary>
    [Id(0)] public required string InputPath { get; init; }

    /// <summary>The shard index, 0 ≤ Index &lt; Count. Default 0.</summary>
    [Id(1)] public int Index { get; init; }

    /// <summary>The number of shards the file is split into (by key hash). Default 1: the whole file.</summary>
    [Id(2)] public int Count { get; init; } = 1;

    /// <summary>The shard's name in reports: the file name, plus "#index/count" when the file is split.</summary>
    public string Name => Count == 1 ? Path.GetFileName(InputPath)
        : string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(InputPath)}#{Index}/{Count}");

    /// <summary>Where the shard's output is written: next to the input, <c>{input}.shard-III-of-NNN.out.idv</c>.</summary>
    public string OutputPath => string.Create(CultureInfo.InvariantCulture, $"{InputPath}.shard-{Index:D3}-of-{Count:D3}.out.idv");

    /// <summary>The <paramref name="count"/> shards of one file.</summary>
    /// <param name="inputPath">The binary IDataView file.</param>
    /// <param name="count">The number of shards, ≥ 1.</param>
    public static IReadOnlyList<ShardInput> Split(string inputPath, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        return [.. Enumerable.Range(0, count).Select(i => new ShardInput { InputPath = inputPath, Index = i, Count = count })];
    }
}

/// <summary>
/// A certification (or featurization) job: a saved ML.NET model applied to every shard, outputs written next to the
/// inputs and merged in key order. With <see cref="LabelColumnName"/> set, the model's output must hold the smoothing
/// columns (PredictedLabel, CertifiedRadius) and certified-accuracy counts are summed over the shards.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class CertificationJob
{
    /// <summary>The model zip (<c>ml.Model.Save</c>), readable by every silo; loaded once per silo with <c>ml.Model.Load</c>.</summary>
    [Id(0)] public required string ModelPath { get; init; }

    /// <summary>The shards.</summary>
    [Id(1)] public required IReadOnlyList<ShardInput> Shards { get; init; }

    /// <summary>The row key column: shards split on it and outputs merge in its order. Use the model's <c>RowKeyColumnName</c> so results do not depend on the split.</summary>
    [Id(2)] public required string KeyColumnName { get; init; }

    /// <summary>A key-typed label column for certified-accuracy counts; null (default) for featurization (no counts).</summary>
    [Id(3)] public string? LabelColumnName { get; init; }

    /// <summary>The radii of the certified-accuracy counts. Default [0, 0.25, 0.5, 0.75, 1].</summary>
    [Id(4)] public IReadOnlyList<double> Radii { get; init; } = [0, 0.25, 0.5, 0.75, 1.0];

    /// <summary>Columns of the output files (the key column is always kept). Default null: every column of the model's output.</summary>
    [Id(5)] public IReadOnlyList<string>? OutputColumns { get; init; }

    /// <summary>The merged output file. Default null: next to the first shard's input, <c>{input}.merged.idv</c>.</summary>
    [Id(6)] public string? MergedOutputPath { get; init; }

    /// <summary>A shard attempt that takes longer is abandoned and the shard retried on another silo. Default 30 minutes.</summary>
    [Id(7)] public TimeSpan ShardTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Attempts per shard, each on a silo that has not failed it yet (when one is left), before it is reported failed. Default 3.</summary>
    [Id(8)] public int MaxAttempts { get; init; } = 3;

    /// <summary>The merged output path this job writes.</summary>
    public string EffectiveMergedOutputPath => MergedOutputPath ?? $"{Shards[0].InputPath}.merged.idv";
}

/// <summary>What a silo sends back for one shard.</summary>
[GenerateSerializer, Immutable]
public sealed class ShardResult
{
    /// <summary>The shard's output file.</summary>
    [Id(0)] public required string OutputPath { get; init; }

    /// <summary>Rows in the shard.</summary>
    [Id(1)] public long Rows { get; init; }

    /// <summary>Certified-accuracy counts per radius: rows correct with a radius ≥ the radius (null without a label column).</summary>
    [Id(2)] public long[]? Correct { get; init; }

    /// <summary>Abstentions (0 without a label column).</summary>
    [Id(3)] public long Abstained { get; init; }

    /// <summary>The certifier's saturation radius (NaN when the model holds none).</summary>
    [Id(4)] public double SaturationRadius { get; init; } = double.NaN;

    /// <summary>The silo that did the work.</summary>
    [Id(5)] public required string Silo { get; init; }

    /// <summary>Time spent on the silo: reading, transforming, writing, counting (ms), including <see cref="ModelLoadMs"/>.</summary>
    [Id(6)] public double WorkMs { get; init; }

    /// <summary>Time spent loading the model for this shard (0 when the silo had it already).</summary>
    [Id(7)] public double ModelLoadMs { get; init; }

    /// <summary>The name of the silo that did the work.</summary>
    [Id(8)] public required string SiloName { get; init; }

    /// <summary>Correct predictions, the clean accuracy's numerator (0 without a label column).</summary>
    [Id(9)] public long Accurate { get; init; }
}

/// <summary>The fate of one shard in a job report.</summary>
[GenerateSerializer, Immutable]
public sealed class ShardOutcome
{
    /// <summary>The shard's name (<see cref="ShardInput.Name"/>).</summary>
    [Id(0)] public required string Name { get; init; }

    /// <summary>The accepted result, or null when the shard failed.</summary>
    [Id(1)] public ShardResult? Result { get; init; }

    /// <summary>Attempts made (1 when the first succeeded).</summary>
    [Id(2)] public int Attempts { get; init; }

    /// <summary>Errors of the failed attempts, "silo: message", in order.</summary>
    [Id(3)] public IReadOnlyList<string> Errors { get; init; } = [];

    /// <summary>Coordinator overhead of the accepted attempt: dispatch to completion as seen by the coordinator, minus the silo's <see cref="ShardResult.WorkMs"/> (ms).</summary>
    [Id(4)] public double OverheadMs { get; init; }

    /// <summary>True when the shard produced an output.</summary>
    public bool Succeeded => Result is not null;
}

/// <summary>The result of a job.</summary>
[GenerateSerializer, Immutable]
public sealed class JobReport
{
    /// <summary>Every shard, in the job's order.</summary>
    [Id(0)] public required IReadOnlyList<ShardOutcome> Shards { get; init; }

    /// <summary>The merged output (the successful shards in key order), or null when no shard succeeded.</summary>
    [Id(1)] public string? MergedOutputPath { get; init; }

    /// <summary>The radii of <see cref="Correct"/>.</summary>
    [Id(2)] public IReadOnlyList<double> Radii { get; init; } = [];

    /// <summary>Summed certified-accuracy counts per radius over the successful shards (null without a label column).</summary>
    [Id(3)] public long[]? Correct { get; init; }

    /// <summary>Rows of the successful shards.</summary>
    [Id(4)] public long Rows { get; init; }

    /// <summary>Summed abstentions.</summary>
    [Id(5)] public long Abstained { get; init; }

    /// <summary>The certifier's saturation radius.</summary>
    [Id(6)] public double SaturationRadius { get; init; } = double.NaN;

    /// <summary>Wall time of the job on the coordinator, merge included (ms).</summary>
    [Id(7)] public double TotalMs { get; init; }

    /// <summary>Time of the merge on the coordinator (ms).</summary>
    [Id(8)] public double MergeMs { get; init; }

    /// <summary>The shards that failed every attempt.</summary>
    public IEnumerable<ShardOutcome> Failed => Shards.Where(s => !s.Succeeded);

    /// <summary>Summed correct predictions (the clean accuracy's numerator) over the successful shards.</summary>
    [Id(9)] public long Accurate { get; init; }

    /// <summary>The certified-accuracy counts (null without a label column), as the core library's type.</summary>
    public Evaluation.CertifiedAccuracyCounts? Counts =>
        Correct is null ? null : new Evaluation.CertifiedAccuracyCounts(Radii, Correct, Accurate, Rows, Abstained, SaturationRadius);
}

/// <summary>Progress of a running job.</summary>
[GenerateSerializer, Immutable]
public sealed class JobProgress
{
    /// <summary>Shards in the job.</summary>
    [Id(0)] public int Shards { get; init; }

    /// <summary>Shards finished (succeeded or failed for good).</summary>
    [Id(1)] public int Finished { get; init; }

    /// <summary>Shards running now.</summary>
    [Id(2)] public int Running { get; init; }

    /// <summary>Rows certified so far, as reported by the silos (running shards included).</summary>
    [Id(3)] public long Rows { get; init; }

    /// <summary>The silos running a shard now (<c>SiloAddress.ToParsableString</c>).</summary>
    [Id(4)] public IReadOnlyList<string> RunningOn { get; init; } = [];
}
