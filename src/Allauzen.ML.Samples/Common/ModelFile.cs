namespace Allauzen.ML.Samples.Common;

/// <summary>Saves a model with <c>ml.Model.SaveAtomic</c>: ML.NET's own format, written to a temporary file, fsynced and renamed.</summary>
public static class ModelFile
{
    public static void Save(MLContext ml, ITransformer model, DataViewSchema schema, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        ml.Model.SaveAtomic(model, schema, path); // a failed save leaves any previous file intact
        SampleCli.Wrote(path, $"model, {new FileInfo(path).Length:N0} bytes");
    }

    /// <summary>
    /// The schema definition of <typeparamref name="TInput"/> with each vector column sized as in the model's saved input
    /// schema (the ModelInput classes carry no [VectorType(n)]: 64 digits pixels, 784 Fashion-MNIST pixels).
    /// </summary>
    public static SchemaDefinition InputDefinition<TInput>(DataViewSchema inputSchema)
    {
        var definition = SchemaDefinition.Create(typeof(TInput));
        foreach (var column in definition)
        {
            if (inputSchema.GetColumnOrNull(column.ColumnName) is { Type: VectorDataViewType type })
                column.ColumnType = type;
        }
        return definition;
    }
}
