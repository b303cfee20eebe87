using Orleans.Concurrency;

namespace Allauzen.ML.Orleans;

/// <summary>
/// Applies a saved model to one shard on the silo it runs on. A <c>[StatelessWorker(1)]</c> grain: calls from a silo
/// go to that silo's single activation, which loads the model once (<c>ml.Model.Load</c>, no registration call) and
/// keeps it while active, and runs one shard at a time (a transformer is not shared between threads).
/// </summary>
public interface ICertificationWorkerGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Reads shard <paramref name="shard"/> of <paramref name="job"/>, transforms it, writes the output next to the input
    /// (a temporary file, then a rename, so a killed silo never leaves a partial output), counts certified accuracy when
    /// the job has a label column, and reports rows to the job's coordinator as it goes.
    /// </summary>
    /// <param name="job">The job.</param>
    /// <param name="shard">Index into <see cref="CertificationJob.Shards"/>.</param>
    /// <param name="jobId">The coordinator's key (progress reports), or null.</param>
    [ResponseTimeout("1.00:00:00")]
    Task<ShardResult> Process(CertificationJob job, int shard, string? jobId);
}

/// <summary>
/// A one-shot grain per shard attempt, placed on the silo the coordinator chose (a placement hint on a random-placement
/// grain; a silo that has left the cluster falls back to a random live one): it hands the shard to that silo's
/// <see cref="ICertificationWorkerGrain"/> and deactivates.
/// </summary>
public interface IShardRunnerGrain : IGrainWithStringKey
{
    /// <summary>Runs the shard on this grain's silo.</summary>
    /// <param name="job">The job.</param>
    /// <param name="shard">Index into <see cref="CertificationJob.Shards"/>.</param>
    /// <param name="jobId">The coordinator's key.</param>
    [ResponseTimeout("1.00:00:00")]
    Task<ShardResult> Run(CertificationJob job, int shard, string jobId);
}

/// <summary>
/// The coordinator of one job (key: a job id of your choice). Hands out shards, one at a time per live silo, retries a
/// failed or timed-out shard on a silo that has not failed it, and merges the outputs in key order and the counts by
/// addition. Each shard is accepted once, so none is lost or counted twice.
/// </summary>
public interface ICertificationJobGrain : IGrainWithStringKey
{
    /// <summary>Runs the job to the end and returns its report; shards that failed every attempt are listed by name, the others merged.</summary>
    /// <param name="job">The job.</param>
    [ResponseTimeout("7.00:00:00")]
    Task<JobReport> Run(CertificationJob job);

    /// <summary>Progress of the running job (answers while <see cref="Run"/> is in progress).</summary>
    [AlwaysInterleave]
    Task<JobProgress> GetProgress();

    /// <summary>The address of the silo this coordinator runs on (<c>SiloAddress.ToParsableString</c>).</summary>
    [AlwaysInterleave]
    Task<string> GetSilo();

    /// <summary>A worker's report: <paramref name="rows"/> rows of shard <paramref name="shard"/> done so far.</summary>
    /// <param name="shard">The shard index.</param>
    /// <param name="rows">Rows done in this attempt.</param>
    [AlwaysInterleave, OneWay]
    Task ReportProgress(int shard, long rows);
}
