namespace Allauzen.ML.Persistence;

/// <summary>
/// Resource limits of <see cref="AllauzenModel.Load(Microsoft.ML.MLContext, string, out Microsoft.ML.DataViewSchema, AllauzenModelLoadOptions)"/>:
/// a model file is untrusted, so what its zip entries may inflate to is bounded before anything is allocated.
/// Every entry is read into one buffer of exactly its declared uncompressed size; an entry that inflates to more or
/// fewer bytes than it declares is an <see cref="InvalidDataException"/> naming the file and the entry.
/// </summary>
public sealed class AllauzenModelLoadOptions
{
    /// <summary>Entries of at most this many bytes are exempt from <see cref="MaxCompressionRatio"/> (1 MiB).</summary>
    public const long RatioFreeBytes = 1 << 20;

    /// <summary>Largest uncompressed size of one entry, in bytes (default and upper bound: <see cref="Array.MaxLength"/>,
    /// about 2 GiB, the largest buffer .NET can hold).</summary>
    public long MaxEntryBytes { get; set; } = Array.MaxLength;

    /// <summary>Largest uncompressed size of all entries together, in bytes (default 4 GiB).</summary>
    public long MaxTotalBytes { get; set; } = 4L << 30;

    /// <summary>Largest ratio of uncompressed to compressed size of an entry above <see cref="RatioFreeBytes"/>
    /// (default 100; model tensors and ONNX weights compress by less than 10, a zip bomb by about 1000).</summary>
    public double MaxCompressionRatio { get; set; } = 100;

    internal void Validate()
    {
        if (MaxEntryBytes < 1 || MaxEntryBytes > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(MaxEntryBytes), MaxEntryBytes, $"AllauzenModelLoadOptions.MaxEntryBytes must be in [1, {Array.MaxLength}].");
        if (MaxTotalBytes < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxTotalBytes), MaxTotalBytes, "AllauzenModelLoadOptions.MaxTotalBytes must be at least 1.");
        if (!(MaxCompressionRatio >= 1))
            throw new ArgumentOutOfRangeException(nameof(MaxCompressionRatio), MaxCompressionRatio, "AllauzenModelLoadOptions.MaxCompressionRatio must be at least 1.");
    }
}
