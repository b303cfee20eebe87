using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;

namespace Allauzen.ML.Samples.Cluster;

/// <summary>
/// One localhost silo of `certify-cluster`, in its own process (hidden command `certify-cluster-silo`): localhost
/// clustering with silo 0 as the primary, fast failure detection; prints "ready" when up and stops when its standard
/// input closes (the parent's exit closes it too).
/// </summary>
public static class SiloProcess
{
    private static readonly Option<int> Index = SampleCli.Int("--index", 0, "this silo's index (0 is the primary)", min: 0);
    private static readonly Option<int> BasePort = SampleCli.Int("--base-port", 11111, "silo i listens on base+i, its gateway on base+100+i", min: 1024);

    /// <summary>`certify-cluster-silo`: hosts one silo until standard input closes.</summary>
    public static Command Command { get; } = SampleCli.Child("certify-cluster-silo", "One localhost silo of certify-cluster (started by it).", Run, Index, BasePort);

    /// <summary>The silo and gateway ports of silo <paramref name="index"/>.</summary>
    public static (int Silo, int Gateway) Ports(int basePort, int index) => (basePort + index, basePort + 100 + index);

    private static int Run(ParseResult args)
    {
        int index = args.GetValue(Index), basePort = args.GetValue(BasePort);
        var (siloPort, gatewayPort) = Ports(basePort, index);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, new IPEndPoint(IPAddress.Loopback, basePort));
            silo.Configure<SiloOptions>(o => o.SiloName = $"silo-{index}");
            silo.Configure<ClusterMembershipOptions>(o =>
            {
                o.ProbeTimeout = TimeSpan.FromSeconds(1);
                o.NumMissedProbesLimit = 2;
                o.NumVotesForDeathDeclaration = 1;
            });
        });
        using var host = builder.Build();
        host.Start();
        Console.WriteLine("ready");
        Console.Out.Flush();
        while (Console.In.ReadLine() is not null)
        {
        }
        host.StopAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        return 0;
    }

    /// <summary>Starts silo <paramref name="index"/> as a child process of this executable and waits for its "ready" line.</summary>
    public static Process Start(int index, int basePort)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!)
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true,
        };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            psi.ArgumentList.Add(typeof(SiloProcess).Assembly.Location);
        foreach (var a in new[] { "certify-cluster-silo", "--index", index.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--base-port", basePort.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        var p = Process.Start(psi)!;
        while (p.StandardOutput.ReadLine() is { } line)
        {
            if (line == "ready")
                return p;
        }
        throw new InvalidOperationException($"silo {index} exited before it was ready (exit code {(p.HasExited ? p.ExitCode : -1)}).");
    }
}
