namespace Allauzen.ML.Samples.Common;

/// <summary>
/// The consumption plumbing of a Model Builder-style model class: the path of the saved model and a PredictionEngine
/// created on first use, by loading that file in a fresh MLContext (as a consuming application would).
/// </summary>
public sealed class SavedModel<TInput, TOutput>
    where TInput : class
    where TOutput : class, new()
{
    private readonly Lock _lock = new();
    private string _path;
    private PredictionEngine<TInput, TOutput>? _engine;

    /// <summary>A model saved as <paramref name="fileName"/> in the current folder until <see cref="Save"/> names another file.</summary>
    public SavedModel(string fileName) => _path = Path.GetFullPath(fileName);

    /// <summary>The prediction engine of the saved model (vector input columns sized as in the model's input schema).</summary>
    public PredictionEngine<TInput, TOutput> Engine
    {
        get
        {
            lock (_lock)
            {
                if (_engine is null)
                {
                    var mlContext = new MLContext();
                    ITransformer mlModel = mlContext.Model.Load(_path, out var inputSchema);
                    _engine = mlContext.Model.CreatePredictionEngine<TInput, TOutput>(mlModel, inputSchemaDefinition: ModelFile.InputDefinition<TInput>(inputSchema));
                }
                return _engine;
            }
        }
    }

    /// <summary>Predicts one input with the saved model.</summary>
    public TOutput Predict(TInput input) => Engine.Predict(input);

    /// <summary>Saves <paramref name="model"/> with <see cref="ModelFile.Save"/>; predictions then use this file.</summary>
    public void Save(MLContext ml, ITransformer model, DataViewSchema schema, string path)
    {
        ModelFile.Save(ml, model, schema, path);
        lock (_lock)
        {
            _path = Path.GetFullPath(path);
            _engine = null;
        }
    }
}
