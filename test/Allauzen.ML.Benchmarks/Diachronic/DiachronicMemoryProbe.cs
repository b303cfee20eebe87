using System.Diagnostics;
using System.Globalization;
using Allauzen.ML.Diachronic;
using Microsoft.ML;

namespace Allauzen.ML.Benchmarks;

/// <summary>
/// Peak working set of the diachronic reading pass over a streamed corpus (not BenchmarkDotNet: one run per process,
/// compare processes): <c>--diachronic-memory [factor=1] [maxInMemoryMB=1024] [--fit]</c> streams the CI corpus
/// (Data/debian-changelogs-ci.tsv.gz, 3 slices of 8 years, min count 5 × factor so the vocabulary is the same) <c>factor</c> times through <c>LoadFromEnumerable</c> of a
/// lazy enumerable (no row is held by the view), runs the two passes of <c>Fit</c> (vocabulary, buckets spilled beyond
/// <c>MaxInMemoryBytes</c>, canonical streams) and prints the process's working set before and its peak after;
/// <c>--fit</c> runs the whole <c>Fit</c> instead, which also trains the dynamic Bernoulli model (K = 64, 100 + 100 steps of
/// 1 %/factor of every slice, so the training work does not grow with the factor), so the peak includes the model state.
/// </summary>
/// <example><c>dotnet test/Allauzen.ML.Benchmarks/bin/Release/net10.0/Allauzen.ML.Benchmarks.dll --diachronic-memory 10 8</c></example>
public static class DiachronicMemoryProbe
{
    private sealed class Row
    {
        public string[] Tokens { get; set; } = [];

        public int Slice { get; set; }
    }

    public static void Run(string[] args)
    {
        var numbers = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
        int factor = numbers.Length > 0 ? int.Parse(numbers[0], CultureInfo.InvariantCulture) : 1;
        long maxBytes = (numbers.Length > 1 ? long.Parse(numbers[1], CultureInfo.InvariantCulture) : 1024) << 20;
        string path = Path.Combine(AppContext.BaseDirectory, "Data", "debian-changelogs-ci.tsv.gz");
        IEnumerable<Row> Stream()
        {
            for (int r = 0; r < factor; r++)
            {
                foreach (var s in DatedCorpus.ReadTsv(path))
                {
                    if (s.Year is >= 1999 and < 2023)
                        yield return new Row { Tokens = s.Tokens, Slice = (s.Year - 1999) / 8 };
                }
            }
        }
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(Stream());
        var o = new DiachronicEmbeddingsOptions
        {
            TokensColumnName = nameof(Row.Tokens), TimeColumnName = nameof(Row.Slice), Model = DiachronicModel.DynamicBernoulli,
            Dimensions = 64, MaxInMemoryBytes = maxBytes,
            MinCount = 5 * factor, // the same vocabulary at every factor (every count is multiplied by the factor)
            BatchFraction = 0.01 / factor, // the same tokens per training step, so --fit trains for the same time at every factor
            StaticSteps = 100, DynamicSteps = 100,
        };
        using var self = Process.GetCurrentProcess();
        long start = self.WorkingSet64;
        // peak working set of the process, and its growth over the working set before the passes
        string Memory()
        {
            self.Refresh();
            return string.Create(CultureInfo.InvariantCulture,
                $"peak {self.PeakWorkingSet64 / 1048576.0:0} MB (+{(self.PeakWorkingSet64 - start) / 1048576.0:0} MB over the {start / 1048576.0:0} MB before)");
        }
        var sw = Stopwatch.StartNew();
        if (args.Contains("--fit"))
        {
            using var m = ml.Transforms.Text.DiachronicEmbeddings(o).Fit(view);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fit ×{factor}, MaxInMemoryBytes {maxBytes >> 20} MB: V = {m.Vocabulary.Count:N0}, {sw.Elapsed.TotalSeconds:0.0} s; {Memory()}"));
            return;
        }
        var corpus = DiachronicEmbeddingsEstimator.ReadCorpus(view, o);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"read ×{factor}, MaxInMemoryBytes {maxBytes >> 20} MB: {corpus.TokenCount:N0} tokens, V = {corpus.VocabularySize:N0}, streams {corpus.TokenCount * 4 / 1048576.0:0} MB, {sw.Elapsed.TotalSeconds:0.0} s; {Memory()}"));
    }
}
