using System.IO.Compression;
using Allauzen.ML.Core;
using System.Text.Json;
using Microsoft.ML.Runtime;

namespace Allauzen.ML.Persistence;

/// <summary>
/// Saves and loads models that contain Allauzen components without relying on ML.NET internals:
/// the fallback of <c>ml.Model.Save</c>/<c>ml.Model.Load</c>, for an ML.NET
/// version the native bridge does not support. The file is a "composite" zip: runs of native ML.NET
/// transformers are saved with <c>ml.Model.Save</c> as nested models, Allauzen transformers as their
/// own payloads, the input schema as an empty ML.NET model, and <c>manifest.json</c> lists the parts
/// in order. Only <see cref="Load(MLContext, string, out DataViewSchema)"/> reads it back
/// (<c>ml.Model.Load</c> cannot).
/// </summary>
public static class AllauzenModel
{
    private const string ManifestEntry = "manifest.json";
    private const string InputSchemaEntry = "input-schema.mlnet.zip";
    private const string FormatName = "Allauzen.ML.CompositeModel";
    private const int FormatVersion = 1;
    private const string MlNetKind = "MlNet";
    private const string AllauzenKind = "Allauzen";
    private const long MaxManifestBytes = 16 << 20;

    private static readonly JsonSerializerOptions ManifestJson = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };

    /// <summary>
    /// Saves <paramref name="model"/> and <paramref name="inputSchema"/> to <paramref name="path"/>.
    /// The file is written to a temporary file in the same folder and renamed when complete, so a
    /// failed save leaves any previous file untouched.
    /// </summary>
    /// <param name="ml">The context (used for ML.NET's own parts).</param>
    /// <param name="model">The model; <see cref="TransformerChain{TLastTransformer}"/>s are flattened.</param>
    /// <param name="inputSchema">The schema of the data the model was trained on; may be null.</param>
    /// <param name="path">Target file.</param>
    public static void Save(MLContext ml, ITransformer model, DataViewSchema? inputSchema, string path)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var parts = Prepare(ml, model, inputSchema);
        AtomicFile.Write(path, stream => WriteZip(parts, stream));
    }

    /// <summary>Saves <paramref name="model"/> and <paramref name="inputSchema"/> to <paramref name="stream"/>, which is left open.</summary>
    /// <inheritdoc cref="Save(MLContext, ITransformer, DataViewSchema, string)"/>
    public static void Save(MLContext ml, ITransformer model, DataViewSchema? inputSchema, Stream stream)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite)
            throw new ArgumentException("The stream is not writable.", nameof(stream));
        WriteZip(Prepare(ml, model, inputSchema), stream);
    }

    /// <summary>Loads a model saved by <see cref="Save(MLContext, ITransformer, DataViewSchema, string)"/>.</summary>
    /// <param name="ml">The context the loaded transformers belong to.</param>
    /// <param name="path">The composite model file.</param>
    /// <param name="inputSchema">The input schema saved with the model, or null if none was saved.</param>
    /// <returns>A <see cref="TransformerChain{TLastTransformer}"/> of all saved transformers, in order.</returns>
    /// <exception cref="InvalidDataException">The file is not a composite model, or is truncated or corrupted;
    /// the message names the file and, for an Allauzen part, the component.</exception>
    public static ITransformer Load(MLContext ml, string path, out DataViewSchema? inputSchema)
        => Load(ml, path, out inputSchema, new AllauzenModelLoadOptions());

    /// <summary>Loads a model saved by <see cref="Save(MLContext, ITransformer, DataViewSchema, string)"/> with
    /// the given limits on what its zip entries may inflate to.</summary>
    /// <param name="ml">The context the loaded transformers belong to.</param>
    /// <param name="path">The composite model file.</param>
    /// <param name="inputSchema">The input schema saved with the model, or null if none was saved.</param>
    /// <param name="options">Resource limits (see <see cref="AllauzenModelLoadOptions"/> for the defaults).</param>
    /// <returns>A <see cref="TransformerChain{TLastTransformer}"/> of all saved transformers, in order.</returns>
    /// <exception cref="InvalidDataException">The file is not a composite model, is truncated or corrupted, or an
    /// entry exceeds a limit; the message names the file, the entry and, for an Allauzen part, the component.</exception>
    public static ITransformer Load(MLContext ml, string path, out DataViewSchema? inputSchema, AllauzenModelLoadOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return LoadCore(ml, path, stream: null, options, out inputSchema);
    }

    /// <summary>Loads a composite model from <paramref name="stream"/>, which is left open.</summary>
    /// <inheritdoc cref="Load(MLContext, string, out DataViewSchema)"/>
    public static ITransformer Load(MLContext ml, Stream stream, out DataViewSchema? inputSchema)
        => Load(ml, stream, out inputSchema, new AllauzenModelLoadOptions());

    /// <summary>Loads a composite model from <paramref name="stream"/>, which is left open, with the given limits.</summary>
    /// <inheritdoc cref="Load(MLContext, string, out DataViewSchema, AllauzenModelLoadOptions)"/>
    public static ITransformer Load(MLContext ml, Stream stream, out DataViewSchema? inputSchema, AllauzenModelLoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return LoadCore(ml, path: null, stream, options, out inputSchema);
    }

    // ---------------------------------------------------------------- save

    private sealed record PreparedPart(PartInfo Info, byte[] Bytes);

    private sealed record Prepared(Manifest Manifest, byte[]? InputSchema, List<PreparedPart> Parts);

    private static Prepared Prepare(MLContext ml, ITransformer model, DataViewSchema? inputSchema)
    {
        var transformers = new List<ITransformer>();
        Flatten(model, transformers);

        // Everything is serialized before the first byte reaches the output.
        var parts = new List<PreparedPart>();
        var run = new List<ITransformer>();
        DataViewSchema? runSchema = inputSchema;
        DataViewSchema? current = inputSchema;

        void FlushRun()
        {
            if (run.Count == 0)
                return;
            using var buffer = new MemoryStream();
            ml.Model.Save(new TransformerChain<ITransformer>([.. run]), runSchema, buffer);
            var info = new PartInfo { Kind = MlNetKind, Entry = $"parts/{parts.Count:D3}.mlnet.zip", Transformers = run.Count };
            parts.Add(new PreparedPart(info, buffer.ToArray()));
            run.Clear();
        }

        foreach (var transformer in transformers)
        {
            if (transformer is IAllauzenTransformer ours)
            {
                FlushRun();
                AllauzenLoaders.Get(ours.LoaderSignature, ours.ComponentName, "the model being saved");
                var info = new PartInfo
                {
                    Kind = AllauzenKind,
                    Entry = $"parts/{parts.Count:D3}.alzpayload",
                    Transformers = 1,
                    Signature = ours.LoaderSignature,
                    Component = ours.ComponentName,
                    PayloadVersion = ours.PayloadVersion,
                };
                parts.Add(new PreparedPart(info, ModelPayloadWriter.Serialize(ours)));
            }
            else
            {
                if (run.Count == 0)
                    runSchema = current;
                run.Add(transformer);
            }
            if (current is not null)
                current = transformer.GetOutputSchema(current);
        }
        FlushRun();

        byte[]? schemaBytes = null;
        if (inputSchema is not null)
        {
            using var buffer = new MemoryStream();
            ml.Model.Save(new TransformerChain<ITransformer>(), inputSchema, buffer);
            schemaBytes = buffer.ToArray();
        }

        var manifest = new Manifest
        {
            Format = FormatName,
            FormatVersion = FormatVersion,
            CreatedBy = $"Allauzen.ML {MlNetInternals.InformationalVersion(typeof(AllauzenModel).Assembly)}",
            MlNetVersion = MlNetInternals.InformationalVersion(typeof(MLContext).Assembly),
            InputSchema = schemaBytes is null ? null : InputSchemaEntry,
            Parts = parts.Select(p => (PartInfo?)p.Info).ToList(),
        };
        return new Prepared(manifest, schemaBytes, parts);
    }

    private static void Flatten(ITransformer transformer, List<ITransformer> into)
    {
        var type = transformer.GetType();
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(TransformerChain<>))
        {
            foreach (var inner in (IEnumerable<ITransformer>)transformer)
                Flatten(inner, into);
        }
        else
        {
            into.Add(transformer);
        }
    }

    private static void WriteZip(Prepared prepared, Stream stream)
    {
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        WriteEntry(zip, ManifestEntry, JsonSerializer.SerializeToUtf8Bytes(prepared.Manifest, ManifestJson), CompressionLevel.Optimal);
        if (prepared.InputSchema is { } schema)
            WriteEntry(zip, InputSchemaEntry, schema, CompressionLevel.NoCompression);
        foreach (var part in prepared.Parts)
        {
            var level = part.Info.Kind == MlNetKind ? CompressionLevel.NoCompression : CompressionLevel.Fastest;
            WriteEntry(zip, part.Info.Entry, part.Bytes, level);
        }
    }

    private static void WriteEntry(ZipArchive zip, string name, byte[] bytes, CompressionLevel level)
    {
        var entry = zip.CreateEntry(name, level);
        using var output = entry.Open();
        output.Write(bytes);
    }

    // ---------------------------------------------------------------- load

    /// <summary>
    /// What every Load overload does: checks <paramref name="ml"/> and <paramref name="options"/> (before the file is opened),
    /// then reads the model from <paramref name="stream"/>, left open, or else from the file at <paramref name="path"/>.
    /// </summary>
    private static ITransformer LoadCore(MLContext ml, string? path, Stream? stream, AllauzenModelLoadOptions options, out DataViewSchema? inputSchema)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (stream is not null)
            return ReadZip(ml, stream, stream is FileStream file ? file.Name : "the model stream", options, out inputSchema);
        using var opened = File.OpenRead(path!);
        return ReadZip(ml, opened, path!, options, out inputSchema);
    }

    private static ITransformer ReadZip(MLContext ml, Stream stream, string source, AllauzenModelLoadOptions limits, out DataViewSchema? inputSchema)
    {
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            try
            {
                _ = zip.Entries.Count; // reads the central directory now, so damage there is reported here
            }
            catch
            {
                zip.Dispose();
                throw;
            }
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException(
                $"'{source}' is not an Allauzen.ML composite model (saved by AllauzenModel.Save): it is not a zip archive, or it is truncated ({ex.Message}).", ex);
        }

        using (zip)
        {
            var budget = new EntryBudget(limits, source);
            var manifest = ReadManifest(zip, source, budget);
            var env = (IHostEnvironment)ml;
            var transformers = new List<ITransformer>();
            foreach (var part in manifest.Parts ?? [])
            {
                if (part is null || string.IsNullOrEmpty(part.Entry))
                    throw new InvalidDataException($"'{source}' is corrupted: manifest.json lists a part without an entry name.");
                string partSource = $"{source}!{part.Entry}";
                if (part.Kind == AllauzenKind)
                {
                    string signature = part.Signature
                        ?? throw new InvalidDataException($"'{source}' is corrupted: manifest.json gives no signature for part '{part.Entry}'.");
                    string component = part.Component ?? signature;
                    byte[] bytes = budget.Read(zip, part.Entry, $"component '{component}'");
                    var loader = AllauzenLoaders.Get(signature, component, source);
                    var payload = new ModelPayloadReader(bytes, partSource, loader.ComponentName, signature);
                    transformers.Add(loader.Load(env, payload)
                        ?? throw new InvalidOperationException($"The loader of component '{loader.ComponentName}' returned null."));
                }
                else if (part.Kind == MlNetKind)
                {
                    byte[] bytes = budget.Read(zip, part.Entry, "an ML.NET part");
                    var loaded = LoadNative(ml, bytes, partSource, out _);
                    Flatten(loaded, transformers);
                }
                else
                {
                    throw new InvalidDataException(
                        $"'{source}' has a part '{part.Entry}' of unknown kind '{part.Kind}'; it was probably written by a newer Allauzen.ML.");
                }
            }

            inputSchema = null;
            if (manifest.InputSchema is { } schemaEntry)
            {
                byte[] bytes = budget.Read(zip, schemaEntry, "the input schema");
                LoadNative(ml, bytes, $"{source}!{schemaEntry}", out inputSchema);
            }
            return new TransformerChain<ITransformer>([.. transformers]);
        }
    }

    private static Manifest ReadManifest(ZipArchive zip, string source, EntryBudget budget)
    {
        var entry = zip.GetEntry(ManifestEntry);
        if (entry is null)
        {
            bool isMlNet = zip.Entries.Any(e => e.FullName.EndsWith("Model.key", StringComparison.Ordinal));
            throw new InvalidDataException(isMlNet
                ? $"'{source}' is an ML.NET model, not an Allauzen.ML composite model: load it with ml.Model.Load (which reads its Allauzen components)."
                : $"'{source}' is not an Allauzen.ML composite model: the zip archive has no {ManifestEntry}.");
        }

        byte[] json = budget.Read(zip, ManifestEntry, "the manifest", MaxManifestBytes);
        Manifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<Manifest>(json, ManifestJson);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"'{source}' is corrupted: {ManifestEntry} cannot be read ({ex.Message}).", ex);
        }
        if (manifest is null || manifest.Format != FormatName)
            throw new InvalidDataException($"'{source}' is not an Allauzen.ML composite model: {ManifestEntry} does not declare the format '{FormatName}'.");
        if (manifest.FormatVersion < 1 || manifest.FormatVersion > FormatVersion)
        {
            throw new InvalidDataException(
                $"'{source}' is a composite model of format version {manifest.FormatVersion}; this build of Allauzen.ML reads versions 1 to {FormatVersion}. Update Allauzen.ML.");
        }
        return manifest;
    }

    /// <summary>
    /// Reads whole zip entries under the limits of <see cref="AllauzenModelLoadOptions"/>: the declared sizes are
    /// checked before anything is allocated (per entry, compression ratio, total), the buffer is exactly the declared
    /// size, and inflating more (or fewer) bytes than declared is an error naming the entry.
    /// </summary>
    private sealed class EntryBudget(AllauzenModelLoadOptions limits, string source)
    {
        private long _used;

        public byte[] Read(ZipArchive zip, string name, string what, long cap = long.MaxValue)
        {
            var entry = zip.GetEntry(name)
                ?? throw new InvalidDataException($"'{source}' is corrupted: entry '{name}' ({what}), listed in {ManifestEntry}, is missing.");
            long declared = entry.Length;
            long packed = entry.CompressedLength;
            string where = $"'{source}': entry '{name}' ({what})";
            long max = Math.Min(limits.MaxEntryBytes, cap);
            if (declared > max)
                throw new InvalidDataException($"{where} declares {declared} bytes uncompressed, more than the limit of {max} bytes (AllauzenModelLoadOptions.MaxEntryBytes).");
            if (declared > AllauzenModelLoadOptions.RatioFreeBytes && declared > packed * limits.MaxCompressionRatio)
            {
                throw new InvalidDataException(
                    $"{where} declares {declared} bytes from {packed} compressed bytes, a ratio above the limit of {limits.MaxCompressionRatio} (AllauzenModelLoadOptions.MaxCompressionRatio).");
            }
            if (declared > limits.MaxTotalBytes - _used)
            {
                throw new InvalidDataException(
                    $"{where} declares {declared} bytes, which brings the model above the limit of {limits.MaxTotalBytes} bytes in all (AllauzenModelLoadOptions.MaxTotalBytes).");
            }
            _used += declared;
            var bytes = new byte[declared];
            try
            {
                using var input = entry.Open();
                int filled = 0;
                while (filled < bytes.Length)
                {
                    int read = input.Read(bytes, filled, bytes.Length - filled);
                    if (read == 0)
                        throw new InvalidDataException($"{where} is truncated: it declares {declared} bytes but inflates to {filled}.");
                    filled += read;
                }
                Span<byte> probe = stackalloc byte[1];
                if (input.Read(probe) != 0)
                    throw new InvalidDataException($"{where} is corrupted: it inflates to more than the {declared} bytes it declares.");
            }
            catch (InvalidDataException ex) when (!ex.Message.StartsWith(where, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"'{source}' is corrupted: entry '{name}' ({what}) cannot be decompressed ({ex.Message}).", ex);
            }
            catch (IOException ex)
            {
                throw new InvalidDataException($"'{source}' is corrupted: entry '{name}' ({what}) cannot be decompressed ({ex.Message}).", ex);
            }
            return bytes;
        }
    }

    private static ITransformer LoadNative(MLContext ml, byte[] bytes, string source, out DataViewSchema? schema)
    {
        try
        {
            using var buffer = new MemoryStream(bytes, writable: false);
            return ml.Model.Load(buffer, out schema);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new InvalidDataException($"'{source}': the ML.NET part cannot be loaded ({ex.Message}).", ex);
        }
    }

    private sealed class Manifest
    {
        public string? Format { get; set; }
        public int FormatVersion { get; set; }
        public string? CreatedBy { get; set; }
        public string? MlNetVersion { get; set; }
        public string? InputSchema { get; set; }
        public List<PartInfo?>? Parts { get; set; }
    }

    private sealed class PartInfo
    {
        public string Kind { get; set; } = "";
        public string Entry { get; set; } = "";
        public int Transformers { get; set; }
        public string? Signature { get; set; }
        public string? Component { get; set; }
        public int? PayloadVersion { get; set; }
    }
}
