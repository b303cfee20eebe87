using Microsoft.ML;

namespace Allauzen.ML.Core;

/// <summary>
/// Computes a transformer's added columns for up to <see cref="Capacity"/> rows at a time: the cursor
/// binds it to an input row once, loads each row's inputs into a slot, then scores all slots in one
/// forward pass. The row mapper (PredictionEngine) uses the same scorer with capacity 1.
/// </summary>
internal abstract class BatchScorer : IDisposable
{
    protected BatchScorer(int capacity)
    {
        if (capacity < 1)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "The scoring batch size must be at least 1.");
        Capacity = capacity;
    }

    /// <summary>Maximum number of rows scored in one pass.</summary>
    public int Capacity { get; }

    /// <summary>Creates the input getters on <paramref name="input"/>; called once per cursor or row.</summary>
    public abstract void Bind(DataViewRow input);

    /// <summary>Copies the current input row's values into <paramref name="slot"/>.</summary>
    public abstract void Load(int slot);

    /// <summary>Computes the added columns for slots [0, count).</summary>
    public abstract void Score(int count);

    /// <summary>A <c>ValueGetter&lt;T&gt;</c> for added column <paramref name="addedColumn"/> that reads the slot given by <paramref name="slot"/>.</summary>
    public abstract Delegate GetGetter(int addedColumn, Func<int> slot);

    /// <inheritdoc />
    public virtual void Dispose()
    {
    }
}
