using Allauzen.ML.Onnx;
using System.Globalization;
using Google.Protobuf;
using Onnx;

namespace Allauzen.ML.Speech;

/// <summary>
/// Speech encoders built in code as ONNX models, for <see cref="SslFeaturizerOptions.ModelBytes"/>: baselines that need
/// no download and follow the featurizer's contract (input <c>input_values</c> [batch, samples] at 16 kHz, output
/// <c>last_hidden_state</c> [batch, frames, features], metadata with the rate, stride and receptive field).
/// </summary>
public static class SpeechEncoders
{
    /// <summary>
    /// A log-mel spectrogram on the wav2vec 2.0 frame grid (the classic filter-bank baseline of the LeBenchmark
    /// comparisons): frame f is samples [hop·f, hop·f + window) under a periodic Hann window, zero-padded to
    /// <paramref name="fftSize"/>, power spectrum |X(k)|² for k = 0..fftSize/2, HTK mel filter bank of
    /// <paramref name="melBins"/> triangles between 0 Hz and the Nyquist frequency, then ln(· + 1e-6).
    /// Graph: a strided Conv with the windowed cosine and sine DFT bases, squares, a MatMul with the filter bank, Log.
    /// </summary>
    /// <param name="melBins">Mel bands (the feature size H; default 80).</param>
    /// <param name="sampleRate">Rate in Hz (default 16000).</param>
    /// <param name="windowSamples">Window length (default 400 = 25 ms, wav2vec 2.0's receptive field).</param>
    /// <param name="hopSamples">Hop (default 320 = 20 ms, wav2vec 2.0's stride).</param>
    /// <param name="fftSize">DFT size, at least the window (default 512).</param>
    /// <returns>The ONNX model bytes (opset 12).</returns>
    public static byte[] LogMelSpectrogram(int melBins = 80, int sampleRate = 16000, int windowSamples = 400, int hopSamples = 320, int fftSize = 512)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(melBins, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleRate, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(windowSamples, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(hopSamples, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(fftSize, windowSamples);
        int bins = fftSize / 2 + 1;
        var basis = DftBasis(windowSamples, fftSize);
        var mel = MelFilterBank(melBins, bins, sampleRate, fftSize);
        // The filter bank applies to re² and im² alike: [M, 2K] = [mel | mel].
        var mel2 = new float[melBins * 2 * bins];
        for (int m = 0; m < melBins; m++)
        {
            for (int k = 0; k < bins; k++)
            {
                mel2[m * 2 * bins + k] = mel[m * bins + k];
                mel2[m * 2 * bins + bins + k] = mel[m * bins + k];
            }
        }

        var g = new OnnxGraphBuilder(opset: 12, prefix: "logmel_");
        g.AddInput("input_values", OnnxElementType.Float, [-1, -1]);
        var x = g.Node("Unsqueeze", ["input_values"], "x", ("axes", new long[] { 1 }));
        var spec = g.Node("Conv", [x, g.Initializer("dft", basis, 2 * bins, 1, windowSamples)], "reim",
            ("strides", new long[] { hopSamples }), ("kernel_shape", new long[] { windowSamples }));
        var power = g.Node("Mul", [spec, spec], "power");
        var melPower = g.Node("MatMul", [g.Initializer("mel", mel2, melBins, 2 * bins), power], "mel_power");
        var logMel = g.Node("Log", [g.Node("Add", [melPower, g.Initializer("eps", [1e-6f], 1)], "mel_eps")], "log_mel");
        g.Node("Transpose", [logMel], "frames_first", ("perm", new long[] { 0, 2, 1 }));
        g.SetMetadata("model_family", "log-mel");
        g.SetMetadata("sampling_rate", sampleRate.ToString(CultureInfo.InvariantCulture));
        g.SetMetadata("do_normalize", "false");
        g.SetMetadata("feat_extract_norm", "none");
        g.SetMetadata("frame_stride_samples", hopSamples.ToString(CultureInfo.InvariantCulture));
        g.SetMetadata("receptive_field_samples", windowSamples.ToString(CultureInfo.InvariantCulture));
        g.SetMetadata("hidden_size", melBins.ToString(CultureInfo.InvariantCulture));
        var model = g.Build("Allauzen.ML");
        // The contract's output name, exactly: the builder prefixes node outputs, so rename the last one.
        model.Graph.Node[^1].Output[0] = "last_hidden_state";
        model.Graph.Output.Add(OnnxGraphBuilder.MakeValueInfo("last_hidden_state", OnnxElementType.Float, [-1, -1, melBins]));
        return model.ToByteArray();
    }

    /// <summary>Rows 0..K−1: w[n]·cos(2πkn/N); rows K..2K−1: −w[n]·sin(2πkn/N), with the periodic Hann window w.</summary>
    internal static float[] DftBasis(int window, int fftSize)
    {
        int bins = fftSize / 2 + 1;
        var b = new float[2 * bins * window];
        for (int k = 0; k < bins; k++)
        {
            for (int n = 0; n < window; n++)
            {
                double w = 0.5 - 0.5 * Math.Cos(2 * Math.PI * n / window);
                double phase = 2 * Math.PI * k * n / fftSize;
                b[k * window + n] = (float)(w * Math.Cos(phase));
                b[(bins + k) * window + n] = (float)(-w * Math.Sin(phase));
            }
        }
        return b;
    }

    /// <summary>HTK mel triangles (mel = 2595·log10(1 + f/700)) over DFT bins k·rate/N, between 0 Hz and rate/2; [M, K].</summary>
    internal static float[] MelFilterBank(int melBins, int bins, int sampleRate, int fftSize)
    {
        static double Mel(double f) => 2595 * Math.Log10(1 + f / 700);
        static double Hz(double m) => 700 * (Math.Pow(10, m / 2595) - 1);
        double top = Mel(sampleRate / 2.0);
        var edges = Enumerable.Range(0, melBins + 2).Select(i => Hz(top * i / (melBins + 1))).ToArray();
        var fb = new float[melBins * bins];
        for (int m = 0; m < melBins; m++)
        {
            double lo = edges[m], centre = edges[m + 1], hi = edges[m + 2];
            for (int k = 0; k < bins; k++)
            {
                double f = (double)k * sampleRate / fftSize;
                double v = f <= lo || f >= hi ? 0 : f <= centre ? (f - lo) / (centre - lo) : (hi - f) / (hi - centre);
                fb[m * bins + k] = (float)v;
            }
        }
        return fb;
    }
}
