using System.Runtime.InteropServices;

namespace Allauzen.ML.Samples.Common;

/// <summary>Runs another sample entry point (mlp-consume, speech-consume, foton-run) in a fresh process of this executable.</summary>
public static class ChildProcess
{
    /// <summary>
    /// Runs this executable with <paramref name="args"/> and returns its exit code; with <paramref name="onLine"/>,
    /// the child's standard output is read line by line (otherwise it shares the parent's).
    /// </summary>
    public static int Run(IEnumerable<string> args, Action<string>? onLine = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false, RedirectStandardOutput = onLine is not null };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            psi.ArgumentList.Add(typeof(ChildProcess).Assembly.Location);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            psi.Environment[key] = value;
        using var p = Process.Start(psi)!;
        if (onLine is not null)
        {
            while (p.StandardOutput.ReadLine() is { } line)
                onLine(line);
        }
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>The Score column of <paramref name="scored"/> as raw little-endian float bytes (for bit-for-bit comparisons across processes).</summary>
    public static byte[] ScoreBytes(IDataView scored) =>
        MemoryMarshal.AsBytes(scored.GetColumn<float[]>("Score").SelectMany(s => s).ToArray().AsSpan()).ToArray();

    /// <summary>Child side of a reload check: compares <paramref name="scored"/> with the parent's score file; exit code 0 when identical.</summary>
    public static int CompareScores(IDataView scored, string scoresPath)
    {
        var actual = ScoreBytes(scored);
        bool same = File.ReadAllBytes(scoresPath).AsSpan().SequenceEqual(actual);
        Console.WriteLine($"  fresh process: {actual.Length / 4} score values, identical: {same}");
        return same ? 0 : 1;
    }
}
