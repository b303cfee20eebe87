namespace Allauzen.ML.Diachronic;

/// <summary>
/// Builds a <see cref="DiachronicCorpus"/> in one pass over sentences given in any order: counts words per slice and
/// buckets each sentence by slice as provisional token ids (order of first occurrence). Buckets stay in memory while
/// they hold at most <c>maxInMemoryBytes</c>; beyond that every slice's bucket is appended to one temporary file
/// (a compact token-id format, deleted on dispose) and the memory is released.
/// <see cref="Build"/> then fixes the vocabulary and, slice by slice, orders the sentences canonically — by time value,
/// then by the optional order value (e.g. the corpus line number), then by a seeded hash of their tokens, then by their
/// token ids — so the token streams, and everything trained on them, do not depend on the order of the rows.
/// </summary>
internal sealed class DiachronicCorpusBuilder : IDisposable
{
    // per sentence: time (8), order (8), hash (8), token count (4), ids (4 each); the same layout in memory and on disk
    private const int SentenceBytes = 28;
    private readonly int _sliceCount;
    private readonly ulong _seed;
    private readonly long _maxInMemoryBytes;
    private readonly Dictionary<string, int> _provisional = new(StringComparer.Ordinal);
    private readonly List<string> _words = [];
    private readonly List<long[]> _counts = [];
    private readonly Bucket[] _buckets;
    private long _bufferedBytes;
    private FileStream? _spill;
    private string? _spillPath;

    public DiachronicCorpusBuilder(int sliceCount, int seed, long maxInMemoryBytes)
    {
        _sliceCount = sliceCount;
        _seed = (ulong)seed;
        _maxInMemoryBytes = maxInMemoryBytes;
        _buckets = new Bucket[sliceCount];
        for (int t = 0; t < sliceCount; t++)
            _buckets[t] = new Bucket();
    }

    /// <summary>Number of times the buckets were written to the temporary file.</summary>
    public int Spills { get; private set; }

    /// <summary>Adds one sentence of slice <paramref name="slice"/> with time value <paramref name="time"/> and order value <paramref name="order"/>.</summary>
    public void Add(int slice, long time, long order, IReadOnlyList<string> tokens)
    {
        var b = _buckets[slice];
        ulong h = 0xCBF29CE484222325UL; // FNV-1a over the characters, 0xFFFF between tokens
        b.Times.Add(time);
        b.Orders.Add(order);
        b.Lengths.Add(tokens.Count);
        foreach (var w in tokens)
        {
            if (!_provisional.TryGetValue(w, out int id))
            {
                id = _words.Count;
                _provisional[w] = id;
                _words.Add(w);
                _counts.Add(new long[_sliceCount]);
            }
            _counts[id][slice]++;
            b.Ids.Add(id);
            foreach (char c in w)
                h = (h ^ c) * 0x100000001B3UL;
            h = (h ^ 0xFFFF) * 0x100000001B3UL;
        }
        b.Hashes.Add(SkipGramEngine.Hash(_seed, h, 0x5E47));
        _bufferedBytes += SentenceBytes + 4L * tokens.Count;
        if (_bufferedBytes > _maxInMemoryBytes)
            Spill();
    }

    private void Spill()
    {
        if (_spill is null)
        {
            _spillPath = Path.Combine(Path.GetTempPath(), $"allauzen-diachronic-{Guid.NewGuid():N}.bin");
            _spill = new FileStream(_spillPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        }
        var w = new BinaryWriter(_spill);
        foreach (var b in _buckets)
        {
            if (b.Times.Count == 0)
                continue;
            long start = _spill.Position;
            int p = 0;
            for (int i = 0; i < b.Times.Count; i++)
            {
                w.Write(b.Times[i]);
                w.Write(b.Orders[i]);
                w.Write(b.Hashes[i]);
                w.Write(b.Lengths[i]);
                for (int j = 0; j < b.Lengths[i]; j++)
                    w.Write(b.Ids[p++]);
            }
            w.Flush();
            b.Segments.Add((start, b.Times.Count));
            b.Clear();
        }
        _bufferedBytes = 0;
        Spills++;
    }

    /// <summary>The sentences of one slice: those spilled to the file, then those still in memory.</summary>
    private IEnumerable<Sentence> Sentences(int slice)
    {
        var b = _buckets[slice];
        if (b.Segments.Count > 0)
        {
            var r = new BinaryReader(_spill!);
            foreach (var (start, count) in b.Segments)
            {
                _spill!.Position = start;
                for (int i = 0; i < count; i++)
                {
                    long time = r.ReadInt64();
                    long order = r.ReadInt64();
                    ulong hash = r.ReadUInt64();
                    var ids = new int[r.ReadInt32()];
                    for (int j = 0; j < ids.Length; j++)
                        ids[j] = r.ReadInt32();
                    yield return new Sentence(time, order, hash, ids);
                }
            }
        }
        int p = 0;
        for (int i = 0; i < b.Times.Count; i++)
        {
            var ids = b.Ids.GetRange(p, b.Lengths[i]).ToArray();
            p += ids.Length;
            yield return new Sentence(b.Times[i], b.Orders[i], b.Hashes[i], ids);
        }
    }

    /// <summary>
    /// Keeps the words with total ≥ <paramref name="minCount"/> (at most <paramref name="maxVocabulary"/>, 0 = all), assigns
    /// stable ids (slice of first occurrence, then decreasing count, then ordinal) and encodes every slice's stream in
    /// canonical sentence order. Releases the buckets slice by slice.
    /// </summary>
    public DiachronicCorpus Build(long origin, int width, int minCount, int maxVocabulary, CancellationToken cancel = default)
    {
        var kept = Enumerable.Range(0, _words.Count)
            .Select(i => (Id: i, Total: _counts[i].Sum()))
            .Where(x => x.Total >= minCount)
            .OrderByDescending(x => x.Total).ThenBy(x => _words[x.Id], StringComparer.Ordinal)
            .ToList();
        if (maxVocabulary > 0 && kept.Count > maxVocabulary)
            kept = kept.Take(maxVocabulary).ToList();
        int First(long[] c)
        {
            int t = 0;
            while (t < c.Length && c[t] == 0)
                t++;
            return t;
        }
        var ordered = kept.Select((x, rank) => (x.Id, First: First(_counts[x.Id]), Rank: rank))
            .OrderBy(x => x.First).ThenBy(x => x.Rank).Select(x => x.Id).ToArray();
        var map = new int[_words.Count];
        Array.Fill(map, -1);
        for (int i = 0; i < ordered.Length; i++)
            map[ordered[i]] = i;
        var words = ordered.Select(i => _words[i]).ToArray();
        var sliceCounts = new long[_sliceCount][];
        for (int t = 0; t < _sliceCount; t++)
        {
            sliceCounts[t] = new long[words.Length];
            for (int w = 0; w < words.Length; w++)
                sliceCounts[t][w] = _counts[ordered[w]][t];
        }
        var tokens = new int[_sliceCount][];
        var ends = new int[_sliceCount][];
        for (int t = 0; t < _sliceCount; t++)
        {
            cancel.ThrowIfCancellationRequested();
            var sentences = new List<Sentence>();
            foreach (var sentence in Sentences(t))
            {
                var ids = sentence.Ids;
                int n = 0;
                foreach (int id in ids)
                {
                    if (map[id] >= 0)
                        ids[n++] = map[id];
                }
                if (n > 0)
                    sentences.Add(sentence with { Ids = n == ids.Length ? ids : ids[..n] });
            }
            _buckets[t].Clear();
            _buckets[t].Segments.Clear();
            sentences.Sort(Canonical);
            // copies of one sentence (same time, order and tokens) would sit side by side: the k-th copy gets its own hash, so
            // copies are spread like distinct sentences (still order-free: the copies are indistinguishable)
            bool copies = false;
            var first = sentences.Count > 0 ? sentences[0] : default;
            for (int i = 1, k = 0; i < sentences.Count; i++)
            {
                var cur = sentences[i];
                k = Canonical(first, cur) == 0 ? k + 1 : 0;
                if (k == 0)
                {
                    first = cur;
                }
                else
                {
                    sentences[i] = cur with { Hash = SkipGramEngine.Hash(_seed, cur.Hash, (ulong)k) };
                    copies = true;
                }
            }
            if (copies)
                sentences.Sort(Canonical);
            tokens[t] = new int[sentences.Sum(s => s.Ids.Length)];
            ends[t] = new int[sentences.Count];
            int p = 0;
            for (int i = 0; i < sentences.Count; i++)
            {
                sentences[i].Ids.CopyTo(tokens[t], p);
                p += sentences[i].Ids.Length;
                ends[t][i] = p;
            }
        }
        return new DiachronicCorpus(words, sliceCounts, tokens, ends, origin, width);
    }

    private static int Canonical(Sentence a, Sentence b)
    {
        int c = a.Time.CompareTo(b.Time);
        if (c == 0)
            c = a.Order.CompareTo(b.Order);
        if (c == 0)
            c = a.Hash.CompareTo(b.Hash);
        return c != 0 ? c : a.Ids.AsSpan().SequenceCompareTo(b.Ids);
    }

    public void Dispose()
    {
        _spill?.Dispose();
        if (_spillPath is not null && File.Exists(_spillPath))
            File.Delete(_spillPath);
    }

    private readonly record struct Sentence(long Time, long Order, ulong Hash, int[] Ids);

    private sealed class Bucket
    {
        public List<long> Times { get; } = [];

        public List<long> Orders { get; } = [];

        public List<ulong> Hashes { get; } = [];

        public List<int> Lengths { get; } = [];

        public List<int> Ids { get; } = [];

        public List<(long Start, int Count)> Segments { get; } = [];

        public void Clear()
        {
            Times.Clear();
            Orders.Clear();
            Hashes.Clear();
            Lengths.Clear();
            Ids.Clear();
            Times.TrimExcess();
            Orders.TrimExcess();
            Hashes.TrimExcess();
            Lengths.TrimExcess();
            Ids.TrimExcess();
        }
    }
}
