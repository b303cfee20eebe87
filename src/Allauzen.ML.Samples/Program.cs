using Allauzen.ML.Samples.Common;
using Allauzen.ML.Samples.Lipschitz;
using Allauzen.ML.Samples.Foton;
using Allauzen.ML.Samples.Diachronic;
using Allauzen.ML.Samples.Mlp;
using Allauzen.ML.Samples.Smoothing;
using Allauzen.ML.Samples.Speech;

// dotnet run --project src/Allauzen.ML.Samples -c Release -- <sample> [options]
var samples = new Dictionary<string, Func<SampleArgs, int>>(StringComparer.OrdinalIgnoreCase)
{
    ["mlp"] = MlpSample.Run,
    ["mlp-consume"] = MlpSample.ConsumeInFreshProcess,
    ["lipschitz"] = LipschitzSample.Run,
    ["smoothing"] = SmoothingSample.Run,
    ["speech"] = SpeechSample.Run,
    ["speech-consume"] = SpeechSample.ConsumeInFreshProcess,
    ["foton"] = FotonSample.Run,
    ["foton-run"] = FotonSample.RunOne,
    ["diachronic"] = DiachronicSample.Run,
};

if (args.Length == 0 || args[0] is "-h" or "--help" || !samples.ContainsKey(args[0]))
{
    Console.WriteLine("Allauzen.ML samples");
    Console.WriteLine("usage: dotnet run --project src/Allauzen.ML.Samples -c Release -- <sample> [--data digits|fashion-mnist] [--epochs N] [--metrics-out FILE] [--output DIR]");
    Console.WriteLine("samples: mlp, lipschitz");
    Console.WriteLine("samples: mlp, smoothing");
    Console.WriteLine("samples: mlp, speech");
    Console.WriteLine("samples: mlp, foton [--depth N] [--algorithms foton,pepita,backprop,backprop_ortho]");
    Console.WriteLine("samples: mlp, diachronic");
    return args.Length == 0 || args[0] is "-h" or "--help" ? 0 : 2;
}

try
{
    return samples[args[0]](SampleArgs.Parse(args.Skip(1).ToArray()));
}
catch (ArgumentException e) when (e.Source == SampleArgs.UsageSource)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}
