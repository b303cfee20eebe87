using Allauzen.ML.Diachronic;
using Microsoft.ML;

namespace Allauzen.ML.Tests.Diachronic;

public sealed class SentenceRow
{
    public string[] Tokens { get; set; } = [];

    public int Slice { get; set; }
}

public sealed class TextRow
{
    public string Text { get; set; } = "";

    public int Year { get; set; }
}

/// <summary>Small synthetic dated corpora and the CI slice of the Debian-changelog corpus.</summary>
internal static class DiachronicTestData
{
    public static string CiCorpusPath => Path.Combine(AppContext.BaseDirectory, "Data", "debian-changelogs-ci.tsv.gz");

    /// <summary>
    /// Three topics of 10 words (a*, b*, c*); "shifters" s0..s3 co-occur with topic a in the first half of the slices and
    /// with topic b in the second half; "stable" words st0..st3 always with topic c. Sentences of 8 tokens.
    /// </summary>
    public static List<SlicedSentence> Synthetic(int slices, int sentencesPerSlice, int seed, int firstNewSlice = -1)
    {
        var r = new Random(seed);
        var result = new List<SlicedSentence>();
        for (int t = 0; t < slices; t++)
        {
            for (int n = 0; n < sentencesPerSlice; n++)
            {
                int topic = r.Next(3);
                var toks = new List<string>();
                for (int i = 0; i < 7; i++)
                    toks.Add($"{"abc"[topic]}{r.Next(10)}");
                if (topic == 2)
                    toks.Insert(r.Next(8), $"st{r.Next(4)}");
                else if ((topic == 0) == (t < slices / 2))
                    toks.Insert(r.Next(8), $"s{r.Next(4)}");
                if (firstNewSlice >= 0 && t >= firstNewSlice && r.Next(4) == 0)
                    toks.Insert(r.Next(8), $"new{r.Next(3)}");
                result.Add(new SlicedSentence(t, toks.ToArray()));
            }
        }
        return result;
    }

    public static IDataView ToDataView(MLContext ml, IEnumerable<SlicedSentence> sentences) =>
        ml.Data.LoadFromEnumerable(sentences.OrderBy(s => s.Slice).Select(s => new SentenceRow { Tokens = s.Tokens, Slice = s.Slice }).ToList());

    public static DiachronicEmbeddingsOptions Options(DiachronicModel model) => new()
    {
        TokensColumnName = nameof(SentenceRow.Tokens),
        TimeColumnName = nameof(SentenceRow.Slice),
        Model = model,
        Dimensions = 16,
        MinCount = 1,
        Epochs = 3,
        InitEpochs = 3,
        Threads = 1,
        Window = 3,
        Subsampling = 0,
        StaticSteps = 60,
        DynamicSteps = 80,
        BatchFraction = 0.25,
        DriftPrecision = 10,
        Seed = 3,
    };

    public static double MeanDrift(DiachronicEmbeddingsTransformer m) =>
        m.GetDriftRanking(0, m.SliceCount - 1, 1).Average(x => x.Drift);

    public static double Spearman(IReadOnlyList<(string Word, double Drift)> a, IReadOnlyList<(string Word, double Drift)> b)
    {
        var ra = Ranks(a);
        var rb = Ranks(b);
        var common = ra.Keys.Where(rb.ContainsKey).ToArray();
        double ma = common.Average(w => ra[w]), mb = common.Average(w => rb[w]);
        double num = 0, da = 0, db = 0;
        foreach (var w in common)
        {
            num += (ra[w] - ma) * (rb[w] - mb);
            da += (ra[w] - ma) * (ra[w] - ma);
            db += (rb[w] - mb) * (rb[w] - mb);
        }
        return num / Math.Sqrt(da * db);
    }

    private static Dictionary<string, double> Ranks(IReadOnlyList<(string Word, double Drift)> x) =>
        x.Select((e, i) => (e.Word, Rank: (double)i)).ToDictionary(e => e.Word, e => e.Rank);
}
