using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.ML.Runtime;
using Allauzen.ML.Core;

namespace Allauzen.ML.Persistence;

/// <summary>
/// Lets plain <c>ml.Model.Save</c>/<c>ml.Model.Load</c> persist Allauzen transformers. ML.NET keeps
/// the members a third-party component needs for this internal; <see cref="MlNetInternals"/> reaches them
/// (its "Persistence" members: model contexts, version information, loader registration).
/// An exception thrown by a loader is tagged with ML.NET's <c>"ML_IsMarked"</c> exception-data key so
/// that ML.NET reports it as it reports its own loaders' errors (wrapped in "Error during class
/// instantiation") rather than as a bare <see cref="TargetInvocationException"/>.
/// </summary>
/// <remarks>
/// <para>Bytes written into the component's <c>Model.key</c> stream after ML.NET's header: the
/// 8-character signature, the payload length (int64), then the payload of
/// <see cref="ModelPayloadWriter"/>. ML.NET's header records the same signature as model and loader
/// signature, version <see cref="BridgeVersion"/>, and the loader assembly <c>Allauzen.ML</c>.</para>
/// <para><see cref="SelfTest"/> checks those members and runs one in-memory save/load round trip
/// through <c>ml.Model.Save</c>/<c>Load</c>. When it fails (a future ML.NET renamed something),
/// <see cref="Save"/> throws a <see cref="NotSupportedException"/> whose message names the ML.NET
/// version found and points to <see cref="AllauzenModel"/>, the public-API-only fallback.</para>
/// </remarks>
internal static class NativeBridge
{
    /// <summary>Version of the bridge framing, recorded in ML.NET's model header.</summary>
    internal const uint BridgeVersion = 0x00010001;

    private const string ProbeSignature = AllauzenLoaders.ReservedProbeSignature;

    /// <summary>ML.NET's marker (<c>Contracts.IsMarkedKey</c>) for exceptions it should wrap, not rethrow raw.</summary>
    private const string MlNetMarkedKey = "ML_IsMarked";

    private static readonly string LoaderAssemblyName = typeof(NativeBridge).Assembly.GetName().Name!;

    private static readonly Lazy<string?> SelfTestResult = new(RunSelfTest);
    private static readonly ConditionalWeakTable<ComponentCatalog, HashSet<string>> Registered = new();

    /// <summary>A key of <see cref="Registered"/> that no 8-character signature can take.</summary>
    private const string WovenMarker = "(woven loaders)";

    /// <summary>
    /// The signatures whose ML.NET loader metadata the build's LoaderWeaver wrote into this assembly
    /// (empty for an assembly built without it, which then registers every loader by reflection).
    /// </summary>
    internal static IReadOnlySet<string> WovenSignatures { get; } = ReadWovenSignatures();

    private static HashSet<string> ReadWovenSignatures()
    {
        var set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var assembly = typeof(NativeBridge).Assembly;
        if (assembly.GetType("Allauzen.ML.Persistence.MlNetLoaders", throwOnError: false) is null)
            return set;
        foreach (var declared in assembly.GetCustomAttributes(typeof(AllauzenLoaderAttribute), false).Cast<AllauzenLoaderAttribute>())
            set.Add(declared.Signature);
        return set;
    }

    private static readonly AllauzenLoaders.Loader ProbeLoader =
        new(ProbeSignature, "BridgeProbe", typeof(ProbeTransformer), ProbeTransformer.Load);

    /// <summary>
    /// Null when the bridge works with the ML.NET loaded in this process; otherwise the reason,
    /// naming the ML.NET version found and the fallback. Computed once per process.
    /// </summary>
    public static string? SelfTest() => SelfTestResult.Value;

    /// <summary>
    /// Writes <paramref name="transformer"/> into an ML.NET model: version information, then its
    /// payload (length-prefixed). Called from each transformer's <c>ICanSaveModel.Save</c>.
    /// </summary>
    /// <exception cref="NotSupportedException">The bridge does not work with this ML.NET; the message
    /// says why and names <c>AllauzenModel.Save</c> as the fallback.</exception>
    /// <exception cref="InvalidOperationException">No loader is registered for the transformer's signature.</exception>
    /// <remarks>
    /// ML.NET leaves a partial file behind when a component's save throws, so every check that can
    /// fail runs, and the payload is built completely, before the first byte is written.
    /// </remarks>
    public static void Save(ModelSaveContext ctx, IAllauzenTransformer transformer)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(transformer);
        Require();
        AllauzenLoaders.Get(transformer.LoaderSignature, transformer.ComponentName, "the model being saved");
        byte[] payload = ModelPayloadWriter.Serialize(transformer);
        SaveCore(ctx, transformer.LoaderSignature, payload);
    }

    /// <summary>
    /// Registers the loader of every component in <see cref="AllauzenLoaders"/> in
    /// <paramref name="ml"/>'s <see cref="ComponentCatalog"/>. Idempotent: a later call registers
    /// only loaders added since. Not thread-safe against concurrent loads on the same MLContext
    /// (ML.NET's catalog is not either).
    /// </summary>
    /// <exception cref="NotSupportedException">The bridge does not work with this ML.NET.</exception>
    public static void Register(MLContext ml)
    {
        ArgumentNullException.ThrowIfNull(ml);
        Require();
        RegisterCore(ml.ComponentCatalog, AllauzenLoaders.All);
    }

    /// <summary>
    /// Registers the loaders in <paramref name="env"/>'s catalog when the bridge works (what every
    /// catalog method does, so a model trained in an MLContext can be loaded back in it); a no-op
    /// when the self-test fails (<c>UseAllauzen</c> reports that).
    /// </summary>
    public static void TryRegister(IHostEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        if (SelfTest() is null)
            RegisterCore(env.ComponentCatalog, AllauzenLoaders.All);
    }

    private static void Require()
    {
        if (SelfTest() is { } error)
            throw new NotSupportedException(error);
    }

    /// <summary>
    /// The message of an unavailable bridge: the ML.NET version found (assembly and informational
    /// version), the version tested, <paramref name="detail"/>, and the fallback.
    /// </summary>
    internal static string Unavailable(string detail)
        => $"Allauzen.ML's native persistence bridge does not work with the ML.NET loaded in this process "
            + $"({MlNetInternals.LoadedVersion}; the bridge was written for and tested against ML.NET {MlNetInternals.WrittenFor}): "
            + $"{detail}. ml.Model.Save/ml.Model.Load cannot persist Allauzen components with this ML.NET; use "
            + "AllauzenModel.Save/AllauzenModel.Load (a composite zip written through public API only) instead.";

    // ---------------------------------------------------------------- save / load

    private static void SaveCore(ModelSaveContext ctx, string signature, byte[] payload)
    {
        var writer = MlNetInternals.BeginSave(ctx, signature, BridgeVersion, LoaderAssemblyName);
        writer.Write(Encoding.ASCII.GetBytes(signature));
        writer.Write((long)payload.Length);
        writer.Write(payload);
    }

    /// <summary>
    /// The loader ML.NET calls for every Allauzen signature, with the internal <c>ModelLoadContext</c>
    /// typed as <see cref="object"/>: through <see cref="MethodBase.Invoke(object, object[])"/> for loaders
    /// registered by reflection (<see cref="Register"/>), and from the <c>MlNetLoaders</c> classes that
    /// the build's LoaderWeaver adds to this assembly (see <see cref="AllauzenLoaderAttribute"/>).
    /// </summary>
    internal static object CreateFromModel(IHostEnvironment env, object ctx)
    {
        try
        {
            if (MlNetInternals.MissingMembers(MlNetInternals.Use.Persistence) is { Count: > 0 } missing)
                throw new NotSupportedException(Unavailable(MissingDetail(missing)));
            var reader = MlNetInternals.BeginLoad(ctx);
            string source = MlNetInternals.Directory(ctx) is { Length: > 0 } dir
                ? $"{dir.Replace('\\', '/')}/Model.key"
                : "the ML.NET model stream";

            byte[] signatureBytes = reader.ReadBytes(PayloadFormat.SignatureLength);
            if (signatureBytes.Length != PayloadFormat.SignatureLength)
                throw new InvalidDataException($"'{source}' is truncated: the Allauzen component signature is missing.");
            string signature = Encoding.ASCII.GetString(signatureBytes);
            var loader = signature == ProbeSignature
                ? ProbeLoader
                : AllauzenLoaders.TryGet(signature) ?? throw new InvalidDataException(
                    $"'{source}' is corrupted or foreign: it starts with '{signature}', which is not the signature of a registered Allauzen component.");
            MlNetInternals.CheckVersionInfo(ctx, signature, BridgeVersion, LoaderAssemblyName);

            long length = reader.ReadInt64();
            if (length < 0 || length > Array.MaxLength)
                throw new InvalidDataException($"'{source}' is corrupted: component '{loader.ComponentName}' declares a payload of {length} bytes.");
            byte[] payload = ReadDeclared(reader, length, source, loader.ComponentName);
            if (payload.Length != length)
            {
                throw new InvalidDataException(
                    $"'{source}' is truncated: component '{loader.ComponentName}' declares a payload of {length} bytes, found {payload.Length}.");
            }
            var payloadReader = new ModelPayloadReader(payload, source, loader.ComponentName, signature);
            return loader.Load(env, payloadReader)
                ?? throw new InvalidOperationException($"The loader of component '{loader.ComponentName}' returned null.");
        }
        catch (Exception ex)
        {
            // Without the mark ML.NET rethrows a bare TargetInvocationException; with it, ML.NET wraps
            // the error the way it wraps its own loaders' errors.
            ex.Data[MlNetMarkedKey] = 1;
            throw;
        }
    }

    /// <summary>
    /// Reads the <paramref name="length"/> bytes a payload declares without trusting the declaration: on a seekable
    /// stream the length is checked against the bytes that remain before anything is allocated; otherwise the bytes
    /// are read in chunks of at most 16 MiB, so a short stream fails after allocating about what it holds.
    /// </summary>
    internal static byte[] ReadDeclared(BinaryReader reader, long length, string source, string component)
    {
        var stream = reader.BaseStream;
        if (stream.CanSeek)
        {
            long remaining = stream.Length - stream.Position;
            if (length > remaining)
            {
                throw new InvalidDataException(
                    $"'{source}' is truncated or corrupted: component '{component}' declares a payload of {length} bytes, but only {remaining} remain.");
            }
            return reader.ReadBytes((int)length);
        }

        const int Chunk = 16 << 20;
        using var buffer = new MemoryStream((int)Math.Min(length, Chunk));
        var chunk = new byte[(int)Math.Min(length, Chunk)];
        long left = length;
        while (left > 0)
        {
            int read = reader.Read(chunk, 0, (int)Math.Min(left, chunk.Length));
            if (read == 0)
            {
                throw new InvalidDataException(
                    $"'{source}' is truncated: component '{component}' declares a payload of {length} bytes, found {length - left}.");
            }
            buffer.Write(chunk, 0, read);
            left -= read;
        }
        return buffer.ToArray();
    }

    private static void RegisterCore(ComponentCatalog catalog, IEnumerable<AllauzenLoaders.Loader> loaders)
    {
        var done = Registered.GetValue(catalog, _ => new HashSet<string>(StringComparer.OrdinalIgnoreCase));
        lock (done)
        {
            // The built-in components carry ML.NET's own loader metadata (woven at build time): register them
            // the way ML.NET does when it loads a model, through the public RegisterAssembly, which is
            // idempotent per catalog. Registering them again by reflection would make ML.NET's later
            // RegisterAssembly of this assembly throw on the duplicate names.
            if (WovenSignatures.Count > 0 && done.Add(WovenMarker))
            {
                catalog.RegisterAssembly(typeof(NativeBridge).Assembly);
                done.UnionWith(WovenSignatures);
            }
            foreach (var loader in loaders)
            {
                if (done.Contains(loader.Signature))
                    continue;
                MlNetInternals.AddModelLoader(catalog, loader.TransformerType, typeof(NativeBridge), loader.ComponentName, loader.Signature, Create);
                done.Add(loader.Signature);
            }
        }
    }

    /// <summary>The loader method ML.NET's catalog calls: <see cref="CreateFromModel"/>.</summary>
    private static readonly MethodInfo Create = ((Func<IHostEnvironment, object, object>)CreateFromModel).Method;

    private static string MissingDetail(IEnumerable<MlNetInternals.Member> missing)
        => $"a reflected member is missing: {string.Join("; ", missing.Select(m => m.Name))}";

    // ---------------------------------------------------------------- self-test

    private static string? RunSelfTest()
    {
        if (MlNetInternals.MissingMembers(MlNetInternals.Use.Persistence) is { Count: > 0 } missing)
            return Unavailable(MissingDetail(missing));
        try
        {
            var ml = new MLContext(seed: 1);
            RegisterCore(ml.ComponentCatalog, [ProbeLoader]);
            var probe = new ProbeTransformer(ProbeTransformer.Marker);
            using var stream = new MemoryStream();
            ml.Model.Save(probe, null, stream);
            stream.Position = 0;
            var loaded = ml.Model.Load(stream, out _);
            if (loaded is not ProbeTransformer back || back.Value != probe.Value)
                return Unavailable($"a probe saved through ml.Model.Save came back from ml.Model.Load as {loaded?.GetType().Name ?? "null"}");
            return null;
        }
        catch (Exception ex)
        {
            var inner = ex;
            while (inner.InnerException is not null)
                inner = inner.InnerException;
            return Unavailable($"a save/load round trip through ml.Model.Save/Load failed ({inner.GetType().Name}: {inner.Message})");
        }
    }

    /// <summary>The smallest savable transformer: the identity, carrying one value to check the round trip.</summary>
    private sealed class ProbeTransformer(long value) : IAllauzenTransformer
    {
        public const long Marker = 0x0A11A2E4_5A7E_0001;

        public long Value { get; } = value;

        public string ComponentName => "BridgeProbe";

        public string LoaderSignature => ProbeSignature;

        public int PayloadVersion => 1;

        public bool IsRowToRowMapper => false;

        public static ITransformer Load(IHostEnvironment env, ModelPayloadReader payload)
        {
            payload.RequireVersion(1);
            return new ProbeTransformer(payload.ReadInt64s("value")[0]);
        }

        public void SavePayload(ModelPayloadWriter writer) => writer.WriteInt64s("value", [Value]);

        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;

        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
            => throw new NotSupportedException("The bridge probe is not a row-to-row mapper.");

        public IDataView Transform(IDataView input) => input;

        void ICanSaveModel.Save(ModelSaveContext ctx)
            => SaveCore(ctx, ProbeSignature, ModelPayloadWriter.Serialize(this));
    }
}
