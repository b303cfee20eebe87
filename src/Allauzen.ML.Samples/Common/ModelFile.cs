using Microsoft.ML;

namespace Allauzen.ML.Samples.Common;

/// <summary>Saves a model with ML.NET's Model.Save, atomically: a temporary file next to the target, then a rename.</summary>
public static class ModelFile
{
    public static void Save(MLContext ml, ITransformer model, DataViewSchema schema, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        ml.UseAllauzen();
        // A failed save never leaves a corrupt model behind (ML.NET writes the target itself).
        var tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            ml.Model.Save(model, schema, tmp);
            File.Move(tmp, path, overwrite: true);
        }
        finally
        {
            File.Delete(tmp);
        }
    }
}
