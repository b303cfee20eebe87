namespace Allauzen.ML;

/// <summary>What to do with a training row that has a NaN/infinite feature or a missing label.</summary>
public enum InvalidRowPolicy
{
    /// <summary>Throw an exception that names the column and the row index.</summary>
    Throw,

    /// <summary>Skip the row and log how many rows were skipped.</summary>
    Skip,
}
