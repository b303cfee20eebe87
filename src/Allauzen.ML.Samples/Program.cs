using Allauzen.ML.Samples.Cluster;
using Allauzen.ML.Samples.Diachronic;
using Allauzen.ML.Samples.Dynamics;
using Allauzen.ML.Samples.Evaluation;
using Allauzen.ML.Samples.Foton;
using Allauzen.ML.Samples.Lipschitz;
using Allauzen.ML.Samples.Mlp;
using Allauzen.ML.Samples.Quantization;
using Allauzen.ML.Samples.Smoothing;
using Allauzen.ML.Samples.Speech;
using Allauzen.ML.Samples.Synthetic;

// dotnet run --project src/Allauzen.ML.Samples -c Release -- <sample> [options]   (<sample> --help lists its options)
return SampleCli.Invoke(args,
    MlpSample.Command, MlpSample.ConsumeCommand,
    LipschitzSample.Command,
    SmoothingSample.Command,
    SpeechSample.Command, SpeechSample.ConsumeCommand,
    FotonSample.Command, FotonSample.RunCommand,
    DiachronicSample.Command,
    ClusterSample.Command, SiloProcess.Command,
    OdeSample.Command,
    QuantizationSample.Command,
    EvaluateSample.Command,
    SyntheticSample.Command);
