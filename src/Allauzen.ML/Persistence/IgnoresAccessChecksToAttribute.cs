// The loader classes that the build's LoaderWeaver adds to this assembly name types internal to
// Microsoft.ML.Core in their signatures and attributes (ModelLoadContext, LoadableClassAttribute,
// SignatureLoadModel), and the scored data view implements interfaces internal to Microsoft.ML.Data
// (IDataTransform, ITransformCanSaveOnnx). The runtime honours this attribute (it is not defined in the BCL; declaring
// it here is the documented way to use it), so those references pass its access checks. No C# code
// of this assembly uses ML.NET internals directly; Core/MlNetInternals reaches the rest by reflection.
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]

namespace System.Runtime.CompilerServices;

/// <summary>Lets this assembly reference non-public types of the named assembly (honoured by the runtime).</summary>
/// <param name="assemblyName">The simple name of the assembly whose non-public types are referenced.</param>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
internal sealed class IgnoresAccessChecksToAttribute(string assemblyName) : Attribute
{
    /// <summary>The simple name of the assembly.</summary>
    public string AssemblyName { get; } = assemblyName;
}
