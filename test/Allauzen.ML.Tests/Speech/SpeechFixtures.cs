using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Allauzen.ML.Onnx;
using Allauzen.ML.Speech;
using Google.Protobuf;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Speech;

/// <summary>The speech fixtures (copied from the shared fixtures folder, see Fixtures/Speech/golden.json) and WAV/model helpers.</summary>
public static class SpeechFixtures
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Speech");

    public static string Wav => Path.Combine(Dir, "utt16k.wav");

    public static string Tiny => Path.Combine(Dir, "w2v2_tiny.onnx");

    public static string TinyGroup => Path.Combine(Dir, "w2v2_tiny_group.onnx");

    public static string TinyLengths => Path.Combine(Dir, "w2v2_tiny_lengths.onnx");

    private static readonly Lazy<JsonElement> GoldenJson = new(() => JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "golden.json"))).RootElement);

    public static JsonElement Golden => GoldenJson.Value;

    public static float[] Floats(JsonElement e) => e.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();

    public static float[] ReadF32(string name)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Dir, name));
        var r = new float[bytes.Length / 4];
        for (int i = 0; i < r.Length; i++)
            r[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
        return r;
    }

    /// <summary>The utterance as floats (pcm/32768).</summary>
    public static float[] Utterance() => WavReader.ReadFile(Wav).Samples;

    public sealed class PathRow
    {
        public string Audio { get; set; } = "";
    }

    public sealed class SamplesRow
    {
        [VectorType]
        public float[] Audio { get; set; } = [];

        public int Rate { get; set; }
    }

    public sealed class BytesRow
    {
        [VectorType]
        public byte[] Audio { get; set; } = [];
    }

    public static IDataView Paths(MLContext ml, params string[] paths) =>
        ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { Audio = p }).ToArray());

    public static IDataView Samples(MLContext ml, params (float[] X, int Rate)[] rows) =>
        ml.Data.LoadFromEnumerable(rows.Select(r => new SamplesRow { Audio = r.X, Rate = r.Rate }).ToArray());

    public static SslFeaturizerOptions Options(string model, SslPooling pooling = SslPooling.Mean) =>
        new() { ModelPath = model, Pooling = pooling };

    /// <summary>Featurizes and returns the output column as float rows.</summary>
    public static float[][] Run(MLContext ml, SslFeaturizerOptions o, IDataView data, out SslFeaturizerTransformer t)
    {
        t = ml.Transforms.Speech.SslFeaturizer(o).Fit(data);
        return t.Transform(data).GetColumn<float[]>(o.OutputColumnName).ToArray();
    }

    public static float[][] Run(MLContext ml, SslFeaturizerOptions o, IDataView data)
    {
        var r = Run(ml, o, data, out var t);
        t.Dispose();
        return r;
    }

    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
            throw new AssertFailedException($"Lengths differ: {a.Length} vs {b.Length}.");
        double m = 0;
        for (int i = 0; i < a.Length; i++)
            m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }

    // ------------------------------------------------------------------ WAV writing (the tests write every format themselves)

    public enum Encoding
    {
        Pcm8,
        Pcm16,
        Pcm24,
        Pcm32,
        Float32,
        Float64,
    }

    /// <summary>Writes interleaved samples (channels × frames, values in [−1, 1]) as a WAV file in memory.</summary>
    public static byte[] WavBytes(float[][] channels, int rate, Encoding enc, bool extensible = false, bool extraChunks = false)
    {
        int bits = enc switch { Encoding.Pcm8 => 8, Encoding.Pcm16 => 16, Encoding.Pcm24 => 24, Encoding.Pcm32 or Encoding.Float32 => 32, _ => 64 };
        bool isFloat = enc is Encoding.Float32 or Encoding.Float64;
        int nch = channels.Length, frames = channels[0].Length, bps = bits / 8;
        var data = new byte[frames * nch * bps];
        for (int i = 0; i < frames; i++)
        {
            for (int c = 0; c < nch; c++)
            {
                var span = data.AsSpan((i * nch + c) * bps, bps);
                double v = channels[c][i];
                switch (enc)
                {
                    case Encoding.Pcm8: span[0] = (byte)Math.Clamp(Math.Round(v * 128 + 128), 0, 255); break;
                    case Encoding.Pcm16: BinaryPrimitives.WriteInt16LittleEndian(span, (short)Math.Clamp(Math.Round(v * 32768), -32768, 32767)); break;
                    case Encoding.Pcm24:
                        int s24 = (int)Math.Clamp(Math.Round(v * 8388608), -8388608, 8388607);
                        span[0] = (byte)s24; span[1] = (byte)(s24 >> 8); span[2] = (byte)(s24 >> 16);
                        break;
                    case Encoding.Pcm32: BinaryPrimitives.WriteInt32LittleEndian(span, (int)Math.Clamp(Math.Round(v * 2147483648.0), int.MinValue, int.MaxValue)); break;
                    case Encoding.Float32: BinaryPrimitives.WriteSingleLittleEndian(span, (float)v); break;
                    default: BinaryPrimitives.WriteDoubleLittleEndian(span, v); break;
                }
            }
        }
        return Riff(isFloat ? (ushort)3 : (ushort)1, nch, rate, bits, data, extensible, extraChunks);
    }

    public static byte[] Riff(ushort format, int channels, int rate, int bits, byte[] data, bool extensible = false, bool extraChunks = false)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms, System.Text.Encoding.ASCII);
        w.Write("RIFF"u8);
        w.Write(0);
        w.Write("WAVE"u8);
        if (extraChunks)
        {
            // An odd-sized chunk before fmt: the reader must skip it and its pad byte.
            w.Write("LIST"u8);
            w.Write(5);
            w.Write("INFOx"u8);
            w.Write((byte)0);
        }
        w.Write("fmt "u8);
        w.Write(extensible ? 40 : 16);
        w.Write(extensible ? (ushort)0xFFFE : format);
        w.Write((ushort)channels);
        w.Write(rate);
        w.Write(rate * channels * bits / 8);
        w.Write((ushort)(channels * bits / 8));
        w.Write((ushort)bits);
        if (extensible)
        {
            w.Write((ushort)22);
            w.Write((ushort)bits);
            w.Write(channels == 1 ? 4 : 3);
            w.Write(format);
            w.Write(new byte[] { 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71 });
        }
        if (extraChunks)
        {
            w.Write("fact"u8);
            w.Write(4);
            w.Write(data.Length);
        }
        w.Write("data"u8);
        w.Write(data.Length);
        w.Write(data);
        if ((data.Length & 1) == 1)
            w.Write((byte)0);
        w.Flush();
        var bytes = ms.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), bytes.Length - 8);
        return bytes;
    }

    /// <summary>
    /// A small foreign encoder built with the library's graph builder (no metadata, other tensor names, batch axis fixed
    /// at 1): wave [1, samples] → Conv(kernel 400, stride 320, <paramref name="hidden"/> channels) → Tanh → emb [1, frames, hidden].
    /// </summary>
    public static (byte[] Model, float[] Weights, string Output) ForeignEncoder(int hidden, bool dynamicHidden, int seed = 3)
    {
        var rng = new Random(seed);
        var w = new float[hidden * 400];
        for (int i = 0; i < w.Length; i++)
            w[i] = (float)((rng.NextDouble() * 2 - 1) * 0.1);
        var g = new OnnxGraphBuilder(opset: 12, prefix: "");
        g.AddInput("wave", OnnxElementType.Float, [1, -1]);
        var x = g.Node("Unsqueeze", ["wave"], "x3", ("axes", new long[] { 1 }));
        var c = g.Node("Conv", [x, g.Initializer("W", w, hidden, 1, 400)], "conv", ("strides", new long[] { 320 }), ("kernel_shape", new long[] { 400 }));
        var t = g.Node("Transpose", [c], "t", ("perm", new long[] { 0, 2, 1 }));
        var e = g.Node("Tanh", [t], "emb_");
        var o = g.Node("Identity", [e], "emb");
        g.AddOutput(o, OnnxElementType.Float, dynamicHidden ? [1, -1, -1] : [1, -1, hidden]);
        return (g.Build("Allauzen.ML.Tests").ToByteArray(), w, o);
    }

    /// <summary>The foreign encoder's output computed directly: tanh(Σₖ w[h,k] x[320f + k]).</summary>
    public static float[] ForeignReference(float[] x, float[] w, int hidden)
    {
        int frames = (x.Length - 400) / 320 + 1;
        var r = new float[frames * hidden];
        for (int f = 0; f < frames; f++)
        {
            for (int h = 0; h < hidden; h++)
            {
                double s = 0;
                for (int k = 0; k < 400; k++)
                    s += w[h * 400 + k] * x[f * 320 + k];
                r[f * hidden + h] = (float)Math.Tanh(s);
            }
        }
        return r;
    }
}
