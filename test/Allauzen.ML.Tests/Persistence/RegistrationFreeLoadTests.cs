using System.Reflection;
using Allauzen.ML.Mlp;
using Allauzen.ML.Persistence;
using Allauzen.ML.Tests.TestSupport;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>
/// <c>ml.Model.Load</c> of a model with Allauzen parts works in a fresh <see cref="MLContext"/> with no
/// registration call: ML.NET registers the loader assembly named in the model (Allauzen.ML), whose
/// build-time loader metadata (build/LoaderWeaver) declares every component.
/// </summary>
[TestClass]
public sealed class RegistrationFreeLoadTests
{
    [TestMethod]
    public void MlpPipeline_SavedThroughModelSave_LoadsInAFreshContextWithoutUseAllauzen_ScoresIdentically()
    {
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromEnumerable(TestData.Blobs(120));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [8], Epochs = 2, BatchSize = 16 }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(raw);
        string path = Path.Combine(Path.GetTempPath(), $"allauzen-noreg-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, raw.Schema, path);

            var fresh = new MLContext(seed: 2); // no UseAllauzen, no catalog method called on it
            var loaded = fresh.Model.Load(path, out var inputSchema);
            Assert.IsNotNull(inputSchema.GetColumnOrNull("Features"));
            var freshRaw = fresh.Data.LoadFromEnumerable(TestData.Blobs(120));
            double[][] before = TestData.ReadColumn(model.Transform(raw), "Score");
            double[][] after = TestData.ReadColumn(loaded.Transform(freshRaw), "Score");
            // Same process, same weights: bit-identical.
            Assert.AreEqual(0.0, TestData.MaxAbsDiff(before, after));
            CollectionAssert.AreEqual(
                model.Transform(raw).GetColumn<string>("PredictedLabel").ToArray(),
                loaded.Transform(freshRaw).GetColumn<string>("PredictedLabel").ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void UseAllauzen_BeforeOrAfterAnAutomaticRegistration_IsHarmless()
    {
        var ml = new MLContext(seed: 1);
        var raw = ml.Data.LoadFromEnumerable(TestData.Blobs(60));
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.Mlp(new MlpOptions { HiddenSizes = [4], Epochs = 1 }))
            .Fit(raw);
        using var stream = new MemoryStream();
        ml.Model.Save(model, raw.Schema, stream);

        // Trained in ml (its catalog methods registered the loaders), loaded back in ml, twice.
        stream.Position = 0;
        ml.Model.Load(stream, out _);
        ml.UseAllauzen();
        stream.Position = 0;
        ml.Model.Load(stream, out _);

        // Loaded first (ML.NET registers the assembly), then UseAllauzen, then loaded again.
        var other = new MLContext(seed: 3);
        stream.Position = 0;
        other.Model.Load(stream, out _);
        other.UseAllauzen();
        stream.Position = 0;
        Assert.IsNotNull(other.Model.Load(stream, out _));
    }

    [TestMethod]
    public void EveryDeclaredComponent_HasWovenMlNetLoaderMetadata()
    {
        var assembly = typeof(AllauzenLoaders).Assembly;
        var declared = assembly.GetCustomAttributes<AllauzenLoaderAttribute>().ToArray();
        Assert.IsGreaterThanOrEqualTo(8, declared.Length, "built-in components");
        var loadable = assembly.GetCustomAttributesData()
            .Where(a => a.AttributeType.FullName == "Microsoft.ML.LoadableClassAttribute")
            .ToArray();
        foreach (var component in declared)
        {
            var match = loadable.SingleOrDefault(a => a.ConstructorArguments[0].Value as Type == component.TransformerType);
            Assert.IsNotNull(match, $"no LoadableClass metadata for {component.TransformerType.Name}: was Allauzen.ML built without build/LoaderWeaver?");
            var names = ((IEnumerable<CustomAttributeTypedArgument>)match.ConstructorArguments[5].Value!).Select(v => (string)v.Value!).ToArray();
            CollectionAssert.AreEqual(new[] { component.Signature }, names);
            Assert.AreEqual("SignatureLoadModel", ((Type)match.ConstructorArguments[3].Value!).Name);
        }
        CollectionAssert.AreEquivalent(declared.Select(d => d.Signature).ToArray(), NativeBridge.WovenSignatures.ToArray());
    }
}
