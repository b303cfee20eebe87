using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Allauzen.ML.Diachronic;

/// <summary>
/// Builds a dated sentence corpus from the changelogs installed under <c>/usr/share/doc</c> (the extraction rules of
/// the frozen Debian-changelog corpus): files whose name contains "changelog", "news" or "history" (gzip or plain,
/// identical contents read once); Debian format (bullets of an entry dated by its <c> -- Name &lt;mail&gt;  date</c>
/// trailer) when a trailer appears in the first 400 lines, GNU ChangeLog format (ISO or ctime headers) otherwise;
/// lowercase tokens <c>[a-z][a-z0-9+]*([._-][a-z0-9+]+)*</c> after removing bug numbers, e-mails and URLs;
/// sentences of ≥ 3 tokens, years 1985–2026, (year, sentence) pairs deduplicated, sorted by year.
/// The result depends on the installed packages; tests use the frozen file.
/// </summary>
public static partial class ChangelogExtractor
{
    [GeneratedRegex("(changelog|news|history)", RegexOptions.IgnoreCase)]
    private static partial Regex NameRe();

    [GeneratedRegex(@"^ -- .*?  (?:\w{3}, +)?\d{1,2} \w{3} (\d{4})")]
    private static partial Regex DebTrailer();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9+.-]* \([^)]*\) [^;]*;")]
    private static partial Regex DebHeader();

    [GeneratedRegex(@"^(\d{4})-\d{2}-\d{2}\s+\S")]
    private static partial Regex GnuIso();

    [GeneratedRegex(@"^\w{3} \w{3} +\d{1,2} [\d:]+ (?:[A-Z]{3,4} )?(\d{4})\s")]
    private static partial Regex GnuCtime();

    [GeneratedRegex(@"^\s*(?:[*+-]|\d+[.)])\s+")]
    private static partial Regex Bullet();

    [GeneratedRegex(@"\b(?:https?|ftp)://\S+|\S+@\S+|#\d+")]
    private static partial Regex Noise();

    [GeneratedRegex(@"[a-z][a-z0-9+]*(?:[._-][a-z0-9+]+)*")]
    private static partial Regex Token();

    /// <summary>Tokenises a sentence with the corpus rules.</summary>
    public static string[] Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = Noise().Replace(text.ToLowerInvariant(), " ");
        return Token().Matches(s).Select(m => m.Value.Trim('.', '_', '-')).Where(t => t.Length > 0).ToArray();
    }

    /// <summary>Extracts the dated sentences below <paramref name="docRoot"/>, sorted by year (stable).</summary>
    public static IEnumerable<DatedSentence> Extract(string docRoot = "/usr/share/doc")
    {
        ArgumentException.ThrowIfNullOrEmpty(docRoot);
        var seenFiles = new HashSet<string>(StringComparer.Ordinal);
        var seenPairs = new HashSet<(int, string)>();
        var rows = new List<DatedSentence>();
        if (!Directory.Exists(docRoot))
            return rows;
        var files = new List<string>();
        try
        {
            files.AddRange(Directory.EnumerateFiles(docRoot, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true })
                .Where(f => NameRe().IsMatch(Path.GetFileName(f))).Order(StringComparer.Ordinal));
        }
        catch (IOException)
        {
        }
        foreach (var path in files)
        {
            byte[]? data = Read(path);
            if (data is null || data.Length == 0)
                continue;
            if (!seenFiles.Add(Convert.ToHexString(MD5.HashData(data))))
                continue;
            var lines = Encoding.UTF8.GetString(data).Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
            var got = lines.Take(400).Any(l => DebTrailer().IsMatch(l)) ? ParseDebian(lines) : ParseGnu(lines);
            foreach (var (year, toks) in got)
            {
                if (year is < 1985 or > 2026)
                    continue;
                if (seenPairs.Add((year, string.Join(' ', toks))))
                    rows.Add(new DatedSentence(year, toks));
            }
        }
        return rows.OrderBy(r => r.Year).ToList();
    }

    private static byte[]? Read(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            using var ms = new MemoryStream();
            if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
            {
                using var gz = new GZipStream(f, CompressionMode.Decompress);
                gz.CopyTo(ms);
            }
            else
            {
                f.CopyTo(ms);
            }
            return ms.ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            return null;
        }
    }

    private static void Flush(List<string> buf, int? year, List<(int, string[])> output)
    {
        if (buf.Count > 0 && year is int y)
        {
            var toks = Tokenize(string.Join(' ', buf));
            if (toks.Length >= 3)
                output.Add((y, toks));
        }
        buf.Clear();
    }

    private static List<(int, string[])> ParseDebian(string[] lines)
    {
        var output = new List<(int, string[])>();
        var entry = new List<string>();
        var buf = new List<string>();
        foreach (var ln in lines)
        {
            var m = DebTrailer().Match(ln);
            if (m.Success)
            {
                int year = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                buf.Clear();
                foreach (var b in entry)
                {
                    string t = b.Trim();
                    if (Bullet().IsMatch(b))
                    {
                        Flush(buf, year, output);
                        buf.Add(Bullet().Replace(b, ""));
                    }
                    else if (t.StartsWith('[') && t.EndsWith(']'))
                    {
                        Flush(buf, year, output);
                    }
                    else if (t.Length > 0)
                    {
                        buf.Add(t);
                    }
                    else
                    {
                        Flush(buf, year, output);
                    }
                }
                Flush(buf, year, output);
                entry.Clear();
            }
            else if (DebHeader().IsMatch(ln))
            {
                entry.Clear();
            }
            else
            {
                entry.Add(ln);
            }
        }
        return output;
    }

    private static List<(int, string[])> ParseGnu(string[] lines)
    {
        var output = new List<(int, string[])>();
        var buf = new List<string>();
        int? year = null;
        foreach (var ln in lines)
        {
            var m = GnuIso().Match(ln);
            if (!m.Success)
                m = GnuCtime().Match(ln);
            if (m.Success)
            {
                Flush(buf, year, output);
                year = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                continue;
            }
            if (year is null)
                continue;
            if (Bullet().IsMatch(ln))
            {
                Flush(buf, year, output);
                buf.Add(Bullet().Replace(ln, ""));
            }
            else if (ln.Trim().Length > 0)
            {
                buf.Add(ln.Trim());
            }
            else
            {
                Flush(buf, year, output);
            }
        }
        Flush(buf, year, output);
        return output;
    }
}
