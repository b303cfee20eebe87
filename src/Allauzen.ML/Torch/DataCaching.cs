namespace Allauzen.ML;

/// <summary>How training data is read.</summary>
public enum DataCaching
{
    /// <summary>In memory when the feature matrix is under <see cref="TorchTrainerOptions.MaxInMemoryBytes"/>, streamed otherwise.</summary>
    Auto,

    /// <summary>Always materialise the feature matrix once (fastest; shuffled with a permutation each epoch).</summary>
    InMemory,

    /// <summary>Always stream with a row cursor (bounded memory; shuffled through the view or a shuffle pool).</summary>
    Streaming,
}
