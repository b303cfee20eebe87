using System.Buffers.Binary;
using Allauzen.ML.Persistence;

namespace Allauzen.ML.Speech;

/// <summary>Decoded audio: mono float samples in [−1, 1] (PCM scaled by 1/2^(bits−1)) and their rate.</summary>
/// <param name="Samples">Mono samples (channels averaged).</param>
/// <param name="SampleRate">Samples per second.</param>
/// <param name="Channels">Channel count of the source (1 after decoding).</param>
/// <param name="BitsPerSample">Bits per sample of the source encoding.</param>
/// <param name="IsFloat">True for IEEE float sources.</param>
internal sealed record DecodedAudio(float[] Samples, int SampleRate, int Channels, int BitsPerSample, bool IsFloat);

/// <summary>
/// Reads RIFF/WAVE files: PCM 8 (unsigned), 16, 24 and 32-bit integer, IEEE float 32 and 64-bit, plain
/// <c>WAVE_FORMAT_PCM</c>/<c>WAVE_FORMAT_IEEE_FLOAT</c> or <c>WAVE_FORMAT_EXTENSIBLE</c>, any channel count
/// (down-mixed by averaging). Chunks are word-aligned (odd sizes padded by one byte) and unknown chunks
/// (LIST, fact, cue, ...) are skipped. Integer samples are scaled by 1/2^(bits−1), the convention of
/// torchaudio, soundfile and HF (pcm16/32768). Every error is an <see cref="InvalidDataException"/>
/// whose message starts with what it read (a file name, or "WAV bytes").
/// </summary>
internal static class WavReader
{
    private const ushort FormatPcm = 0x0001;
    private const ushort FormatFloat = 0x0003;
    private const ushort FormatExtensible = 0xFFFE;

    /// <summary>Size of the prefix read first, to find the 'data' chunk and check the limits before reading the rest.</summary>
    private const int HeaderProbeBytes = 64 << 10;

    /// <summary>
    /// Reads a WAV file: only a regular file (a device, FIFO or folder is an error), and only as much of it as the
    /// 'data' chunk needs once its header has passed <paramref name="limits"/>.
    /// </summary>
    public static DecodedAudio ReadFile(string path, AudioLimits? limits = null)
    {
        string source = $"'{path}'";
        byte[] bytes;
        try
        {
            long size = UnixFile.RequireRegularFile(path, Array.MaxLength, "WAV file");
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            var probe = new byte[(int)Math.Min(size, HeaderProbeBytes)];
            stream.ReadExactly(probe);
            long needed = size;
            if (LocateInPrefix(probe, size, source) is { } header)
            {
                long dataBytes = DataBytes(header.DeclaredSize, size - header.Body);
                header.Format.Check(dataBytes, source, limits ?? AudioLimits.Default);
                needed = Math.Min(size, header.Body + dataBytes);
            }
            bytes = new byte[needed];
            probe.AsSpan(0, (int)Math.Min(probe.Length, needed)).CopyTo(bytes);
            if (needed > probe.Length)
                stream.ReadExactly(bytes, probe.Length, (int)(needed - probe.Length));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new InvalidDataException($"{source}: cannot read the file ({e.Message})", e);
        }
        return Decode(bytes, source, limits);
    }

    /// <summary>The header when the first bytes of a file hold it; null (read the whole file, and let
    /// <see cref="Decode"/> report) when they do not, or end inside a chunk header.</summary>
    private static WavHeader? LocateInPrefix(byte[] probe, long fileSize, string source)
    {
        try
        {
            return Locate(probe, source, out _);
        }
        catch (InvalidDataException) when (probe.Length < fileSize)
        {
            return null;
        }
    }

    /// <summary>Decodes WAV bytes; <paramref name="source"/> names them in errors. The header is checked against
    /// <paramref name="limits"/> (default <see cref="AudioLimits.Default"/>) before any sample is decoded, and a NaN or
    /// infinite sample is an error naming its index.</summary>
    public static DecodedAudio Decode(ReadOnlySpan<byte> data, string source, AudioLimits? limits = null)
    {
        var header = Locate(data, source, out bool sawFormat)
            ?? throw Bad(source, sawFormat ? "truncated: no 'data' chunk" : "truncated: no 'fmt ' chunk");
        long available = data.Length - header.Body;
        uint size = header.DeclaredSize;
        // A streaming writer may leave 0 or 0xFFFFFFFF; anything else that overruns the file is a cut file.
        if (size > available && size != uint.MaxValue && size != 0)
            throw Bad(source, $"truncated: the 'data' chunk announces {size} bytes but only {available} follow");
        long dataBytes = DataBytes(size, available);
        header.Format.Check(dataBytes, source, limits ?? AudioLimits.Default);
        return DecodeSamples(data.Slice(header.Body, (int)dataBytes), header.Format, source);
    }

    /// <summary>The bytes of the 'data' chunk: its declared size, or what follows when the size is a streaming
    /// placeholder (0 or 0xFFFFFFFF) or overruns the file.</summary>
    private static long DataBytes(uint declared, long available) =>
        declared == uint.MaxValue || declared == 0 || declared > available ? available : declared;

    /// <summary>The format of a WAV file, from its 'fmt ' chunk.</summary>
    private readonly record struct WavFormat(ushort Format, int Channels, int Rate, int Bits, int BlockAlign)
    {
        public bool IsFloat => Format == FormatFloat;

        public int FrameBytes => Bits / 8 * Channels;

        /// <summary>Checks the codec, sample size, block align and the limits (rate, sample count, duration) of
        /// <paramref name="dataBytes"/> bytes of samples, before anything is allocated.</summary>
        public void Check(long dataBytes, string source, AudioLimits limits)
        {
            if (Format != FormatPcm && Format != FormatFloat)
                throw Bad(source, $"unsupported codec (format tag 0x{Format:X4}, {CodecName(Format)}); supported: PCM 8/16/24/32-bit and IEEE float 32/64-bit");
            if (Channels < 1)
                throw Bad(source, "0 channels");
            if (Rate < 1)
                throw Bad(source, $"invalid sample rate {Rate}");
            bool ok = IsFloat ? Bits is 32 or 64 : Bits is 8 or 16 or 24 or 32;
            if (!ok)
                throw Bad(source, $"unsupported {(IsFloat ? "IEEE float" : "PCM")} sample size of {Bits} bits");
            if (BlockAlign != 0 && BlockAlign != FrameBytes)
                throw Bad(source, $"block align {BlockAlign} does not match {Channels} channel(s) × {Bits} bits");
            try
            {
                limits.Check(dataBytes / FrameBytes, Rate);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"{source}: {e.Message}", e);
            }
        }
    }

    /// <summary>Where the 'data' chunk starts and what the 'fmt ' chunk says.</summary>
    private readonly record struct WavHeader(WavFormat Format, int Body, uint DeclaredSize);

    /// <summary>Walks the chunks up to the 'data' chunk header; null when <paramref name="data"/> ends before it, with
    /// <paramref name="sawFormat"/> telling whether the 'fmt ' chunk came.</summary>
    private static WavHeader? Locate(ReadOnlySpan<byte> data, string source, out bool sawFormat)
    {
        sawFormat = false;
        if (data.Length < 12)
            throw Bad(source, $"not a WAV file: {data.Length} bytes, shorter than a RIFF header");
        if (!data[..4].SequenceEqual("RIFF"u8))
        {
            string what = data[..4].SequenceEqual("RIFX"u8) ? "big-endian RIFX is not supported"
                : data[..4].SequenceEqual("RF64"u8) ? "RF64 (> 4 GB WAV) is not supported"
                : "not a WAV file (no RIFF header)";
            throw Bad(source, what);
        }
        if (!data.Slice(8, 4).SequenceEqual("WAVE"u8))
            throw Bad(source, "a RIFF file but not WAVE");

        int pos = 12;
        WavFormat? format = null;
        while (pos + 8 <= data.Length)
        {
            var id = data.Slice(pos, 4);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(data[(pos + 4)..]);
            int body = pos + 8;
            if (id.SequenceEqual("fmt "u8))
            {
                if (size < 16 || body + 16 > data.Length)
                    throw Bad(source, "truncated 'fmt ' chunk");
                var f = data.Slice(body, 16);
                ushort tag = BinaryPrimitives.ReadUInt16LittleEndian(f);
                if (tag == FormatExtensible)
                {
                    // cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): the first two GUID bytes are the format tag.
                    if (size < 40 || body + 40 > data.Length)
                        throw Bad(source, "truncated WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk");
                    tag = BinaryPrimitives.ReadUInt16LittleEndian(data[(body + 24)..]);
                }
                sawFormat = true;
                format = new WavFormat(tag, BinaryPrimitives.ReadUInt16LittleEndian(f[2..]), BinaryPrimitives.ReadInt32LittleEndian(f[4..]),
                    BinaryPrimitives.ReadUInt16LittleEndian(f[14..]), BinaryPrimitives.ReadUInt16LittleEndian(f[12..]));
            }
            else if (id.SequenceEqual("data"u8))
            {
                return format is { } fmt ? new WavHeader(fmt, body, size) : throw Bad(source, "'data' chunk before the 'fmt ' chunk");
            }
            long next = (long)body + size + (size & 1);
            if (next > data.Length)
                break;
            pos = (int)next;
        }
        return null;
    }

    private static DecodedAudio DecodeSamples(ReadOnlySpan<byte> pcm, WavFormat f, string source)
    {
        int bytesPerSample = f.Bits / 8;
        int frameBytes = f.FrameBytes;
        int channels = f.Channels;
        int frames = pcm.Length / frameBytes;
        var mono = new float[frames];
        float inv = 1f / channels;
        for (int i = 0; i < frames; i++)
        {
            var frame = pcm.Slice(i * frameBytes, frameBytes);
            double sum = 0;
            for (int c = 0; c < channels; c++)
                sum += Sample(frame.Slice(c * bytesPerSample, bytesPerSample), f.Bits, f.IsFloat);
            mono[i] = channels == 1 ? (float)sum : (float)(sum * inv);
        }
        if (f.IsFloat)
        {
            try
            {
                AudioLimits.RequireFinite(mono);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"{source}: {e.Message}", e);
            }
        }
        return new DecodedAudio(mono, f.Rate, channels, f.Bits, f.IsFloat);
    }

    private static double Sample(ReadOnlySpan<byte> b, int bits, bool isFloat)
    {
        if (isFloat)
            return bits == 32 ? BinaryPrimitives.ReadSingleLittleEndian(b) : BinaryPrimitives.ReadDoubleLittleEndian(b);
        return bits switch
        {
            8 => (b[0] - 128) / 128.0,
            16 => BinaryPrimitives.ReadInt16LittleEndian(b) / 32768.0,
            24 => (((b[2] << 24) | (b[1] << 16) | (b[0] << 8)) >> 8) / 8388608.0,
            _ => BinaryPrimitives.ReadInt32LittleEndian(b) / 2147483648.0,
        };
    }

    private static string CodecName(ushort format) => format switch
    {
        0x0002 => "Microsoft ADPCM",
        0x0006 => "A-law",
        0x0007 => "µ-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0055 => "MPEG layer 3",
        _ => "unknown",
    };

    private static InvalidDataException Bad(string source, string message) => new($"{source}: {message}.");
}
