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
Console.WriteLine($"LoaderWeaver: {Path.GetFileName(assemblyPath)}: {markers.Count} ML.NET loaders ({string.Join(", ", markers.Select(m => m.ConstructorArguments[2].Value))}).");
return 0;
