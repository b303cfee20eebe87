using System.Buffers.Binary;
using System.IO.Compression;

namespace Allauzen.ML.Datasets;

/// <summary>One Fashion-MNIST image: 784 pixels (0–255, row-major 28×28) and its class name.</summary>
public sealed class FashionMnistImage
{
    /// <summary>Class name, e.g. "Ankle boot".</summary>
    public string Label { get; set; } = "";

    /// <summary>The 28×28 pixels, row-major, as 0–255 floats.</summary>
    [VectorType(FashionMnist.PixelCount)]
    public float[] Features { get; set; } = [];
}

/// <summary>
/// Reads Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; MIT licence) from its IDX files, as installed by
/// Debian's <c>dataset-fashion-mnist</c> package in <c>/usr/share/datasets/fashion-mnist</c>. Nothing is
/// downloaded: when the files are absent the error says how to install them.
/// </summary>
public static class FashionMnist
{
    /// <summary>Pixels per image (28 × 28).</summary>
    public const int PixelCount = 784;

    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> installs the IDX files.</summary>
    public const string DebianDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The ten class names, in label order 0–9.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>True when the four IDX files are present in <paramref name="directory"/> (default: Debian's folder).</summary>
    public static bool IsAvailable(string? directory = null)
    {
        var dir = directory ?? DebianDirectory;
        return new[] { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" }
            .All(f => Find(dir, f) is not null);
    }

    /// <summary>
    /// Loads the training (60,000 images) or test (10,000) split as an <see cref="IDataView"/> with
    /// columns <c>Label</c> (text, the class name) and <c>Features</c> (<c>Vector&lt;Single, 784&gt;</c>, 0–255).
    /// </summary>
    /// <param name="ml">The ML.NET context.</param>
    /// <param name="train">True for the training split, false for the test split.</param>
    /// <param name="directory">Folder of the IDX files (plain or .gz); default Debian's folder.</param>
    /// <param name="maxRows">Read at most this many images (all when null).</param>
    public static IDataView Load(MLContext ml, bool train, string? directory = null, int? maxRows = null)
    {
        ArgumentNullException.ThrowIfNull(ml);
        return ml.Data.LoadFromEnumerable(Read(train, directory, maxRows));
    }

    /// <summary>Reads one split as objects (see <see cref="Load"/>).</summary>
    public static IReadOnlyList<FashionMnistImage> Read(bool train, string? directory = null, int? maxRows = null)
    {
        var dir = directory ?? DebianDirectory;
        string prefix = train ? "train" : "t10k";
        var images = ReadIdx(dir, $"{prefix}-images-idx3-ubyte", 0x803);
        var labels = ReadIdx(dir, $"{prefix}-labels-idx1-ubyte", 0x801);
        int count = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(4));
        int rows = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(8));
        int cols = BinaryPrimitives.ReadInt32BigEndian(images.AsSpan(12));
        int labelCount = BinaryPrimitives.ReadInt32BigEndian(labels.AsSpan(4));
        if (rows * cols != PixelCount || count != labelCount || images.Length < 16 + (long)count * PixelCount || labels.Length < 8 + count)
            throw new InvalidDataException(
                $"Fashion-MNIST files in '{dir}' are inconsistent: {count} images of {rows}×{cols}, {labelCount} labels.");
        int n = Math.Min(count, maxRows ?? count);
        var result = new FashionMnistImage[n];
        for (int i = 0; i < n; i++)
        {
            var px = new float[PixelCount];
            var src = images.AsSpan(16 + i * PixelCount, PixelCount);
            for (int j = 0; j < PixelCount; j++)
                px[j] = src[j];
            int label = labels[8 + i];
            if (label > 9)
                throw new InvalidDataException($"Fashion-MNIST label file in '{dir}' has label {label} at row {i}; expected 0–9.");
            result[i] = new FashionMnistImage { Label = ClassNames[label], Features = px };
        }
        return result;
    }

    private static string? Find(string dir, string name)
    {
        foreach (var candidate in new[] { name, name + ".gz" })
        {
            var p = Path.Combine(dir, candidate);
            if (File.Exists(p))
                return p;
        }
        return null;
    }

    private static byte[] ReadIdx(string dir, string name, int magic)
    {
        var path = Find(dir, name) ?? throw new FileNotFoundException(
            $"Fashion-MNIST file '{name}' (or '{name}.gz') was not found in '{dir}'. On Debian/Ubuntu install it with " +
            "'sudo apt-get install dataset-fashion-mnist', or pass the folder that holds the four IDX files.", Path.Combine(dir, name));
        byte[] bytes;
        using (var fs = File.OpenRead(path))
        using (var ms = new MemoryStream())
        {
            if (path.EndsWith(".gz", StringComparison.Ordinal))
            {
                using var gz = new GZipStream(fs, CompressionMode.Decompress);
                gz.CopyTo(ms);
            }
            else
            {
                fs.CopyTo(ms);
            }
            bytes = ms.ToArray();
        }
        if (bytes.Length < 8 || BinaryPrimitives.ReadInt32BigEndian(bytes) != magic)
            throw new InvalidDataException($"'{path}' is not an IDX file with magic 0x{magic:X8} (truncated or foreign file).");
        return bytes;
    }
}
