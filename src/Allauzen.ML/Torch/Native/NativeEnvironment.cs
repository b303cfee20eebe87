using System.Runtime.InteropServices;

namespace Allauzen.ML.Torch;

/// <summary>
/// Sets variables in the process's native environment, where libgomp and oneMKL read them when they load.
/// <see cref="Environment.SetEnvironmentVariable(string, string)"/> only changes .NET's own copy on Linux,
/// so this calls libc's <c>setenv</c> (never overwriting a variable already set).
/// </summary>
internal static partial class NativeEnvironment
{
    internal const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    internal const string MklReproducibilityVariable = "MKL_CBWR";
    internal const string MklStrictAuto = "AUTO,STRICT";

    /// <summary>
    /// Sets the variables <paramref name="options"/> asks for, unless already set; returns a one-line
    /// description of what the native libraries will see.
    /// </summary>
    internal static string Apply(TorchRuntimeOptions options)
    {
        string? policy = options.WaitPolicy switch
        {
            OpenMPWaitPolicy.Passive => "PASSIVE",
            OpenMPWaitPolicy.Active => "ACTIVE",
            _ => null,
        };
        string wait = SetIfUnset(WaitPolicyVariable, policy);
        string mkl = SetIfUnset(MklReproducibilityVariable, options.ReproducibleMatrixProducts ? MklStrictAuto : null);
        return $"{WaitPolicyVariable}={wait}, {MklReproducibilityVariable}={mkl}";
    }

    /// <summary>The value of <paramref name="name"/> in the native environment, or null.</summary>
    internal static string? Get(string name)
    {
        if (!OperatingSystem.IsLinux())
            return Environment.GetEnvironmentVariable(name);
        IntPtr value = getenv(name);
        return value == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(value);
    }

    private static string SetIfUnset(string name, string? value)
    {
        if (Get(name) is { } existing)
            return $"{existing} (set by the environment)";
        if (value is null)
            return "(unset: the runtime's default)";
        if (OperatingSystem.IsLinux())
        {
            if (setenv(name, value, 0) != 0)
                return $"(unset: setenv failed, errno {Marshal.GetLastPInvokeError()})";
        }
        Environment.SetEnvironmentVariable(name, value);
        return value;
    }

    [LibraryImport("libc.so.6", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport("libc.so.6", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr getenv(string name);
}
