// LoaderWeaver: a build step of Allauzen.ML (not shipped, never run by users).
//
// Why: ML.NET loads a model part by reading the loader assembly name stored with it, calling
// Assembly.Load on it and ComponentCatalog.RegisterAssembly, which registers every assembly-level
// [Microsoft.ML.LoadableClass] attribute. That attribute, the SignatureLoadModel delegate and the
// ModelLoadContext type are internal to Microsoft.ML.Core, so C# cannot write them. This tool writes
// them into the compiled Allauzen.ML.dll instead:
//   for every [assembly: Allauzen.ML.Persistence.AllauzenLoader(typeof(T), "SIGNATURE", "Name")]
//   it adds a static class Allauzen.ML.Persistence.MlNetLoaders/<Name> with
//       static T Create(IHostEnvironment env, ModelLoadContext ctx) => (T)NativeBridge.CreateFromModel(env, ctx);
//   and an assembly attribute
//       [LoadableClass(typeof(T), typeof(MlNetLoaders.<Name>), null, typeof(SignatureLoadModel), "Name", "SIGNATURE")].
// It also makes every class marked [Allauzen.ML.Persistence.MlNetDataTransform] (the scored data view) an
// ML.NET IDataTransform + ITransformCanSaveOnnx (internal to Microsoft.ML.Data), forwarding Source,
// CanSaveOnnx and SaveAsOnnx to the class's MlNetSource / MlNetCanSaveOnnx / MlNetSaveAsOnnx: ML.NET's
// ConvertToOnnx then asks the Allauzen view whether it can export and gets an error naming ExportToOnnx,
// instead of silently starting the graph after it.
// The runtime accepts the internal types because Allauzen.ML declares
// [assembly: IgnoresAccessChecksTo("Microsoft.ML.Core")].
//
// usage: LoaderWeaver <assembly.dll> <reference-list-file>
//   reference-list-file: one referenced assembly path per line (MSBuild's @(ReferencePath)).
// Idempotent: an assembly that already has MlNetLoaders is left as it is. Writes through a temporary file.
using Mono.Cecil;
using Mono.Cecil.Cil;

const string MarkerAttribute = "Allauzen.ML.Persistence.AllauzenLoaderAttribute";
const string LoadersNamespace = "Allauzen.ML.Persistence";
const string LoadersType = "MlNetLoaders";
const string BridgeType = "Allauzen.ML.Persistence.NativeBridge";
const string BridgeMethod = "CreateFromModel";
const string DataTransformAttribute = "Allauzen.ML.Persistence.MlNetDataTransformAttribute";

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: LoaderWeaver <assembly.dll> <reference-list-file>");
    return 2;
}
string assemblyPath = Path.GetFullPath(args[0]);
string pdbPath = Path.ChangeExtension(assemblyPath, ".pdb");

var resolver = new DefaultAssemblyResolver();
foreach (var dir in File.ReadAllLines(args[1]).Where(l => l.Length > 0).Select(Path.GetDirectoryName).Distinct())
    resolver.AddSearchDirectory(dir!);

bool hasSymbols = File.Exists(pdbPath);
using var assemblyBytes = new MemoryStream(File.ReadAllBytes(assemblyPath));
using var pdbBytes = hasSymbols ? new MemoryStream(File.ReadAllBytes(pdbPath)) : null;
using var module = ModuleDefinition.ReadModule(assemblyBytes, new ReaderParameters
{
    AssemblyResolver = resolver,
    ReadSymbols = hasSymbols,
    SymbolStream = pdbBytes,
    SymbolReaderProvider = hasSymbols ? new PortablePdbReaderProvider() : null,
});

if (module.GetType(LoadersNamespace, LoadersType) is not null)
{
    Console.WriteLine($"LoaderWeaver: {Path.GetFileName(assemblyPath)} already has ML.NET loaders.");
    return 0;
}

var markers = module.Assembly.CustomAttributes.Where(a => a.AttributeType.FullName == MarkerAttribute).ToList();
if (markers.Count == 0)
{
    Console.Error.WriteLine($"LoaderWeaver: error: {assemblyPath} declares no [assembly: AllauzenLoader(...)].");
    return 1;
}

var coreReference = module.AssemblyReferences.FirstOrDefault(r => r.Name == "Microsoft.ML.Core");
if (coreReference is null)
{
    Console.Error.WriteLine($"LoaderWeaver: error: {assemblyPath} does not reference Microsoft.ML.Core.");
    return 1;
}
var core = resolver.Resolve(coreReference).MainModule;
TypeDefinition Require(string fullName) => core.GetType(fullName)
    ?? throw new InvalidOperationException($"Microsoft.ML.Core {core.Assembly.Name.Version} has no type {fullName}: the ML.NET internals the loaders rely on changed.");

var loadableClass = Require("Microsoft.ML.LoadableClassAttribute");
var signatureLoadModel = module.ImportReference(Require("Microsoft.ML.SignatureLoadModel"));
var modelLoadContext = module.ImportReference(Require("Microsoft.ML.ModelLoadContext"));
var hostEnvironment = module.ImportReference(Require("Microsoft.ML.Runtime.IHostEnvironment"));
// LoadableClassAttribute(Type instType, Type loaderType, Type argType, Type sigType, string userName, params string[] loadNames)
var attributeCtor = loadableClass.Methods.Single(m => m.IsConstructor && !m.IsStatic
    && m.Parameters.Select(p => p.ParameterType.FullName).SequenceEqual(
        ["System.Type", "System.Type", "System.Type", "System.Type", "System.String", "System.String[]"]));
var attributeCtorRef = module.ImportReference(attributeCtor);
var typeType = attributeCtorRef.Parameters[0].ParameterType;
var stringArrayType = attributeCtorRef.Parameters[5].ParameterType;

var bridge = module.GetType(BridgeType) ?? throw new InvalidOperationException($"{BridgeType} not found.");
var create = bridge.Methods.Single(m => m.Name == BridgeMethod && m.IsStatic && m.Parameters.Count == 2);

var container = new TypeDefinition(LoadersNamespace, LoadersType,
    TypeAttributes.NotPublic | TypeAttributes.Abstract | TypeAttributes.Sealed | TypeAttributes.BeforeFieldInit,
    module.TypeSystem.Object);
module.Types.Add(container);

foreach (var marker in markers)
{
    var transformer = (TypeReference)marker.ConstructorArguments[0].Value;
    string signature = (string)marker.ConstructorArguments[1].Value;
    string componentName = (string)marker.ConstructorArguments[2].Value;

    var loader = new TypeDefinition("", componentName,
        TypeAttributes.NestedAssembly | TypeAttributes.Abstract | TypeAttributes.Sealed | TypeAttributes.BeforeFieldInit,
        module.TypeSystem.Object);
    container.NestedTypes.Add(loader);

    var method = new MethodDefinition("Create", MethodAttributes.Assembly | MethodAttributes.Static | MethodAttributes.HideBySig, transformer);
    method.Parameters.Add(new ParameterDefinition("env", ParameterAttributes.None, hostEnvironment));
    method.Parameters.Add(new ParameterDefinition("ctx", ParameterAttributes.None, modelLoadContext));
    var il = method.Body.GetILProcessor();
    il.Emit(OpCodes.Ldarg_0);
    il.Emit(OpCodes.Ldarg_1);
    il.Emit(OpCodes.Call, create);
    il.Emit(OpCodes.Castclass, transformer);
    il.Emit(OpCodes.Ret);
    loader.Methods.Add(method);

    var attribute = new CustomAttribute(attributeCtorRef);
    attribute.ConstructorArguments.Add(new CustomAttributeArgument(typeType, transformer));
    attribute.ConstructorArguments.Add(new CustomAttributeArgument(typeType, loader));
    attribute.ConstructorArguments.Add(new CustomAttributeArgument(typeType, null));
    attribute.ConstructorArguments.Add(new CustomAttributeArgument(typeType, signatureLoadModel));
    attribute.ConstructorArguments.Add(new CustomAttributeArgument(module.TypeSystem.String, componentName));
    attribute.ConstructorArguments.Add(new CustomAttributeArgument(stringArrayType,
        new[] { new CustomAttributeArgument(module.TypeSystem.String, signature) }));
    module.Assembly.CustomAttributes.Add(attribute);
}

// ---- ML.NET data transforms: [MlNetDataTransform] views become IDataTransform + ITransformCanSaveOnnx.
var dataReference = module.AssemblyReferences.FirstOrDefault(r => r.Name == "Microsoft.ML.Data");
var viewTypes = module.GetTypes().Where(t => t.CustomAttributes.Any(a => a.AttributeType.FullName == DataTransformAttribute)).ToList();
if (viewTypes.Count > 0)
{
    if (dataReference is null)
    {
        Console.Error.WriteLine($"LoaderWeaver: error: {assemblyPath} does not reference Microsoft.ML.Data.");
        return 1;
    }
    var data = resolver.Resolve(dataReference).MainModule;
    TypeDefinition RequireData(string fullName) => data.GetType(fullName)
        ?? throw new InvalidOperationException($"Microsoft.ML.Data {data.Assembly.Name.Version} has no type {fullName}: the ML.NET internals the ONNX guard relies on changed.");
    var dataTransform = RequireData("Microsoft.ML.Data.IDataTransform");
    var canSaveOnnx = RequireData("Microsoft.ML.Model.OnnxConverter.ICanSaveOnnx");
    var saveAsOnnx = RequireData("Microsoft.ML.Model.OnnxConverter.ISaveAsOnnx");
    var transformCanSaveOnnx = RequireData("Microsoft.ML.Model.OnnxConverter.ITransformCanSaveOnnx");
    var onnxContext = module.ImportReference(RequireData("Microsoft.ML.Model.OnnxConverter.OnnxContext"));
    var getSource = module.ImportReference(dataTransform.Methods.Single(m => m.Name == "get_Source"));
    var canSave = module.ImportReference(canSaveOnnx.Methods.Single(m => m.Name == "CanSaveOnnx"));
    var saveAs = module.ImportReference(saveAsOnnx.Methods.Single(m => m.Name == "SaveAsOnnx"));

    foreach (var view in viewTypes)
    {
        MethodDefinition Target(string name, int parameters) => view.Methods.SingleOrDefault(m => m.Name == name && !m.IsStatic && m.Parameters.Count == parameters)
            ?? throw new InvalidOperationException($"{view.FullName} is marked [MlNetDataTransform] but has no instance method {name} with {parameters} parameter(s).");
        var source = Target("get_MlNetSource", 0);
        var canSaveTarget = Target("MlNetCanSaveOnnx", 1);
        var saveAsTarget = Target("MlNetSaveAsOnnx", 1);

        foreach (var face in new[] { dataTransform, canSaveOnnx, saveAsOnnx, transformCanSaveOnnx })
            view.Interfaces.Add(new InterfaceImplementation(module.ImportReference(face)));

        // Explicit implementations: private final virtual newslot, each forwarding to the C# member.
        MethodDefinition Forward(string name, TypeReference returnType, MethodReference overrides, MethodDefinition target, TypeReference? parameter)
        {
            var method = new MethodDefinition(name,
                MethodAttributes.Private | MethodAttributes.Final | MethodAttributes.Virtual | MethodAttributes.NewSlot | MethodAttributes.HideBySig,
                returnType);
            if (parameter is not null)
                method.Parameters.Add(new ParameterDefinition("ctx", ParameterAttributes.None, parameter));
            method.Overrides.Add(overrides);
            var il = method.Body.GetILProcessor();
            il.Emit(OpCodes.Ldarg_0);
            if (parameter is not null)
                il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Call, target);
            il.Emit(OpCodes.Ret);
            view.Methods.Add(method);
            return method;
        }
        var getter = Forward("Microsoft.ML.Data.IDataTransform.get_Source", getSource.ReturnType, getSource, source, null);
        getter.IsSpecialName = true;
        var property = new PropertyDefinition("Microsoft.ML.Data.IDataTransform.Source", PropertyAttributes.None, getSource.ReturnType) { GetMethod = getter };
        view.Properties.Add(property);
        Forward("Microsoft.ML.Model.OnnxConverter.ICanSaveOnnx.CanSaveOnnx", module.TypeSystem.Boolean, canSave, canSaveTarget, onnxContext);
        Forward("Microsoft.ML.Model.OnnxConverter.ISaveAsOnnx.SaveAsOnnx", module.TypeSystem.Void, saveAs, saveAsTarget, onnxContext);
    }
}

string tmpAssembly = assemblyPath + ".weave.tmp";
string tmpPdb = pdbPath + ".weave.tmp";
using (var assemblyOut = File.Create(tmpAssembly))
using (var pdbOut = hasSymbols ? File.Create(tmpPdb) : null)
{
    module.Write(assemblyOut, new WriterParameters
    {
        WriteSymbols = hasSymbols,
        SymbolStream = pdbOut,
        SymbolWriterProvider = hasSymbols ? new PortablePdbWriterProvider() : null,
        DeterministicMvid = true,
    });
}
File.Move(tmpAssembly, assemblyPath, overwrite: true);
if (hasSymbols)
    File.Move(tmpPdb, pdbPath, overwrite: true);
Console.WriteLine($"LoaderWeaver: {Path.GetFileName(assemblyPath)}: {markers.Count} ML.NET loaders ({string.Join(", ", markers.Select(m => m.ConstructorArguments[2].Value))}), "
    + $"{viewTypes.Count} ML.NET data transform(s) ({string.Join(", ", viewTypes.Select(t => t.Name))}).");
return 0;
