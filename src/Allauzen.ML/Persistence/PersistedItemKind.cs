namespace Allauzen.ML.Persistence;

/// <summary>Item types that <see cref="PersistedColumn"/> can describe.</summary>
internal enum PersistedItemKind
{
    /// <summary><see cref="NumberDataViewType.Single"/>.</summary>
    Single,

    /// <summary><see cref="NumberDataViewType.Double"/>.</summary>
    Double,

    /// <summary><see cref="NumberDataViewType.Int64"/>.</summary>
    Int64,

    /// <summary>A <see cref="KeyDataViewType"/> over <see cref="uint"/> with <see cref="PersistedColumn.KeyCount"/> values.</summary>
    Key,

    /// <summary><see cref="TextDataViewType"/>.</summary>
    String,

    /// <summary><see cref="BooleanDataViewType"/>.</summary>
    Boolean,
}
