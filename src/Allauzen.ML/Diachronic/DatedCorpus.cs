using System.IO.Compression;
using System.Text;

namespace Allauzen.ML.Diachronic;

/// <summary>A dated, tokenised sentence.</summary>
/// <param name="Year">Year (or any integer time value).</param>
/// <param name="Tokens">Tokens.</param>
public sealed record DatedSentence(int Year, string[] Tokens);

/// <summary>Reads dated corpora in the TSV layout of the Debian-changelog corpus (<c>year&lt;TAB&gt;tokens</c> or <c>year&lt;TAB&gt;package&lt;TAB&gt;tokens</c>, gzip or plain) and bins them.</summary>
public static class DatedCorpus
{
    /// <summary>Reads a TSV file (".gz" is decompressed). Blank lines are skipped; a malformed line is an error naming the line.</summary>
    public static IEnumerable<DatedSentence> ReadTsv(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        int lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            if (line.Length == 0)
                continue;
            var parts = line.Split('\t');
            if (parts.Length < 2 || !int.TryParse(parts[0], out int year))
                throw new InvalidDataException($"'{path}' line {lineNo}: expected 'year<TAB>tokens' or 'year<TAB>package<TAB>tokens'.");
            yield return new DatedSentence(year, parts[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        }
    }

    /// <summary>Keeps the sentences of years [<paramref name="firstYear"/>, <paramref name="firstYear"/> + slices·width) and numbers their slices.</summary>
    public static List<SlicedSentence> Bin(IEnumerable<DatedSentence> sentences, int firstYear, int width, int slices)
    {
        ArgumentNullException.ThrowIfNull(sentences);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        var result = new List<SlicedSentence>();
        foreach (var s in sentences)
        {
            if (s.Year < firstYear)
                continue;
            int slice = (s.Year - firstYear) / width;
            if (slice < slices)
                result.Add(new SlicedSentence(slice, s.Tokens));
        }
        return result;
    }
}
