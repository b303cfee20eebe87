using System.Diagnostics;
using Allauzen.ML.Data;
using Allauzen.ML.Evaluation;
using Allauzen.ML.Smoothing;
using Microsoft.ML;
using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Orleans.Runtime.Placement;

namespace Allauzen.ML.Orleans;

/// <summary>The coordinator (see <see cref="ICertificationJobGrain"/>).</summary>
/// <param name="silo">The local silo.</param>
public sealed class CertificationJobGrain(ILocalSiloDetails silo) : Grain, ICertificationJobGrain
{
    private static readonly TimeSpan NoSiloWait = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan NoSiloGiveUp = TimeSpan.FromMinutes(2);
    private long[] _rows = [];
    private int _shards, _finished;
    private string[] _runningOn = [];

    /// <inheritdoc />
    public Task<string> GetSilo() => Task.FromResult(silo.SiloAddress.ToParsableString());

    /// <inheritdoc />
    public Task<JobProgress> GetProgress() =>
        Task.FromResult(new JobProgress { Shards = _shards, Finished = _finished, Running = _runningOn.Length, Rows = _rows.Sum(), RunningOn = _runningOn });

    /// <inheritdoc />
    public Task ReportProgress(int shard, long rows)
    {
        if (shard >= 0 && shard < _rows.Length)
            _rows[shard] = rows;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task<JobReport> Run(CertificationJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.Shards.Count == 0)
            throw new ArgumentException("The job has no shards.", nameof(job));
        if (job.MaxAttempts < 1)
            throw new ArgumentOutOfRangeException(nameof(job), job.MaxAttempts, "MaxAttempts must be at least 1.");
        var clock = Stopwatch.StartNew();
        int n = job.Shards.Count;
        _shards = n;
        _finished = 0;
        _rows = new long[n];
        string jobId = this.GetPrimaryKeyString();
        var results = new ShardResult?[n];
        var overhead = new double[n];
        var tried = Enumerable.Range(0, n).Select(_ => new List<SiloAddress>()).ToArray();
        var errors = Enumerable.Range(0, n).Select(_ => new List<string>()).ToArray();
        var pending = new Queue<int>(Enumerable.Range(0, n));
        var running = new Dictionary<Task<ShardResult>, (int Shard, SiloAddress Silo, Stopwatch Clock)>();
        var lost = new HashSet<SiloAddress>();
        var management = GrainFactory.GetGrain<IManagementGrain>(0);
        var noSiloSince = Stopwatch.StartNew();

        while (pending.Count > 0 || running.Count > 0)
        {
            if (pending.Count > 0)
            {
                var busy = running.Values.Select(r => r.Silo).ToHashSet();
                var hosts = await management.GetHosts(onlyActive: true);
                var free = hosts.Keys.Where(s => !lost.Contains(s) && !busy.Contains(s)).OrderBy(s => s.ToParsableString(), StringComparer.Ordinal).ToList();
                int rounds = pending.Count;
                while (rounds-- > 0 && free.Count > 0)
                {
                    int shard = pending.Dequeue();
                    // a silo that has not tried this shard yet, else (all have) any free one
                    var target = free.FirstOrDefault(s => !tried[shard].Contains(s)) ?? free[0];
                    free.Remove(target);
                    tried[shard].Add(target);
                    RequestContext.Set(IPlacementDirector.PlacementHintKey, target);
                    try
                    {
                        var runner = GrainFactory.GetGrain<IShardRunnerGrain>($"{jobId}/{shard}/{tried[shard].Count}/{Guid.NewGuid():N}");
                        running.Add(runner.Run(job, shard, jobId).WaitAsync(job.ShardTimeout), (shard, target, Stopwatch.StartNew()));
                    }
                    finally
                    {
                        RequestContext.Remove(IPlacementDirector.PlacementHintKey);
                    }
                }
                _runningOn = [.. running.Values.Select(r => r.Silo.ToParsableString())];
                if (running.Count == 0)
                {
                    // no live silo free: wait for membership to settle, give up after a while
                    if (noSiloSince.Elapsed > NoSiloGiveUp)
                    {
                        foreach (int shard in pending)
                            errors[shard].Add($"no live silo for {NoSiloGiveUp.TotalSeconds:F0} s");
                        pending.Clear();
                        break;
                    }
                    await Task.Delay(NoSiloWait);
                    continue;
                }
                noSiloSince.Restart();
            }
            var done = await Task.WhenAny(running.Keys);
            var (index, target2, attemptClock) = running[done];
            running.Remove(done);
            _runningOn = [.. running.Values.Select(r => r.Silo.ToParsableString())];
            try
            {
                var result = await done;
                results[index] ??= result; // accepted once: a late duplicate never counts twice
                overhead[index] = attemptClock.Elapsed.TotalMilliseconds - result.WorkMs;
                _finished++;
            }
            catch (Exception e)
            {
                if (IsSiloFailure(e))
                    lost.Add(target2);
                errors[index].Add($"{target2}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                _rows[index] = 0;
                if (tried[index].Count < job.MaxAttempts)
                    pending.Enqueue(index);
                else
                    _finished++;
            }
        }

        var merge = Stopwatch.StartNew();
        var ok = Enumerable.Range(0, n).Where(i => results[i] is not null).ToArray();
        string? merged = null;
        CertifiedAccuracyCounts? counts = null;
        if (ok.Length > 0)
        {
            merged = job.EffectiveMergedOutputPath;
            await Task.Run(() => Merge(job, ok.Select(i => results[i]!.OutputPath), merged));
            if (job.LabelColumnName is not null)
            {
                counts = CertifiedAccuracyCounts.Sum(ok.Select(i => new CertifiedAccuracyCounts(job.Radii, results[i]!.Correct!, results[i]!.Accurate,
                    results[i]!.Rows, results[i]!.Abstained, results[i]!.SaturationRadius)));
            }
        }
        return new JobReport
        {
            Shards = [.. Enumerable.Range(0, n).Select(i => new ShardOutcome
            {
                Name = job.Shards[i].Name, Result = results[i], Attempts = tried[i].Count, Errors = errors[i], OverheadMs = results[i] is null ? 0 : overhead[i],
            })],
            MergedOutputPath = merged, Radii = job.Radii, Correct = counts?.Certified.ToArray(), Accurate = counts?.Correct ?? 0, Rows = ok.Sum(i => results[i]!.Rows),
            Abstained = counts?.Abstained ?? 0, SaturationRadius = counts?.SaturationRadius ?? double.NaN,
            TotalMs = clock.Elapsed.TotalMilliseconds, MergeMs = merge.Elapsed.TotalMilliseconds,
        };
    }

    /// <summary>Concatenates the shard outputs in key order into <paramref name="path"/> (temporary file, then a rename).</summary>
    private static void Merge(CertificationJob job, IEnumerable<string> outputs, string path)
    {
        var ml = new MLContext(seed: 0);
        var view = DataShards.ConcatenateByKey(outputs.Select(o => ml.Data.LoadFromBinary(o)), job.KeyColumnName);
        string tmp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = File.Create(tmp))
                ml.Data.SaveAsBinary(view, stream, keepHidden: false);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }

    /// <summary>Failures of the silo rather than of the shard: the silo is not used again in this job.</summary>
    private static bool IsSiloFailure(Exception e) =>
        e is SiloUnavailableException or OrleansMessageRejectionException or ConnectionFailedException or TimeoutException;
}
