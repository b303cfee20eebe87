using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Allauzen.ML.Persistence;

/// <summary>
/// Lets plain <c>ml.Model.Save</c>/<c>ml.Model.Load</c> persist Allauzen transformers. ML.NET keeps
/// the members a third-party component needs for this internal, so this class — and only this
/// class — reaches them by private reflection into Microsoft.ML.Core (built and tested against
/// ML.NET 5.0.1):
/// <list type="bullet">
/// <item><c>Microsoft.ML.VersionInfo</c>: its constructor
/// <c>(string modelSignature, uint verWrittenCur, uint verReadableCur, uint verWeCanReadBack, string loaderAssemblyName, string loaderSignature, string loaderSignatureAlt)</c>.</item>
/// <item><c>Microsoft.ML.ModelSaveContext</c>: <c>CheckAtModel()</c>, <c>SetVersionInfo(VersionInfo)</c>, field <c>Writer</c>.</item>
/// <item><c>Microsoft.ML.ModelLoadContext</c> (an internal type): <c>CheckAtModel()</c>,
/// <c>CheckVersionInfo(VersionInfo)</c>, field <c>Reader</c>, and (optional, for messages) field <c>Directory</c>.</item>
/// <item><c>Microsoft.ML.LoadableClassAttribute</c>: constructor
/// <c>(Type instType, Type loaderType, Type argType, Type sigType, string userName, params string[] loadNames)</c>.</item>
/// <item><c>Microsoft.ML.Runtime.ComponentCatalog+LoadableClassInfo</c>: constructor
/// <c>(LoadableClassAttributeBase, MethodInfo getter, ConstructorInfo ctor, MethodInfo create, bool requireEnvironment)</c>.</item>
/// <item><c>ComponentCatalog.AddClass(LoadableClassInfo, string[], bool)</c> and the delegate type
/// <c>Microsoft.ML.SignatureLoadModel</c>.</item>
/// </list>
/// An exception thrown by a loader is tagged with ML.NET's <c>"ML_IsMarked"</c> exception-data key so
/// that ML.NET reports it as it reports its own loaders' errors (wrapped in "Error during class
/// instantiation") rather than as a bare <see cref="TargetInvocationException"/>.
/// </summary>
/// <remarks>
/// <para>Bytes written into the component's <c>Model.key</c> stream after ML.NET's header: the
/// 8-character signature, the payload length (int64), then the payload of
/// <see cref="ModelPayloadWriter"/>. ML.NET's header records the same signature as model and loader
/// signature, version <see cref="BridgeVersion"/>, and the loader assembly <c>Allauzen.ML</c>.</para>
/// <para><see cref="SelfTest"/> resolves every member and runs one in-memory save/load round trip
/// through <c>ml.Model.Save</c>/<c>Load</c>. When it fails (a future ML.NET renamed something),
/// <see cref="Save"/> throws a <see cref="NotSupportedException"/> whose message names the ML.NET
/// version found and points to <see cref="AllauzenModel"/>, the public-API-only fallback.</para>
/// </remarks>
internal static class NativeBridge
{
    /// <summary>Version of the bridge framing, recorded in ML.NET's model header.</summary>
    internal const uint BridgeVersion = 0x00010001;

    /// <summary>The ML.NET version the bridge was written against.</summary>
    internal const string TestedMlNetVersion = "5.0.1";

    private const string ProbeSignature = AllauzenLoaders.ReservedProbeSignature;

    /// <summary>ML.NET's marker (<c>Contracts.IsMarkedKey</c>) for exceptions it should wrap, not rethrow raw.</summary>
    private const string MlNetMarkedKey = "ML_IsMarked";

    private static readonly string LoaderAssemblyName = typeof(NativeBridge).Assembly.GetName().Name!;

    private static readonly Lazy<Members?> Resolved = new(ResolveOrNull);
    private static string? _resolveError;
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
        var members = Require();
        AllauzenLoaders.Get(transformer.LoaderSignature, transformer.ComponentName, "the model being saved");
        byte[] payload = ModelPayloadWriter.Serialize(transformer);
        SaveCore(members, ctx, transformer.LoaderSignature, payload);
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
        var members = Require();
        RegisterCore(members, ml.ComponentCatalog, AllauzenLoaders.All);
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
            RegisterCore(Resolved.Value!, env.ComponentCatalog, AllauzenLoaders.All);
    }

    private static Members Require()
    {
        if (SelfTest() is { } error)
            throw new NotSupportedException(error);
        return Resolved.Value!;
    }

    /// <summary>
    /// The message of an unavailable bridge: the ML.NET version found (assembly and informational
    /// version), the version tested, <paramref name="detail"/>, and the fallback.
    /// </summary>
    internal static string Unavailable(string detail)
    {
        var asm = typeof(MLContext).Assembly;
        string version = asm.GetName().Version?.ToString() ?? "unknown";
        string informational = asm.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        return $"Allauzen.ML's native persistence bridge does not work with the ML.NET loaded in this process "
            + $"(Microsoft.ML assembly version {version}, informational version {informational}; the bridge was built and tested "
            + $"against ML.NET {TestedMlNetVersion}): {detail}. ml.Model.Save/ml.Model.Load cannot persist Allauzen components "
            + "with this ML.NET; use AllauzenModel.Save/AllauzenModel.Load (a composite zip written through public API only) instead.";
    }

    // ---------------------------------------------------------------- save / load

    private static void SaveCore(Members m, ModelSaveContext ctx, string signature, byte[] payload)
    {
        Invoke(m.SaveCheckAtModel, ctx, null);
        Invoke(m.SaveSetVersionInfo, ctx, [VersionInfoFor(m, signature)]);
        var writer = (BinaryWriter)m.SaveWriter.GetValue(ctx)!;
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
            var m = Resolved.Value
                ?? throw new NotSupportedException(SelfTest() ?? Unavailable("the reflected members could not be resolved"));
            Invoke(m.LoadCheckAtModel, ctx, null);
            var reader = (BinaryReader)m.LoadReader.GetValue(ctx)!;
            string source = m.LoadDirectory?.GetValue(ctx) is string { Length: > 0 } dir
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
            Invoke(m.LoadCheckVersionInfo, ctx, [VersionInfoFor(m, signature)]);

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

    private static void RegisterCore(Members m, ComponentCatalog catalog, IEnumerable<AllauzenLoaders.Loader> loaders)
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
                object attribute = m.LoadableClassAttributeCtor.Invoke(
                    [loader.TransformerType, typeof(NativeBridge), null, m.SignatureLoadModel, loader.ComponentName, new[] { loader.Signature }]);
                object info = m.LoadableClassInfoCtor.Invoke([attribute, null, null, m.Create, true]);
                Invoke(m.AddClass, catalog, [info, new[] { loader.Signature }, true]);
                done.Add(loader.Signature);
            }
        }
    }

    private static object VersionInfoFor(Members m, string signature)
        => m.VersionInfoCtor.Invoke([signature, BridgeVersion, BridgeVersion, BridgeVersion, LoaderAssemblyName, signature, null]);

    private static object? Invoke(MethodInfo method, object? target, object?[]? args)
    {
        try
        {
            return method.Invoke(target, args);
        }
        catch (TargetInvocationException tie) when (tie.InnerException is not null)
        {
            ExceptionDispatchInfo.Capture(tie.InnerException).Throw();
            throw;
        }
    }

    // ---------------------------------------------------------------- reflection

    private sealed class Members
    {
        public required ConstructorInfo VersionInfoCtor { get; init; }
        public required MethodInfo SaveCheckAtModel { get; init; }
        public required MethodInfo SaveSetVersionInfo { get; init; }
        public required FieldInfo SaveWriter { get; init; }
        public required MethodInfo LoadCheckAtModel { get; init; }
        public required MethodInfo LoadCheckVersionInfo { get; init; }
        public required FieldInfo LoadReader { get; init; }
        public FieldInfo? LoadDirectory { get; init; }
        public required ConstructorInfo LoadableClassAttributeCtor { get; init; }
        public required ConstructorInfo LoadableClassInfoCtor { get; init; }
        public required MethodInfo AddClass { get; init; }
        public required Type SignatureLoadModel { get; init; }
        public required MethodInfo Create { get; init; }
    }

    private static Members? ResolveOrNull()
    {
        try
        {
            return Resolve();
        }
        catch (MissingMemberException ex)
        {
            _resolveError = ex.Message;
            return null;
        }
    }

    private static Members Resolve()
    {
        const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        const BindingFlags Static = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        var core = typeof(ModelSaveContext).Assembly;

        Type FindType(string name) => core.GetType(name, throwOnError: false)
            ?? throw new MissingMemberException($"type {name} was not found in {core.GetName().Name}");

        var versionInfo = FindType("Microsoft.ML.VersionInfo");
        var loadContext = FindType("Microsoft.ML.ModelLoadContext");
        var attributeType = FindType("Microsoft.ML.LoadableClassAttribute");
        var attributeBase = FindType("Microsoft.ML.LoadableClassAttributeBase");
        var signatureLoadModel = FindType("Microsoft.ML.SignatureLoadModel");
        var classInfo = typeof(ComponentCatalog).GetNestedType("LoadableClassInfo", BindingFlags.NonPublic | BindingFlags.Public)
            ?? throw new MissingMemberException("type Microsoft.ML.Runtime.ComponentCatalog+LoadableClassInfo was not found");

        ConstructorInfo Ctor(Type type, params Type[] parameters) => type.GetConstructor(Instance, null, parameters, null)
            ?? throw new MissingMemberException($"constructor {type.Name}({string.Join(", ", parameters.Select(p => p.Name))}) was not found");
        MethodInfo Method(Type type, string name, BindingFlags flags, params Type[] parameters) => type.GetMethod(name, flags, null, parameters, null)
            ?? throw new MissingMemberException($"method {type.Name}.{name}({string.Join(", ", parameters.Select(p => p.Name))}) was not found");
        FieldInfo Field(Type type, string name, Type fieldType)
        {
            var field = type.GetField(name, Instance)
                ?? throw new MissingMemberException($"field {type.Name}.{name} was not found");
            if (field.FieldType != fieldType)
                throw new MissingMemberException($"field {type.Name}.{name} has type {field.FieldType.Name}, expected {fieldType.Name}");
            return field;
        }

        var directory = loadContext.GetField("Directory", Instance);
        return new Members
        {
            VersionInfoCtor = Ctor(versionInfo, typeof(string), typeof(uint), typeof(uint), typeof(uint), typeof(string), typeof(string), typeof(string)),
            SaveCheckAtModel = Method(typeof(ModelSaveContext), "CheckAtModel", Instance, Type.EmptyTypes),
            SaveSetVersionInfo = Method(typeof(ModelSaveContext), "SetVersionInfo", Instance, versionInfo),
            SaveWriter = Field(typeof(ModelSaveContext), "Writer", typeof(BinaryWriter)),
            LoadCheckAtModel = Method(loadContext, "CheckAtModel", Instance, Type.EmptyTypes),
            LoadCheckVersionInfo = Method(loadContext, "CheckVersionInfo", Instance, versionInfo),
            LoadReader = Field(loadContext, "Reader", typeof(BinaryReader)),
            LoadDirectory = directory?.FieldType == typeof(string) ? directory : null,
            LoadableClassAttributeCtor = Ctor(attributeType, typeof(Type), typeof(Type), typeof(Type), typeof(Type), typeof(string), typeof(string[])),
            LoadableClassInfoCtor = Ctor(classInfo, attributeBase, typeof(MethodInfo), typeof(ConstructorInfo), typeof(MethodInfo), typeof(bool)),
            AddClass = Method(typeof(ComponentCatalog), "AddClass", Instance, classInfo, typeof(string[]), typeof(bool)),
            SignatureLoadModel = signatureLoadModel,
            Create = Method(typeof(NativeBridge), nameof(CreateFromModel), Static, typeof(IHostEnvironment), typeof(object)),
        };
    }

    // ---------------------------------------------------------------- self-test

    private static string? RunSelfTest()
    {
        var m = Resolved.Value;
        if (m is null)
            return Unavailable($"a reflected member is missing: {_resolveError}");
        try
        {
            var ml = new MLContext(seed: 1);
            RegisterCore(m, ml.ComponentCatalog, [ProbeLoader]);
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
            => SaveCore(Resolved.Value!, ctx, ProbeSignature, ModelPayloadWriter.Serialize(this));
    }
}
