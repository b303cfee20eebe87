using System.Diagnostics;
using System.Text.Json.Nodes;
using Allauzen.ML.Persistence;
using Allauzen.ML.Smoothing;
using Microsoft.ML;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>
/// Issue #14 item 6: every payload kind, saved and then mutated (truncated, bytes flipped, declared lengths inflated,
/// settings, shapes and counts tampered and signed again, entries swapped between components, the ML.NET zip damaged),
/// either loads and scores, or fails with an <see cref="InvalidDataException"/> / <see cref="FormatException"/> that names
/// the file or the component, within 2 s and 200 MB per case. Figures in docs/results/hardening.md.
/// </summary>
[TestClass]
public sealed class PayloadFuzzTests
{
    private const long MemoryLimit = 200L << 20;
    private const int TimeLimitMs = 2000;

    public TestContext TestContext { get; set; } = null!;

    /// <summary>One mutated file: its bytes, whether a correct loader must see the damage (unsigned change: the scores must
    /// then be identical if it loads), and whether it goes through ml.Model.Load (an ML.NET zip) instead of the payload loader.</summary>
    private sealed record Case(string What, byte[] Bytes, bool Detectable, bool Zip = false);

    [TestMethod]
    [TestCategory("Slow")]
    public void FuzzEveryPayloadKind()
    {
        var report = new List<string> { "kind | cases | loaded, same scores | loaded, re-signed change | refused | worst load ms | worst managed MB | worst peak growth MB" };
        var failures = new List<string>();
        foreach (var (model, index) in TinyModels.All.Select((m, i) => (m, i)))
        {
            string baseline = ScoreSnapshot.Of(model.Transformer, model.Input);
            var rng = new Random(20261206 + 1000 * index);
            var cases = Cases(model, rng).ToList();
            int same = 0, changed = 0, refused = 0;
            double worstMs = 0, worstManaged = 0, worstPeak = 0;
            var process = Process.GetCurrentProcess();
            for (int i = 0; i < cases.Count; i++)
            {
                var c = cases[i];
                string source = $"fuzz-{model.Kind}-{i}.bin";
                process.Refresh();
                long peak = process.PeakWorkingSet64;
                long managed = GC.GetTotalAllocatedBytes(precise: true);
                var clock = Stopwatch.StartNew();
                ITransformer? loaded = null;
                Exception? error = null;
                try
                {
                    loaded = c.Zip ? TinyModels.Ml.Model.Load(new MemoryStream(c.Bytes), out _) : TinyModels.Load(c.Bytes, source);
                }
                catch (Exception ex)
                {
                    error = ex;
                }
                clock.Stop();
                long allocated = GC.GetTotalAllocatedBytes(precise: true) - managed;
                process.Refresh();
                long grown = Math.Max(0, process.PeakWorkingSet64 - peak);
                worstMs = Math.Max(worstMs, clock.Elapsed.TotalMilliseconds);
                worstManaged = Math.Max(worstManaged, allocated / 1048576.0);
                worstPeak = Math.Max(worstPeak, grown / 1048576.0);
                string label = $"{model.Kind} case {i} ({c.What})";
                if (clock.ElapsedMilliseconds > TimeLimitMs || allocated > MemoryLimit || grown > MemoryLimit)
                    failures.Add($"{label}: {clock.ElapsedMilliseconds} ms, {allocated >> 20} MB managed, {grown >> 20} MB peak growth");
                if (error is not null)
                {
                    refused++;
                    if (Problem(error, c.Zip ? null : source, model) is { } problem)
                        failures.Add($"{label}: {problem}");
                    continue;
                }
                try
                {
                    if (Score(loaded!, model, c.Detectable) is { } scores)
                    {
                        if (scores == baseline)
                            same++;
                        else if (c.Detectable)
                            failures.Add($"{label}: loaded a damaged file and scored differently");
                        else
                            changed++;
                    }
                    else
                    {
                        changed++;
                    }
                }
                catch (Exception ex)
                {
                    failures.Add($"{label}: loaded, then scoring threw {ex.GetType().Name}: {ex.Message}");
                }
                finally
                {
                    (loaded as IDisposable)?.Dispose();
                }
            }
            report.Add($"{model.Kind} | {cases.Count} | {same} | {changed} | {refused} | {worstMs:F0} | {worstManaged:F1} | {worstPeak:F0}");
            Assert.IsGreaterThanOrEqualTo(500, cases.Count, model.Kind);
        }
        foreach (var line in report)
            TestContext.WriteLine(line);
        Console.WriteLine(string.Join(Environment.NewLine, report));
        Assert.IsEmpty(failures, string.Join(Environment.NewLine, failures.Take(40)));
    }

    /// <summary>Null when a load failure is acceptable: our exception types, naming the file or the component.</summary>
    private static string? Problem(Exception error, string? source, TinyModels.Model model)
    {
        var chain = new List<Exception>();
        for (var e = error; e is not null; e = e.InnerException)
            chain.Add(e);
        var ours = chain.FirstOrDefault(e => e is InvalidDataException or FormatException);
        bool typeOk = ours is not null && (ReferenceEquals(ours, error) || error is InvalidOperationException);
        string messages = string.Join(" | ", chain.Select(e => e.Message));
        if (source is null && !messages.Contains("Allauzen", StringComparison.Ordinal))
        {
            // Damage to the zip or to ML.NET's own streams, met by System.IO.Compression or ML.NET before our payload
            // (a stream has no name to give): their corruption exceptions are accepted.
            return typeOk || chain.Any(e => e is EndOfStreamException or FileLoadException) ? null
                : $"threw {string.Join(" <- ", chain.Select(e => e.GetType().Name))}: {error.Message}";
        }
        if (!typeOk)
            return $"threw {string.Join(" <- ", chain.Select(e => e.GetType().Name))}: {error.Message}";
        var component = AllauzenLoaders.TryGet(model.Signature)?.ComponentName ?? model.Kind;
        bool named = (source is not null && messages.Contains(source, StringComparison.Ordinal))
            || messages.Contains(component, StringComparison.Ordinal) || messages.Contains("Allauzen", StringComparison.Ordinal);
        return named ? null : $"names neither the file nor the component: {messages}";
    }

    /// <summary>The scores of a loaded model (null when its schema no longer fits the data, a legitimate outcome of a re-signed change).</summary>
    private static string? Score(ITransformer loaded, TinyModels.Model model, bool detectable)
    {
        if (!detectable)
        {
            try
            {
                loaded.GetOutputSchema(model.Input.Schema);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                return null;
            }
            // A re-signed file may legitimately ask for a lot of sampling (n up to 2^31): score only cheap settings.
            if (loaded is SmoothingTransformerBase s && (long)s.Settings.SelectionSamples + s.Settings.EstimationSamples > 100_000)
                return null;
        }
        return ScoreSnapshot.Of(loaded, model.Input);
    }

    private static IEnumerable<Case> Cases(TinyModels.Model model, Random rng)
    {
        byte[] bytes = model.Payload;
        var raw = model.Raw();

        // 1. Truncation at every 1/16th, and random byte flips: caught by the length and checksum checks.
        for (int k = 0; k < 16; k++)
            yield return new Case($"truncated at {k}/16", bytes[..(bytes.Length * k / 16)], true);
        for (int k = 0; k < 100; k++)
        {
            var copy = (byte[])bytes.Clone();
            for (int f = rng.Next(1, 5); f > 0; f--)
                copy[rng.Next(copy.Length)] ^= (byte)rng.Next(1, 256);
            yield return new Case("bytes flipped", copy, true);
        }

        // 2. Declared lengths inflated (then signed again).
        long[] lengths = [1, 8, 1 << 20, int.MaxValue, long.MaxValue, -1];
        for (int k = 0; k < 60; k++)
        {
            var p = raw.Clone();
            var e = p.Entries[rng.Next(p.Entries.Count)];
            e.DeclaredLength = e.Data.Length + lengths[rng.Next(lengths.Length)];
            yield return new Case($"declared length of '{e.Name}' inflated", p.ToBytes(), false);
        }

        // 3. Bytes flipped inside one entry, signed again.
        for (int k = 0; k < 120; k++)
        {
            var p = raw.Clone();
            var e = p.Entries[rng.Next(p.Entries.Count)];
            if (e.Data.Length > 0)
            {
                for (int f = rng.Next(1, 4); f > 0; f--)
                    e.Data[rng.Next(e.Data.Length)] ^= (byte)rng.Next(1, 256);
            }
            yield return new Case($"'{e.Name}' bytes flipped, re-signed", p.ToBytes(), false);
        }

        // 4. Settings tampered: one JSON field set to an awkward value or removed, signed again.
        var jsonEntries = raw.Entries.Where(e => e.Kind == (byte)PayloadEntryKind.Json).Select(e => e.Name).ToArray();
        for (int k = 0; k < 160 && jsonEntries.Length > 0; k++)
        {
            var p = raw.Clone();
            string name = jsonEntries[rng.Next(jsonEntries.Length)];
            var root = p.Json(name);
            var slots = Slots(root).ToList();
            if (slots.Count == 0)
                continue;
            var (parent, key, index) = slots[rng.Next(slots.Count)];
            var value = Awkward(rng);
            string what;
            if (key is not null && rng.Next(8) == 0)
            {
                ((JsonObject)parent).Remove(key);
                what = $"'{name}'.{key} removed";
            }
            else
            {
                if (key is not null)
                    parent[key] = value;
                else
                    parent[index] = value;
                what = $"'{name}'.{key ?? index.ToString()} = {value?.ToJsonString() ?? "null"}";
            }
            p.SetJson(name, root);
            yield return new Case(what, p.ToBytes(), false);
        }

        // 5. Tensor shapes, string lists and integers tampered, signed again.
        for (int k = 0; k < 100; k++)
        {
            var p = raw.Clone();
            var e = p.Entries[rng.Next(p.Entries.Count)];
            string what;
            switch ((PayloadEntryKind)e.Kind)
            {
                case PayloadEntryKind.Float32Tensor or PayloadEntryKind.Float64Tensor when e.Shape.Length > 0:
                    var shape = (long[])e.Shape.Clone();
                    int d = rng.Next(shape.Length);
                    switch (rng.Next(4))
                    {
                        case 0:
                            Array.Reverse(shape);
                            break;
                        case 1:
                            shape[d] = new long[] { 0, 1, 20000, 20_000_000, long.MaxValue, -1 }[rng.Next(6)];
                            break;
                        case 2:
                            shape = [.. shape, 1];
                            break;
                        default:
                            shape = [shape.Aggregate(1L, (a, b) => a * b)];
                            break;
                    }
                    e.Shape = shape;
                    what = $"'{e.Name}' shape [{string.Join(", ", shape)}]";
                    break;
                case PayloadEntryKind.Strings:
                    var list = new ModelPayloadReader(p.ToBytes(), "x").ReadStrings(e.Name).ToList();
                    if (list.Count > 0 && rng.Next(2) == 0)
                        list.RemoveAt(rng.Next(list.Count));
                    else
                        list.Add(rng.Next(2) == 0 ? "" : "extra");
                    p.SetStrings(e.Name, list);
                    what = $"'{e.Name}' now {list.Count} strings";
                    break;
                case PayloadEntryKind.Int64s:
                    long v = new long[] { 0, -1, 1, 20000, int.MaxValue, long.MaxValue, long.MinValue }[rng.Next(7)];
                    if (rng.Next(4) == 0)
                        p.SetInt64s(e.Name);
                    else
                        p.SetInt64s(e.Name, v);
                    what = $"'{e.Name}' = {v}";
                    break;
                case PayloadEntryKind.String:
                    e.Data = rng.Next(2) == 0 ? [] : "ALZ-MLP_"u8.ToArray();
                    what = $"'{e.Name}' replaced";
                    break;
                default:
                    e.Data = e.Data.Length > 1 ? e.Data[..rng.Next(e.Data.Length)] : [1, 2, 3];
                    what = $"'{e.Name}' cut";
                    break;
            }
            yield return new Case(what, p.ToBytes(), false);
        }

        // 6. Parts swapped between components: an entry taken from another kind, an entry dropped, another kind's signature.
        var others = TinyModels.All.Where(m => m.Kind != model.Kind).Select(m => m.Raw()).ToArray();
        for (int k = 0; k < 60; k++)
        {
            var p = raw.Clone();
            var other = others[rng.Next(others.Length)];
            string what;
            switch (rng.Next(4))
            {
                case 0:
                    var shared = p.Entries.Where(e => other.Entries.Any(o => o.Name == e.Name)).ToArray();
                    if (shared.Length == 0)
                        goto case 1;
                    var mine = shared[rng.Next(shared.Length)];
                    p.Entries[p.Entries.IndexOf(mine)] = other[mine.Name].Clone();
                    what = $"'{mine.Name}' from {other.ComponentName}";
                    break;
                case 1:
                    var dropped = p.Entries[rng.Next(p.Entries.Count)];
                    p.Entries.Remove(dropped);
                    what = $"'{dropped.Name}' dropped";
                    break;
                case 2:
                    p.Signature = other.Signature;
                    what = $"signature of {other.ComponentName}";
                    break;
                default:
                    var extra = other.Entries[rng.Next(other.Entries.Count)].Clone();
                    if (p.Entries.Any(e => e.Name == extra.Name))
                        extra.Name += ".x";
                    p.Entries.Add(extra);
                    what = $"'{extra.Name}' of {other.ComponentName} added";
                    break;
            }
            yield return new Case(what, p.ToBytes(), false);
        }

        // 7. The ML.NET zip (ml.Model.Save) truncated or with bytes flipped, loaded by ml.Model.Load.
        using var zip = new MemoryStream();
        TinyModels.Ml.Model.Save(model.Transformer, model.Input.Schema, zip);
        byte[] zipped = zip.ToArray();
        yield return new Case("ML.NET zip intact", zipped, true, Zip: true);
        for (int k = 1; k < 16; k++)
            yield return new Case($"ML.NET zip truncated at {k}/16", zipped[..(zipped.Length * k / 16)], true, Zip: true);
        for (int k = 0; k < 24; k++)
        {
            var copy = (byte[])zipped.Clone();
            copy[rng.Next(copy.Length)] ^= (byte)rng.Next(1, 256);
            yield return new Case("ML.NET zip byte flipped", copy, true, Zip: true);
        }
    }

    /// <summary>Every value slot of a JSON tree: (parent, property name or null, array index).</summary>
    private static IEnumerable<(JsonNode Parent, string? Key, int Index)> Slots(JsonNode node)
    {
        if (node is JsonObject o)
        {
            foreach (var (key, child) in o.ToArray())
            {
                yield return (o, key, -1);
                if (child is not null)
                {
                    foreach (var s in Slots(child))
                        yield return s;
                }
            }
        }
        else if (node is JsonArray a)
        {
            for (int i = 0; i < a.Count; i++)
            {
                yield return (a, null, i);
                if (a[i] is { } child)
                {
                    foreach (var s in Slots(child))
                        yield return s;
                }
            }
        }
    }

    private static JsonNode? Awkward(Random rng) => rng.Next(22) switch
    {
        0 => 0,
        1 => -1,
        2 => -16,
        3 => 1,
        4 => 2,
        5 => 3,
        6 => 20000,
        7 => int.MaxValue,
        8 => long.MaxValue,
        9 => 1e308,
        10 => "NaN",
        11 => "Infinity",
        12 => "-Infinity",
        13 => null,
        14 => "",
        15 => "Bogus",
        16 => new JsonArray(),
        17 => new JsonArray(20000),
        18 => new JsonArray(-1),
        19 => 0.99,
        20 => true,
        _ => new JsonObject(),
    };
}
