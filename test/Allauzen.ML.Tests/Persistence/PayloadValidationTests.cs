using System.Diagnostics;
using System.Text.Json.Nodes;
using Allauzen.ML.Smoothing;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Persistence;

/// <summary>
/// Issue #14, "one validation path for loading": a payload signed again after tampering (so the checksum passes) is
/// refused by its loader with an <see cref="InvalidDataException"/> naming the file, the entry and the field, before
/// anything is sized or built from the tampered value.
/// </summary>
[TestClass]
public sealed class PayloadValidationTests
{
    private const string Source = "tampered.bin";

    private static InvalidDataException Refused(RawPayload payload, params string[] named)
    {
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => TinyModels.Load(payload.ToBytes(), Source));
        StringAssert.Contains(ex.Message, Source);
        foreach (var n in named)
            StringAssert.Contains(ex.Message, n);
        return ex;
    }

    private static RawPayload Raw(string kind) => TinyModels.Get(kind).Raw();

    [TestMethod]
    public void EveryKindLoadsBackAndScoresBitIdentically()
    {
        foreach (var m in TinyModels.All)
        {
            var loaded = TinyModels.Load(m.Payload, m.Kind);
            Assert.AreEqual(ScoreSnapshot.Of(m.Transformer, m.Input), ScoreSnapshot.Of(loaded, m.Input), m.Kind);
            (loaded as IDisposable)?.Dispose();
        }
    }

    [TestMethod]
    public void MlpHugeArchitectureIsRefusedBeforeTheNetworkIsBuilt()
    {
        var payload = Raw("Mlp").EditJson("architecture", a =>
        {
            a["InputSize"] = 20000;
            a["HiddenSizes"] = new JsonArray(20000);
        });
        long managed = GC.GetTotalAllocatedBytes(precise: true);
        long workingSet = Process.GetCurrentProcess().WorkingSet64;
        var clock = Stopwatch.StartNew();
        var ex = Refused(payload, "_layers.fc0.weight", "[20000, 20000]");
        clock.Stop();
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - managed;
        long grown = Process.GetCurrentProcess().WorkingSet64 - workingSet;
        Assert.IsLessThan(50L << 20, allocated, $"managed bytes allocated: {allocated}");
        Assert.IsLessThan(50L << 20, grown, $"working set growth: {grown}");
        Assert.IsLessThan(1000, clock.ElapsedMilliseconds, ex.Message);
    }

    [TestMethod]
    public void MlpInvalidHiddenSizesAreRefusedByTheOptionsRules()
    {
        Refused(Raw("Mlp").EditJson("architecture", a => a["HiddenSizes"] = null), "architecture", "HiddenSizes");
        Refused(Raw("Mlp").EditJson("architecture", a => a["HiddenSizes"] = new JsonArray(-16)), "architecture", "HiddenSizes", "-16");
        Refused(Raw("Mlp").EditJson("architecture", a => a["Dropout"] = 1.5), "architecture", "Dropout");
        Refused(Raw("Mlp").EditJson("architecture", a => a["Activation"] = "Swish"), "architecture");
        Refused(Raw("Mlp").EditJson("architecture", a => a["Classes"] = 0), "architecture", "Classes");
        var nullJson = Raw("Mlp");
        nullJson["architecture"].Data = "null"u8.ToArray();
        Refused(nullJson, "architecture", "null");
    }

    [TestMethod]
    public void ClassifierClassNamesMustMatchTheNetworkOutputs()
    {
        foreach (var kind in new[] { "Mlp", "Foton", "Lipschitz" })
        {
            foreach (var names in new[] { new[] { "a", "b" }, new[] { "a", "b", "c", "d", "e" } })
            {
                var payload = Raw(kind);
                payload.SetStrings("classes", names);
                Refused(payload, "classes", $"is {names.Length} but the network has 3 outputs");
            }
        }
        var typed = Raw("Mlp");
        typed["classType"].Data = "Single"u8.ToArray();
        Refused(typed, "classes", "is not a Single value");
    }

    [TestMethod]
    public void FotonArchitectureIsCheckedAgainstTheStoredWeights()
    {
        Refused(Raw("Foton").EditJson("architecture", a => a["HiddenSizes"] = new JsonArray(20000)), "fc0", "[20000, 8]");
        Refused(Raw("Foton").EditJson("architecture", a => a["HiddenSizes"] = new JsonArray(0)), "architecture", "HiddenSizes");
        Refused(Raw("Foton").EditJson("architecture", a =>
        {
            a["ConvChannels"] = new JsonArray(2);
            a["InputShape"] = new JsonArray(2, 2, 4);
        }), "architecture", "InputShape");
        Refused(Raw("Foton").EditJson("architecture", a =>
        {
            a["ConvChannels"] = new JsonArray(2);
            a["InputShape"] = new JsonArray(2, 3, 3);
        }), "architecture", "InputShape");
        var algorithm = Raw("Foton");
        algorithm["algorithm"].Data = "Magic"u8.ToArray();
        Refused(algorithm, "algorithm", "Magic");
    }

    [TestMethod]
    public void LipschitzLayerChainIsCheckedAgainstFeaturesAndTensors()
    {
        var features = Raw("Lipschitz");
        features.SetInt64s("featureCount", 9);
        Refused(features, "layers", "layer 0");
        var empty = Raw("Lipschitz");
        empty.SetInt64s("featureCount");
        Refused(empty, "featureCount", "holds 0 values");
        var layers = Raw("Lipschitz");
        var specs = layers.Json("layers").AsArray();
        var dense = specs.First(l => l!["Kind"]!.GetValue<string>() is "ResidualDense" or "Dense")!;
        dense["Dims"] = new JsonArray(20000, 20000);
        layers.SetJson("layers", specs);
        Refused(layers, "layers", "20000");
        var kind = Raw("Lipschitz");
        var s2 = kind.Json("layers").AsArray();
        s2[0]!["Kind"] = "Flatten";
        kind.SetJson("layers", s2);
        Refused(kind, "layers", "layer 0");
        Refused(Raw("Lipschitz").EditJson("info", i => i["RadiusRule"] = 7), "info", "RadiusRule");
        Refused(Raw("Lipschitz").EditJson("info", i => i["TrainingMin"] = "NaN"), "info", "training range");
    }

    [TestMethod]
    public void DiachronicSliceAndVocabularyCountsAreBoundedByTheStoredTensors()
    {
        var payload = Raw("DiachronicEmbeddings");
        payload.SetStrings("words", []);
        payload.SetInt64s("counts");
        payload["defined"].Data = [];
        payload.SetTensor("vectors", [], 20_000_000, 0, 4);
        long managed = GC.GetTotalAllocatedBytes(precise: true);
        Refused(payload, "vectors", "[20000000, 0, 4]");
        Assert.IsLessThan(50L << 20, GC.GetTotalAllocatedBytes(precise: true) - managed);

        Refused(Raw("DiachronicEmbeddings").EditJson("settings", s => s["Width"] = 0), "settings", "SliceWidth");
        Refused(Raw("DiachronicEmbeddings").EditJson("settings", s => s["Dimensions"] = 0), "settings", "Dimensions");
        Refused(Raw("DiachronicEmbeddings").EditJson("settings", s => s["Origin"] = long.MaxValue), "settings", "Origin");
        var words = Raw("DiachronicEmbeddings");
        var list = new ModelPayloadReaderView(words).Strings("words");
        list[1] = list[0];
        words.SetStrings("words", list);
        Refused(words, "words", "twice");
        var defined = Raw("DiachronicEmbeddings");
        defined["defined"].Data[0] = 7;
        Refused(defined, "defined");
    }

    [TestMethod]
    public void SmoothingSettingsAreCheckedWithTheOptionsRules()
    {
        foreach (var kind in new[] { "RandomizedSmoothing", "SmoothingSampler" })
        {
            Refused(Raw(kind).EditJson("settings", s => s["Alpha"] = -1), "settings", "Alpha");
            Refused(Raw(kind).EditJson("settings", s => s["Alpha"] = 1), "settings", "Alpha");
            // A tampered file cannot make the certificate meaningless: the options refuse alpha >= 1/2.
            Refused(Raw(kind).EditJson("settings", s => s["Alpha"] = 0.99), "settings", "Alpha");
            Refused(Raw(kind).EditJson("settings", s => s["EstimationSamples"] = 0), "settings", "EstimationSamples");
            Refused(Raw(kind).EditJson("settings", s => s["Sigma"] = "NaN"), "settings", "Sigma");
            Refused(Raw(kind).EditJson("settings", s => s["Sigma"] = 0), "settings", "Sigma");
            Refused(Raw(kind).EditJson("settings", s => s["BatchSize"] = 0), "settings", "BatchSize");
            Refused(Raw(kind).EditJson("settings", s => s["FeatureColumnName"] = ""), "settings", "FeatureColumnName");
            Refused(Raw(kind).EditJson("settings", s => s["LogitsLipschitz"] = 0.5), "settings", "LipschitzConstant");
        }
        // The maps must be those the options collect for the method.
        Refused(Raw("RandomizedSmoothing").EditJson("settings", s => s["Maps"] = new JsonArray(new JsonObject { ["Kind"] = "Softmax", ["T"] = 1 })),
            "settings", "Maps");
        Refused(Raw("SmoothingSampler").EditJson("settings", s => s["Maps"] = new JsonArray(new JsonObject { ["Kind"] = "Softmax", ["T"] = -2 })),
            "settings", "LvmMaps");
        Refused(Raw("SmoothingStatisticsCertifier").EditJson("options", o => o["Alpha"] = 2), "options", "Alpha");
        Refused(Raw("SmoothingStatisticsCertifier").EditJson("options", o => o["Sigma"] = -25), "options", "Sigma");

        // Settings the options accept load, and the transformer reports them: the checksum is no signature.
        var accepted = (RandomizedSmoothingTransformer)TinyModels.Load(Raw("RandomizedSmoothing").EditJson("settings", s =>
        {
            s["Alpha"] = 0.49;
            s["Sigma"] = 25;
        }).ToBytes());
        Assert.AreEqual(0.49, accepted.Alpha);
        Assert.AreEqual(25, accepted.Sigma);
        accepted.Dispose();
    }

    [TestMethod]
    public void SmoothingBaseModelIsCheckedBeforeItIsLoaded()
    {
        var features = Raw("RandomizedSmoothing");
        features.SetInt64s("base.features");
        Refused(features, "base.features", "holds 0 values");
        var mismatch = Raw("RandomizedSmoothing");
        mismatch.SetInt64s("base.features", 5);
        Refused(mismatch, "base.features", "takes 8 features");
        var notClassifier = Raw("RandomizedSmoothing");
        notClassifier["base.signature"].Data = "ALZ-RSCT"u8.ToArray();
        Refused(notClassifier, "base.signature", "ALZ-RSCT");
        var swapped = Raw("RandomizedSmoothing");
        swapped["base.payload"].Data = TinyModels.Get("Foton").Payload;
        var ex = Assert.ThrowsExactly<InvalidDataException>(() => TinyModels.Load(swapped.ToBytes(), Source));
        StringAssert.Contains(ex.Message, "(base model)");
        var kind = Raw("RandomizedSmoothing");
        kind["base.kind"].Data = "pickle"u8.ToArray();
        Refused(kind, "base.kind", "pickle");
        var inner = Raw("RandomizedSmoothing");
        var mlp = TinyModels.Get("Mlp").Raw();
        mlp.SetStrings("classes", ["x"]);
        inner["base.payload"].Data = mlp.ToBytes();
        ex = Assert.ThrowsExactly<InvalidDataException>(() => TinyModels.Load(inner.ToBytes(), Source));
        StringAssert.Contains(ex.Message, "(base model)");
        StringAssert.Contains(ex.Message, "classes");
    }

    /// <summary>Reads entries of a raw payload through the real reader.</summary>
    private sealed class ModelPayloadReaderView(RawPayload payload)
    {
        private readonly Allauzen.ML.Persistence.ModelPayloadReader _reader = new(payload.ToBytes(), "view");

        public string[] Strings(string name) => _reader.ReadStrings(name);
    }
}
