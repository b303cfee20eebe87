using BenchmarkDotNet.Running;

// dotnet run -c Release --project test/Allauzen.ML.Benchmarks -- --filter '*' [--job short]
// Noise generator GB/s per core (CPU time): -- --noise-speed [seconds]
// Skip-gram words/s per run, wall and CPU time: -- --skipgram-speed [threads] [epochs] [runs]
// Smoothing time ratios, baseline and certifier interleaved in pairs: -- --smoothing-ratio [pairs] [serial]
// Per-step FOTON probes (not BenchmarkDotNet): -- --foton-step time|memory [depth] [backprop|store|recompute]
// FOTON/backprop epoch ratio, median over alternating pairs: -- --foton-epochs [pairs] [depth]
if (args.Length > 0 && args[0] == "--foton-step")
{
    Allauzen.ML.Benchmarks.FotonStepProbe.Run(args);
    return;
}
if (args.Length > 0 && args[0] == "--foton-epochs") { Allauzen.ML.Benchmarks.FotonEpochRatioProbe.Run(args); return; }
if (args.Length > 1 && args[0] == "--ode-speed") { Allauzen.ML.Benchmarks.NeuralOdeSpeedProbe.Run(args); return; }
if (args.Length > 0 && args[0] == "--dbe-fit") { Allauzen.ML.Benchmarks.DynamicBernoulliFitProbe.Run(args); return; }
if (args.Length > 0 && args[0] == "--dbe-step") { Allauzen.ML.Benchmarks.DynamicBernoulliStepProbe.Run(args); return; }
if (args.Length > 0 && args[0] == "--diachronic-memory") { Allauzen.ML.Benchmarks.DiachronicMemoryProbe.Run(args); return; }
if (args.Length > 0 && args[0] == "--noise-speed") { Allauzen.ML.Benchmarks.NoiseSpeedProbe.Run(args); return; }
if (args.Length > 0 && args[0] == "--skipgram-speed") { Allauzen.ML.Benchmarks.SkipGramSpeedProbe.Run(args); return; }
if (args.Length > 0 && args[0] == "--smoothing-ratio") { Allauzen.ML.Benchmarks.SmoothingRatioProbe.Run(args); return; }
if (args.Length > 0 && args[0] == "--prdc-memory") { Allauzen.ML.Benchmarks.Evaluation.PrdcMemoryProbe.Run(args); return; }
if (args.Length > 0 && args[0].StartsWith("--synthetic-", StringComparison.Ordinal)) { Allauzen.ML.Benchmarks.Synthetic.SyntheticProbes.Run(args); return; }
if (args.Length > 0 && args[0] == "--quantization-epoch")
{
    Allauzen.ML.Benchmarks.Quantization.QuantizationEpochProbe.Run(args);
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Allauzen.ML.Benchmarks.BenchData).Assembly).Run(args);
