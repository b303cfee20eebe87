using Allauzen.ML.Datasets;

namespace Allauzen.ML.Tests.TestSupport;

/// <summary>
/// Runs a test only where Debian's dataset-fashion-mnist is installed (CI installs it in .ci/run), so the
/// README's test command also works on a fresh machine without it; there the test is reported as skipped
/// with the install command.
/// </summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class)]
public sealed class FashionMnistInstalledAttribute : ConditionBaseAttribute
{
    public FashionMnistInstalledAttribute()
        : base(ConditionMode.Include) =>
        IgnoreMessage = "dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)";

    public override bool IsConditionMet => FashionMnist.IsAvailable();

    public override string GroupName => "FashionMnist";
}
