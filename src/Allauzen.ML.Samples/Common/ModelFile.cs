using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Samples.Common;

/// <summary>Saves a model with ML.NET's Model.Save, atomically: a temporary file next to the target, then a rename.</summary>
public static class ModelFile
{
    public static void Save(MLContext ml, ITransformer model, DataViewSchema schema, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        // A failed save never leaves a corrupt model behind (ML.NET writes the target itself).
        var tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            ml.Model.Save(model, schema, tmp);
            File.Move(tmp, path, overwrite: true);
            SampleCli.Wrote(path, $"model, {new FileInfo(path).Length:N0} bytes");
        }
        finally
        {
            File.Delete(tmp);
        }
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
