using BenchmarkDotNet.Running;

// dotnet run -c Release --project test/Allauzen.ML.Benchmarks -- --filter '*' [--job short]
BenchmarkSwitcher.FromAssembly(typeof(Allauzen.ML.Benchmarks.BenchData).Assembly).Run(args);
