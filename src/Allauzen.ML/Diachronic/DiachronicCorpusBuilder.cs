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
    public void Add(int slice, long time, long order, IReadOnlyList<string> tokens) =>
        Add(slice, time, order, tokens.Select(w => w.AsMemory()).ToList());

    /// <summary>As <see cref="Add(int, long, long, IReadOnlyList{string})"/>; a word already seen costs no allocation.</summary>
    public void Add(int slice, long time, long order, List<ReadOnlyMemory<char>> tokens)
    {
        var b = _buckets[slice];
        var lookup = _provisional.GetAlternateLookup<ReadOnlySpan<char>>();
        ulong h = 0xCBF29CE484222325UL; // FNV-1a over the characters, 0xFFFF between tokens
        b.Times.Add(time);
        b.Orders.Add(order);
        b.Lengths.Add(tokens.Count);
        foreach (var m in tokens)
        {
            var w = m.Span;
            if (!lookup.TryGetValue(w, out int id))
            {
                id = _words.Count;
                string word = w.ToString();
                _provisional[word] = id;
                _words.Add(word);
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
            b.Clear(release: false); // capacity kept: the next fill reuses it (no regrowth garbage)
        }
        _bufferedBytes = 0;
        Spills++;
    }

    /// <summary>Reads the sentences of one slice, those spilled to the file then those still in memory, into <paramref name="f"/> (cleared first).</summary>
    private void Gather(int slice, SliceBuffer f)
    {
        var b = _buckets[slice];
        long tokens = 0;
        foreach (var c in _counts)
            tokens += c[slice];
        f.Clear(b.Times.Count + b.Segments.Sum(x => x.Count), tokens);
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
                    var ids = f.Add(time, order, hash, r.ReadInt32());
                    for (int j = 0; j < ids.Length; j++)
                        ids[j] = r.ReadInt32();
                }
            }
        }
        var all = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(b.Ids);
        for (int i = 0, p = 0; i < b.Times.Count; i++)
        {
            all.Slice(p, b.Lengths[i]).CopyTo(f.Add(b.Times[i], b.Orders[i], b.Hashes[i], b.Lengths[i]));
            p += b.Lengths[i];
        }
        b.Clear();
        b.Segments.Clear();
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
        // one flat buffer reused from slice to slice: no per-sentence arrays, no garbage growing with the corpus
        var f = new SliceBuffer();
        for (int t = 0; t < _sliceCount; t++)
        {
            cancel.ThrowIfCancellationRequested();
            Gather(t, f);
            // map to the final ids in place, dropping out-of-vocabulary tokens; empty sentences leave the order
            var index = f.Index();
            int sentences = 0;
            for (int i = 0; i < f.Count; i++)
            {
                var ids = f.Ids.AsSpan(f.Starts[i], f.Lengths[i]);
                int n = 0;
                foreach (int id in ids)
                {
                    if (map[id] >= 0)
                        ids[n++] = map[id];
                }
                f.Lengths[i] = n;
                if (n > 0)
                    index[sentences++] = i;
            }
            var order = index.AsSpan(0, sentences);
            order.Sort(f.Compare);
            // copies of one sentence (same time, order and tokens) would sit side by side: the k-th copy gets its own hash, so
            // copies are spread like distinct sentences (still order-free: the copies are indistinguishable)
            bool copies = false;
            for (int i = 1, k = 0, first = sentences > 0 ? order[0] : 0; i < sentences; i++)
            {
                int cur = order[i];
                k = f.Compare(first, cur) == 0 ? k + 1 : 0;
                if (k == 0)
                {
                    first = cur;
                }
                else
                {
                    f.Hashes[cur] = SkipGramEngine.Hash(_seed, f.Hashes[cur], (ulong)k);
                    copies = true;
                }
            }
            if (copies)
                order.Sort(f.Compare);
            long total = 0;
            foreach (int i in order)
                total += f.Lengths[i];
            tokens[t] = new int[total];
            ends[t] = new int[sentences];
            int p = 0;
            for (int i = 0; i < sentences; i++)
            {
                int si = order[i];
                f.Ids.AsSpan(f.Starts[si], f.Lengths[si]).CopyTo(tokens[t].AsSpan(p));
                p += f.Lengths[si];
                ends[t][i] = p;
            }
        }
        return new DiachronicCorpus(words, sliceCounts, tokens, ends, origin, width);
    }

    public void Dispose()
    {
        _spill?.Dispose();
        if (_spillPath is not null && File.Exists(_spillPath))
            File.Delete(_spillPath);
    }

    /// <summary>The sentences of one slice: keys per sentence, every token id in one array; sized for the largest slice and reused.</summary>
    private sealed class SliceBuffer
    {
        private int[] _index = [];

        public long[] Times { get; private set; } = [];

        public long[] Orders { get; private set; } = [];

        public ulong[] Hashes { get; private set; } = [];

        public int[] Starts { get; private set; } = [];

        public int[] Lengths { get; private set; } = [];

        public int[] Ids { get; private set; } = [];

        public int Count { get; private set; }

        private int _idCount;

        /// <summary>Empties the buffer and makes room for <paramref name="sentences"/> sentences of <paramref name="tokens"/> ids in all.</summary>
        public void Clear(int sentences, long tokens)
        {
            Count = 0;
            _idCount = 0;
            if (Times.Length < sentences)
            {
                Times = new long[sentences];
                Orders = new long[sentences];
                Hashes = new ulong[sentences];
                Starts = new int[sentences];
                Lengths = new int[sentences];
            }
            if (Ids.Length < tokens)
                Ids = new int[tokens];
        }

        /// <summary>Appends a sentence's keys and returns the span its <paramref name="length"/> ids go to (within the room made by <see cref="Clear"/>).</summary>
        public Span<int> Add(long time, long order, ulong hash, int length)
        {
            Times[Count] = time;
            Orders[Count] = order;
            Hashes[Count] = hash;
            Starts[Count] = _idCount;
            Lengths[Count] = length;
            Count++;
            _idCount += length;
            return Ids.AsSpan(_idCount - length, length);
        }

        /// <summary>A scratch array of at least <see cref="Count"/> sentence indices.</summary>
        public int[] Index()
        {
            if (_index.Length < Count)
                _index = new int[Times.Length];
            return _index;
        }

        /// <summary>The canonical order: time, order value, seeded hash, then the token ids.</summary>
        public int Compare(int a, int b)
        {
            int c = Times[a].CompareTo(Times[b]);
            if (c == 0)
                c = Orders[a].CompareTo(Orders[b]);
            if (c == 0)
                c = Hashes[a].CompareTo(Hashes[b]);
            return c != 0 ? c : Ids.AsSpan(Starts[a], Lengths[a]).SequenceCompareTo(Ids.AsSpan(Starts[b], Lengths[b]));
        }
    }

    private sealed class Bucket
    {
        public List<long> Times { get; } = [];

        public List<long> Orders { get; } = [];

        public List<ulong> Hashes { get; } = [];

        public List<int> Lengths { get; } = [];

        public List<int> Ids { get; } = [];

        public List<(long Start, int Count)> Segments { get; } = [];

        public void Clear(bool release = true)
        {
            Times.Clear();
            Orders.Clear();
            Hashes.Clear();
            Lengths.Clear();
            Ids.Clear();
            if (!release)
                return;
            Times.TrimExcess();
            Orders.TrimExcess();
            Hashes.TrimExcess();
            Lengths.TrimExcess();
            Ids.TrimExcess();
        }
    }
}
