namespace Allauzen.ML.Persistence;

/// <summary>
/// Marks an <see cref="Microsoft.ML.IDataView"/> class that the build's LoaderWeaver (<c>build/LoaderWeaver</c>)
/// turns into an ML.NET <c>IDataTransform</c> and <c>ITransformCanSaveOnnx</c> (internal interfaces of
/// Microsoft.ML.Data, which C# cannot implement). The class declares what the woven members forward to:
/// <c>internal IDataView MlNetSource { get; }</c>, <c>internal bool MlNetCanSaveOnnx(object ctx)</c> and
/// <c>internal void MlNetSaveAsOnnx(object ctx)</c>, and implements <see cref="Microsoft.ML.ICanSaveModel"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
internal sealed class MlNetDataTransformAttribute : Attribute;
