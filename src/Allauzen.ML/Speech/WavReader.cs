using System.Buffers.Binary;

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

    /// <summary>Reads a WAV file.</summary>
    public static DecodedAudio ReadFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new InvalidDataException($"'{path}': cannot read the file ({e.Message})", e);
        }
        return Decode(bytes, $"'{path}'");
    }

    /// <summary>Decodes WAV bytes; <paramref name="source"/> names them in errors.</summary>
    public static DecodedAudio Decode(ReadOnlySpan<byte> data, string source)
    {
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
        ushort format = 0, channels = 0, bits = 0, blockAlign = 0;
        int rate = 0;
        bool haveFmt = false;
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
                format = BinaryPrimitives.ReadUInt16LittleEndian(f);
                channels = BinaryPrimitives.ReadUInt16LittleEndian(f[2..]);
                rate = BinaryPrimitives.ReadInt32LittleEndian(f[4..]);
                blockAlign = BinaryPrimitives.ReadUInt16LittleEndian(f[12..]);
                bits = BinaryPrimitives.ReadUInt16LittleEndian(f[14..]);
                if (format == FormatExtensible)
                {
                    // cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): the first two GUID bytes are the format tag.
                    if (size < 40 || body + 40 > data.Length)
                        throw Bad(source, "truncated WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk");
                    format = BinaryPrimitives.ReadUInt16LittleEndian(data[(body + 24)..]);
                }
                haveFmt = true;
            }
            else if (id.SequenceEqual("data"u8))
            {
                if (!haveFmt)
                    throw Bad(source, "'data' chunk before the 'fmt ' chunk");
                long available = data.Length - body;
                if (size > available)
                {
                    // A streaming writer may leave 0 or 0xFFFFFFFF; anything else is a cut file.
                    if (size != uint.MaxValue && size != 0)
                        throw Bad(source, $"truncated: the 'data' chunk announces {size} bytes but only {available} follow");
                    size = (uint)available;
                }
                return DecodeSamples(data.Slice(body, (int)size), format, channels, rate, bits, blockAlign, source);
            }
            long next = (long)body + size + (size & 1);
            if (next > data.Length)
                break;
            pos = (int)next;
        }
        throw Bad(source, haveFmt ? "truncated: no 'data' chunk" : "truncated: no 'fmt ' chunk");
    }

    private static DecodedAudio DecodeSamples(ReadOnlySpan<byte> pcm, ushort format, int channels, int rate, int bits,
        int blockAlign, string source)
    {
        if (format != FormatPcm && format != FormatFloat)
            throw Bad(source, $"unsupported codec (format tag 0x{format:X4}, {CodecName(format)}); supported: PCM 8/16/24/32-bit and IEEE float 32/64-bit");
        if (channels < 1)
            throw Bad(source, "0 channels");
        if (rate < 1)
            throw Bad(source, $"invalid sample rate {rate}");
        bool isFloat = format == FormatFloat;
        bool ok = isFloat ? bits is 32 or 64 : bits is 8 or 16 or 24 or 32;
        if (!ok)
            throw Bad(source, $"unsupported {(isFloat ? "IEEE float" : "PCM")} sample size of {bits} bits");
        int bytesPerSample = bits / 8;
        int frameBytes = bytesPerSample * channels;
        if (blockAlign != 0 && blockAlign != frameBytes)
            throw Bad(source, $"block align {blockAlign} does not match {channels} channel(s) × {bits} bits");
        int frames = pcm.Length / frameBytes;
        var mono = new float[frames];
        float inv = 1f / channels;
        for (int i = 0; i < frames; i++)
        {
            var frame = pcm.Slice(i * frameBytes, frameBytes);
            double sum = 0;
            for (int c = 0; c < channels; c++)
                sum += Sample(frame.Slice(c * bytesPerSample, bytesPerSample), bits, isFloat);
            mono[i] = channels == 1 ? (float)sum : (float)(sum * inv);
        }
        return new DecodedAudio(mono, rate, channels, bits, isFloat);
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
