using System.Reflection;
using System.Runtime.ExceptionServices;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Allauzen.ML.Core;

/// <summary>
/// The one door into ML.NET's non-public members: every private-reflection access of Allauzen.ML into ML.NET is
/// resolved and used here, and nowhere else. Written for ML.NET <see cref="WrittenFor"/>.
/// </summary>
/// <remarks>
/// <para>The members, by use (all in Microsoft.ML.Core unless said otherwise):</para>
/// <list type="bullet">
/// <item>Persistence (<c>ml.Model.Save</c>/<c>Load</c> of Allauzen components): the <c>VersionInfo</c> constructor;
/// <c>ModelSaveContext.CheckAtModel()</c>, <c>SetVersionInfo(VersionInfo)</c>, field <c>Writer</c>; the internal
/// <c>ModelLoadContext</c>'s <c>CheckAtModel()</c>, <c>CheckVersionInfo(VersionInfo)</c>, field <c>Reader</c> and
/// (optional, for messages) field <c>Directory</c>; the <c>LoadableClassAttribute</c> constructor, the
/// <c>ComponentCatalog+LoadableClassInfo</c> constructor, <c>ComponentCatalog.AddClass</c> and the delegate type
/// <c>SignatureLoadModel</c>.</item>
/// <item>Catalogs: <c>Microsoft.ML.Data.IInternalCatalog.Environment</c> (Microsoft.ML.Data), the environment behind
/// <c>mlContext.Model</c>, <c>mlContext.Transforms</c>, ...</item>
/// <item>Schema shapes: the internal constructor of <see cref="SchemaShape.Column"/>.</item>
/// <item>Optional (a missing one only skips a check or a setting): <c>IHostEnvironmentInternal.GpuDeviceId</c> and
/// <c>FallbackToCpu</c>; <c>IDataTransform.Source</c> and <c>ITransformCanSaveOnnx</c> (Microsoft.ML.Data), which
/// mirror the walk of ML.NET's ONNX converter.</item>
/// </list>
/// <para>Every member is resolved once, lazily, at the first use of any of them (<see cref="MissingMembers"/> is that
/// self-test); a use of a missing required member throws a <see cref="NotSupportedException"/> naming the member,
/// the ML.NET version found and the version this class was written for. The unit tests call
/// <see cref="MissingMembers"/> and expect nothing missing.</para>
/// <para>What is not here: the loader classes and the <c>IDataTransform</c>/<c>ITransformCanSaveOnnx</c>
/// implementation that the build's LoaderWeaver writes into the compiled assembly (IL naming internal types, which
/// the runtime accepts through <c>IgnoresAccessChecksTo</c>). They cannot be reflection: ML.NET finds them by
/// reading assembly metadata. The woven loaders call <c>NativeBridge.CreateFromModel</c>, which reads the load
/// context through this class.</para>
/// </remarks>
internal static class MlNetInternals
{
    /// <summary>The ML.NET version these members were written for and tested against.</summary>
    internal const string WrittenFor = "5.0.1";

    /// <summary>What a member is needed for; <see cref="Optional"/> ones only skip a check when missing.</summary>
    internal enum Use
    {
        /// <summary>Native persistence (<c>ml.Model.Save</c>/<c>Load</c>).</summary>
        Persistence,

        /// <summary>Reading the environment behind an ML.NET catalog.</summary>
        Catalog,

        /// <summary>Building <see cref="SchemaShape.Column"/> values.</summary>
        Schema,

        /// <summary>Not required: a missing member skips a check or a setting.</summary>
        Optional,
    }

    /// <summary>One member this class needs: a readable name, its use, and what was resolved (null when missing).</summary>
    internal sealed record Member(string Name, Use Use, object? Value);

    private static readonly Lazy<Members> Resolved = new(Resolve);

    // ---------------------------------------------------------------- versions

    /// <summary>The informational version of <paramref name="assembly"/> as stamped (with any "+commit" suffix),
    /// else its assembly version, else "unknown".</summary>
    internal static string InformationalVersion(Assembly assembly)
        => assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? assembly.GetName().Version?.ToString()
            ?? "unknown";

    /// <summary>The loaded ML.NET, for messages: "Microsoft.ML 5.0.1 (assembly version 5.0.0.0)".</summary>
    internal static string LoadedVersion
    {
        get
        {
            var asm = typeof(MLContext).Assembly;
            string info = InformationalVersion(asm);
            int plus = info.IndexOf('+', StringComparison.Ordinal);
            return $"Microsoft.ML {(plus > 0 ? info[..plus] : info)} (assembly version {asm.GetName().Version?.ToString() ?? "unknown"})";
        }
    }

    /// <summary>The message of a missing member: its name, its use, the ML.NET found and the one written for.</summary>
    internal static string MissingMessage(string member) =>
        $"Allauzen.ML cannot reach the ML.NET member {member} in the loaded {LoadedVersion}; Allauzen.ML was written for "
        + $"ML.NET {WrittenFor}. Use ML.NET {WrittenFor} or an Allauzen.ML built for this version.";

    // ---------------------------------------------------------------- self-test

    /// <summary>
    /// The self-test: every member this class needs, with what was found. Resolved once per process.
    /// </summary>
    internal static IReadOnlyList<Member> AllMembers => Resolved.Value.All;

    /// <summary>The members not found in the loaded ML.NET (empty when all are there), optionally of one use only.</summary>
    internal static IReadOnlyList<Member> MissingMembers(Use? use = null) =>
        [.. AllMembers.Where(m => m.Value is null && (use is null || m.Use == use))];

    /// <summary>Throws when a required member is missing (the message names them); used by tests and diagnostics.</summary>
    /// <exception cref="NotSupportedException">A member of use Persistence, Catalog or Schema is missing.</exception>
    internal static void EnsureAvailable()
    {
        var missing = MissingMembers().Where(m => m.Use != Use.Optional).Select(m => m.Name).ToList();
        if (missing.Count > 0)
            throw new NotSupportedException(MissingMessage(string.Join("; ", missing)));
    }

    private static T Need<T>(T? value, string name) where T : class
        => value ?? throw new NotSupportedException(MissingMessage(name));

    // ---------------------------------------------------------------- persistence

    /// <summary>
    /// Starts writing a model part: <c>ModelSaveContext.CheckAtModel()</c>, then
    /// <c>SetVersionInfo(new VersionInfo(signature, version, version, version, loaderAssembly, signature, null))</c>;
    /// returns the context's <c>Writer</c>.
    /// </summary>
    internal static BinaryWriter BeginSave(ModelSaveContext ctx, string signature, uint version, string loaderAssembly)
    {
        var m = Resolved.Value;
        Invoke(Need(m.SaveCheckAtModel, Names.SaveCheckAtModel), ctx, null);
        Invoke(Need(m.SaveSetVersionInfo, Names.SaveSetVersionInfo), ctx, [VersionInfo(signature, version, loaderAssembly)]);
        return (BinaryWriter)Need(m.SaveWriter, Names.SaveWriter).GetValue(ctx)!;
    }

    /// <summary>
    /// Starts reading a model part: <c>ModelLoadContext.CheckAtModel()</c> (<paramref name="loadContext"/> is ML.NET's
    /// internal <c>ModelLoadContext</c>); returns the context's <c>Reader</c>. The version information is checked by
    /// <see cref="CheckVersionInfo"/> once the caller knows the signature.
    /// </summary>
    internal static BinaryReader BeginLoad(object loadContext)
    {
        var m = Resolved.Value;
        Invoke(Need(m.LoadCheckAtModel, Names.LoadCheckAtModel), loadContext, null);
        return (BinaryReader)Need(m.LoadReader, Names.LoadReader).GetValue(loadContext)!;
    }

    /// <summary><c>ModelLoadContext.CheckVersionInfo(new VersionInfo(...))</c>, the same version information as
    /// <see cref="BeginSave"/> writes.</summary>
    internal static void CheckVersionInfo(object loadContext, string signature, uint version, string loaderAssembly)
        => Invoke(Need(Resolved.Value.LoadCheckVersionInfo, Names.LoadCheckVersionInfo), loadContext, [VersionInfo(signature, version, loaderAssembly)]);

    /// <summary><c>ModelLoadContext.Directory</c> (the entry's folder in the model zip), or null when unknown.</summary>
    internal static string? Directory(object loadContext) => Resolved.Value.LoadDirectory?.GetValue(loadContext) as string;

    /// <summary>
    /// Registers a model loader in <paramref name="catalog"/> as ML.NET's <c>[LoadableClass]</c> attributes do:
    /// instances of <paramref name="instanceType"/> saved under <paramref name="signature"/> are created by the static
    /// <paramref name="create"/> <c>(IHostEnvironment, ModelLoadContext-as-object)</c>.
    /// </summary>
    internal static void AddModelLoader(ComponentCatalog catalog, Type instanceType, Type loaderType, string userName,
        string signature, MethodInfo create)
    {
        var m = Resolved.Value;
        object attribute = Need(m.LoadableClassAttributeCtor, Names.LoadableClassAttributeCtor).Invoke(
            [instanceType, loaderType, null, Need(m.SignatureLoadModel, Names.SignatureLoadModel), userName, new[] { signature }]);
        object info = Need(m.LoadableClassInfoCtor, Names.LoadableClassInfoCtor).Invoke([attribute, null, null, create, true]);
        Invoke(Need(m.AddClass, Names.AddClass), catalog, [info, new[] { signature }, true]);
    }

    private static object VersionInfo(string signature, uint version, string loaderAssembly)
        => Need(Resolved.Value.VersionInfoCtor, Names.VersionInfoCtor)
            .Invoke([signature, version, version, version, loaderAssembly, signature, null]);

    // ---------------------------------------------------------------- catalogs, schema shapes, environment

    /// <summary>
    /// The environment behind an ML.NET catalog object (<c>IInternalCatalog.Environment</c>), or null when
    /// <paramref name="catalog"/> is not an ML.NET catalog.
    /// </summary>
    /// <exception cref="NotSupportedException">The interface or its property is missing from the loaded ML.NET, or
    /// reading it failed.</exception>
    internal static IHostEnvironment? CatalogEnvironment(object catalog)
    {
        var m = Resolved.Value;
        var property = Need(m.CatalogEnvironment, Names.CatalogEnvironment);
        if (!property.DeclaringType!.IsInstanceOfType(catalog))
            return null;
        try
        {
            return property.GetValue(catalog) as IHostEnvironment ?? throw new NotSupportedException(
                $"{Names.CatalogEnvironment} of {catalog.GetType().FullName} returned null ({LoadedVersion}; Allauzen.ML was written for ML.NET {WrittenFor}).");
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw new NotSupportedException(
                $"Reading {Names.CatalogEnvironment} of {catalog.GetType().FullName} failed ({LoadedVersion}; Allauzen.ML was written for ML.NET {WrittenFor}).",
                e.InnerException);
        }
    }

    /// <summary>
    /// <c>new SchemaShape.Column(name, kind, itemType, isKey, annotations)</c> (the constructor is internal by design,
    /// dotnet/machinelearning#3243).
    /// </summary>
    internal static SchemaShape.Column NewSchemaShapeColumn(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType,
        bool isKey, SchemaShape annotations)
        => (SchemaShape.Column)Invoke(Need(Resolved.Value.SchemaShapeColumnCtor, Names.SchemaShapeColumnCtor),
            [name, kind, itemType, isKey, annotations])!;

    /// <summary>
    /// <c>GpuDeviceId</c> and <c>FallbackToCpu</c> of <paramref name="env"/> as ML.NET's internal
    /// <c>IHostEnvironmentInternal</c> exposes them (what <c>ApplyOnnxModel</c> reads); nulls when the environment
    /// does not implement it or the loaded ML.NET lacks it.
    /// </summary>
    internal static (int? GpuDeviceId, bool? FallbackToCpu) EnvironmentDevice(IHostEnvironment env)
    {
        var m = Resolved.Value;
        if (m.EnvironmentGpuDeviceId?.DeclaringType?.IsInstanceOfType(env) != true)
            return (null, null);
        return (m.EnvironmentGpuDeviceId.GetValue(env) as int?, m.EnvironmentFallbackToCpu?.GetValue(env) as bool?);
    }

    /// <summary>
    /// Mirrors the walk ML.NET's ONNX converter makes from <paramref name="end"/> back to <paramref name="start"/>:
    /// every view on the way must be one of ML.NET's ONNX-savable data transforms (<c>ITransformCanSaveOnnx</c>,
    /// walked through <c>IDataTransform.Source</c>), otherwise the converter stops there without an error. Returns
    /// the first view it cannot walk through, null when it reaches <paramref name="start"/>, and null as well when
    /// the loaded ML.NET lacks these interfaces (the check is then skipped).
    /// </summary>
    internal static IDataView? FindOnnxWalkBlocker(IDataView end, IDataView start)
    {
        var m = Resolved.Value;
        if (m.CanSaveOnnx is not { } canSaveOnnx || m.DataTransformSource is not { } source)
            return null;
        var view = end;
        for (int guard = 0; !ReferenceEquals(view, start); guard++)
        {
            if (guard > 10_000 || !canSaveOnnx.IsInstanceOfType(view) || !source.DeclaringType!.IsInstanceOfType(view))
                return view;
            if (source.GetValue(view) is not IDataView next)
                return view;
            view = next;
        }
        return null;
    }

    // ---------------------------------------------------------------- invocation

    private static object? Invoke(MethodBase method, object? target, object?[]? args)
    {
        try
        {
            return method is ConstructorInfo ctor ? ctor.Invoke(args) : method.Invoke(target, args);
        }
        catch (TargetInvocationException tie) when (tie.InnerException is not null)
        {
            ExceptionDispatchInfo.Capture(tie.InnerException).Throw();
            throw;
        }
    }

    private static object? Invoke(MethodBase method, object?[] args) => Invoke(method, null, args);

    // ---------------------------------------------------------------- resolution

    /// <summary>The readable names of the members, as the self-test and the errors print them.</summary>
    private static class Names
    {
        public const string VersionInfoCtor = "Microsoft.ML.VersionInfo..ctor(String, UInt32, UInt32, UInt32, String, String, String)";
        public const string SaveCheckAtModel = "Microsoft.ML.ModelSaveContext.CheckAtModel()";
        public const string SaveSetVersionInfo = "Microsoft.ML.ModelSaveContext.SetVersionInfo(VersionInfo)";
        public const string SaveWriter = "Microsoft.ML.ModelSaveContext.Writer (BinaryWriter field)";
        public const string LoadCheckAtModel = "Microsoft.ML.ModelLoadContext.CheckAtModel()";
        public const string LoadCheckVersionInfo = "Microsoft.ML.ModelLoadContext.CheckVersionInfo(VersionInfo)";
        public const string LoadReader = "Microsoft.ML.ModelLoadContext.Reader (BinaryReader field)";
        public const string LoadDirectory = "Microsoft.ML.ModelLoadContext.Directory (String field)";
        public const string LoadableClassAttributeCtor = "Microsoft.ML.LoadableClassAttribute..ctor(Type, Type, Type, Type, String, String[])";
        public const string LoadableClassInfoCtor = "Microsoft.ML.Runtime.ComponentCatalog+LoadableClassInfo..ctor(LoadableClassAttributeBase, MethodInfo, ConstructorInfo, MethodInfo, Boolean)";
        public const string AddClass = "Microsoft.ML.Runtime.ComponentCatalog.AddClass(LoadableClassInfo, String[], Boolean)";
        public const string SignatureLoadModel = "Microsoft.ML.SignatureLoadModel (delegate type)";
        public const string CatalogEnvironment = "Microsoft.ML.Data.IInternalCatalog.Environment";
        public const string SchemaShapeColumnCtor = "Microsoft.ML.SchemaShape+Column..ctor(String, VectorKind, DataViewType, Boolean, SchemaShape)";
        public const string EnvironmentGpuDeviceId = "Microsoft.ML.Runtime.IHostEnvironmentInternal.GpuDeviceId";
        public const string EnvironmentFallbackToCpu = "Microsoft.ML.Runtime.IHostEnvironmentInternal.FallbackToCpu";
        public const string DataTransformSource = "Microsoft.ML.Data.IDataTransform.Source";
        public const string CanSaveOnnx = "Microsoft.ML.Model.OnnxConverter.ITransformCanSaveOnnx (interface)";
    }

    private sealed class Members
    {
        public List<Member> All { get; } = [];

        public ConstructorInfo? VersionInfoCtor { get; set; }
        public MethodInfo? SaveCheckAtModel { get; set; }
        public MethodInfo? SaveSetVersionInfo { get; set; }
        public FieldInfo? SaveWriter { get; set; }
        public MethodInfo? LoadCheckAtModel { get; set; }
        public MethodInfo? LoadCheckVersionInfo { get; set; }
        public FieldInfo? LoadReader { get; set; }
        public FieldInfo? LoadDirectory { get; set; }
        public ConstructorInfo? LoadableClassAttributeCtor { get; set; }
        public ConstructorInfo? LoadableClassInfoCtor { get; set; }
        public MethodInfo? AddClass { get; set; }
        public Type? SignatureLoadModel { get; set; }
        public PropertyInfo? CatalogEnvironment { get; set; }
        public ConstructorInfo? SchemaShapeColumnCtor { get; set; }
        public PropertyInfo? EnvironmentGpuDeviceId { get; set; }
        public PropertyInfo? EnvironmentFallbackToCpu { get; set; }
        public PropertyInfo? DataTransformSource { get; set; }
        public Type? CanSaveOnnx { get; set; }

        public T? Add<T>(string name, Use use, T? value) where T : class
        {
            All.Add(new Member(name, use, value));
            return value;
        }
    }

    private static Members Resolve()
    {
        const BindingFlags Instance = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        var core = typeof(ModelSaveContext).Assembly;
        var data = typeof(MLContext).Assembly;

        ConstructorInfo? Ctor(Type? type, params Type?[] parameters) => type is null || parameters.Any(p => p is null)
            ? null : type.GetConstructor(Instance, null, parameters!, null);
        MethodInfo? Method(Type? type, string name, params Type?[] parameters) => type is null || parameters.Any(p => p is null)
            ? null : type.GetMethod(name, Instance, null, parameters!, null);
        FieldInfo? Field(Type? type, string name, Type fieldType)
            => type?.GetField(name, Instance) is { } f && f.FieldType == fieldType ? f : null;
        PropertyInfo? Property(Type? type, string name) => type?.GetProperty(name, Instance);

        var versionInfo = core.GetType("Microsoft.ML.VersionInfo", throwOnError: false);
        var loadContext = core.GetType("Microsoft.ML.ModelLoadContext", throwOnError: false);
        var attributeType = core.GetType("Microsoft.ML.LoadableClassAttribute", throwOnError: false);
        var attributeBase = core.GetType("Microsoft.ML.LoadableClassAttributeBase", throwOnError: false);
        var classInfo = typeof(ComponentCatalog).GetNestedType("LoadableClassInfo", BindingFlags.NonPublic | BindingFlags.Public);
        var internalCatalog = data.GetType("Microsoft.ML.Data.IInternalCatalog", throwOnError: false);
        var environmentInternal = core.GetType("Microsoft.ML.Runtime.IHostEnvironmentInternal", throwOnError: false);
        var dataTransform = data.GetType("Microsoft.ML.Data.IDataTransform", throwOnError: false);

        var m = new Members();
        m.VersionInfoCtor = m.Add(Names.VersionInfoCtor, Use.Persistence,
            Ctor(versionInfo, typeof(string), typeof(uint), typeof(uint), typeof(uint), typeof(string), typeof(string), typeof(string)));
        m.SaveCheckAtModel = m.Add(Names.SaveCheckAtModel, Use.Persistence, Method(typeof(ModelSaveContext), "CheckAtModel"));
        m.SaveSetVersionInfo = m.Add(Names.SaveSetVersionInfo, Use.Persistence, Method(typeof(ModelSaveContext), "SetVersionInfo", versionInfo));
        m.SaveWriter = m.Add(Names.SaveWriter, Use.Persistence, Field(typeof(ModelSaveContext), "Writer", typeof(BinaryWriter)));
        m.LoadCheckAtModel = m.Add(Names.LoadCheckAtModel, Use.Persistence, Method(loadContext, "CheckAtModel"));
        m.LoadCheckVersionInfo = m.Add(Names.LoadCheckVersionInfo, Use.Persistence, Method(loadContext, "CheckVersionInfo", versionInfo));
        m.LoadReader = m.Add(Names.LoadReader, Use.Persistence, Field(loadContext, "Reader", typeof(BinaryReader)));
        m.LoadDirectory = m.Add(Names.LoadDirectory, Use.Optional, Field(loadContext, "Directory", typeof(string)));
        m.LoadableClassAttributeCtor = m.Add(Names.LoadableClassAttributeCtor, Use.Persistence,
            Ctor(attributeType, typeof(Type), typeof(Type), typeof(Type), typeof(Type), typeof(string), typeof(string[])));
        m.LoadableClassInfoCtor = m.Add(Names.LoadableClassInfoCtor, Use.Persistence,
            Ctor(classInfo, attributeBase, typeof(MethodInfo), typeof(ConstructorInfo), typeof(MethodInfo), typeof(bool)));
        m.AddClass = m.Add(Names.AddClass, Use.Persistence, Method(typeof(ComponentCatalog), "AddClass", classInfo, typeof(string[]), typeof(bool)));
        m.SignatureLoadModel = m.Add(Names.SignatureLoadModel, Use.Persistence, core.GetType("Microsoft.ML.SignatureLoadModel", throwOnError: false));
        m.CatalogEnvironment = m.Add(Names.CatalogEnvironment, Use.Catalog,
            Property(internalCatalog, "Environment") is { } env && typeof(IHostEnvironment).IsAssignableFrom(env.PropertyType) ? env : null);
        m.SchemaShapeColumnCtor = m.Add(Names.SchemaShapeColumnCtor, Use.Schema,
            Ctor(typeof(SchemaShape.Column), typeof(string), typeof(SchemaShape.Column.VectorKind), typeof(DataViewType), typeof(bool), typeof(SchemaShape)));
        m.EnvironmentGpuDeviceId = m.Add(Names.EnvironmentGpuDeviceId, Use.Optional, Property(environmentInternal, "GpuDeviceId"));
        m.EnvironmentFallbackToCpu = m.Add(Names.EnvironmentFallbackToCpu, Use.Optional, Property(environmentInternal, "FallbackToCpu"));
        m.DataTransformSource = m.Add(Names.DataTransformSource, Use.Optional, Property(dataTransform, "Source"));
        m.CanSaveOnnx = m.Add(Names.CanSaveOnnx, Use.Optional, data.GetType("Microsoft.ML.Model.OnnxConverter.ITransformCanSaveOnnx", throwOnError: false));
        return m;
    }
}
