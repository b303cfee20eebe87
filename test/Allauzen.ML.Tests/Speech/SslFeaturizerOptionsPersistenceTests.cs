using System.Text;
using System.Text.Json;
using Allauzen.ML.Persistence;
using Allauzen.ML.Speech;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Allauzen.ML.Tests.Speech;

/// <summary>
/// The featurizer's saved settings are <see cref="SslFeaturizerOptions"/> itself, serialised through its attributes.
/// The JSON below was written by the former SslFeaturizerOptionsSnapshot (2026-12-06, before it was removed): saved
/// featurizers hold exactly these bytes in their "options" entry, so they must load to the same settings and the
/// options must write the same bytes again.
/// </summary>
[TestClass]
public sealed class SslFeaturizerOptionsPersistenceTests
{
    private const string AllSet = """
        {"InputColumnName":"Wave","SampleRateColumnName":"Rate","SampleRate":8000,"MinSampleRate":2000,"MaxSampleRate":96000,"MaxAudioSeconds":123.5,"OutputColumnName":"Emb","FrameCountColumnName":"Frames","Pooling":"MeanStd","LayerPolicy":"WeightedSum","LayerIndex":0,"LayerWeights":[0.25,0.5,0.125],"InputTensorName":"in","LastHiddenStateTensorName":"last","HiddenStatesTensorName":"all","LengthsTensorName":"len","Normalize":true,"ModelSampleRate":22050,"InputScale":32768,"FrameStrideSamples":160,"ReceptiveFieldSamples":200,"ChunkSeconds":12.5,"ContextSeconds":2.25,"BatchUtterances":false,"MaxBatchSamples":64000,"ScoringBatchSize":7,"GpuDeviceId":1,"FallbackToCpu":true,"IntraOpNumThreads":3,"EmbedModel":false}
        """;

    private const string Defaults = """
        {"InputColumnName":"Audio","SampleRateColumnName":null,"SampleRate":16000,"MinSampleRate":1000,"MaxSampleRate":384000,"MaxAudioSeconds":600,"OutputColumnName":"Features","FrameCountColumnName":"FrameCount","Pooling":"Mean","LayerPolicy":"Last","LayerIndex":-1,"LayerWeights":null,"InputTensorName":null,"LastHiddenStateTensorName":null,"HiddenStatesTensorName":null,"LengthsTensorName":null,"Normalize":null,"ModelSampleRate":null,"InputScale":1,"FrameStrideSamples":null,"ReceptiveFieldSamples":null,"ChunkSeconds":30,"ContextSeconds":5,"BatchUtterances":null,"MaxBatchSamples":1920000,"ScoringBatchSize":16,"GpuDeviceId":null,"FallbackToCpu":false,"IntraOpNumThreads":0,"EmbedModel":true}
        """;

    private const string LayerMinus3 = """
        {"InputColumnName":"Audio","SampleRateColumnName":null,"SampleRate":16000,"MinSampleRate":1000,"MaxSampleRate":384000,"MaxAudioSeconds":600,"OutputColumnName":"Features","FrameCountColumnName":"FrameCount","Pooling":"Mean","LayerPolicy":"Layer","LayerIndex":-3,"LayerWeights":null,"InputTensorName":null,"LastHiddenStateTensorName":null,"HiddenStatesTensorName":null,"LengthsTensorName":null,"Normalize":null,"ModelSampleRate":null,"InputScale":1,"FrameStrideSamples":null,"ReceptiveFieldSamples":null,"ChunkSeconds":30,"ContextSeconds":5,"BatchUtterances":null,"MaxBatchSamples":1920000,"ScoringBatchSize":16,"GpuDeviceId":null,"FallbackToCpu":false,"IntraOpNumThreads":0,"EmbedModel":true}
        """;

    private static SslFeaturizerOptions Read(string json) => JsonSerializer.Deserialize<SslFeaturizerOptions>(json, PayloadFormat.JsonOptions)!;

    private static string Write(SslFeaturizerOptions o) => JsonSerializer.Serialize(o, PayloadFormat.JsonOptions);

    [TestMethod]
    public void PayloadsOfTheFormerSnapshotLoadAndAreWrittenAgainByteForByte()
    {
        foreach (var json in new[] { AllSet, Defaults, LayerMinus3 })
            Assert.AreEqual(json, Write(Read(json)));
    }

    [TestMethod]
    public void PayloadOfTheFormerSnapshotGivesEverySetting()
    {
        var o = Read(AllSet);
        Assert.AreEqual("Wave", o.InputColumnName);
        Assert.AreEqual("Rate", o.SampleRateColumnName);
        Assert.AreEqual(8000, o.SampleRate);
        Assert.AreEqual(2000, o.MinSampleRate);
        Assert.AreEqual(96000, o.MaxSampleRate);
        Assert.AreEqual(123.5, o.MaxAudioSeconds);
        Assert.AreEqual("Emb", o.OutputColumnName);
        Assert.AreEqual("Frames", o.FrameCountColumnName);
        Assert.AreEqual(SslPooling.MeanStd, o.Pooling);
        Assert.AreEqual(SslLayerPolicy.WeightedSum, o.Layers.Policy);
        CollectionAssert.AreEqual(new[] { 0.25f, 0.5f, 0.125f }, o.Layers.Weights.ToArray());
        Assert.AreEqual("in", o.InputTensorName);
        Assert.AreEqual("last", o.LastHiddenStateTensorName);
        Assert.AreEqual("all", o.HiddenStatesTensorName);
        Assert.AreEqual("len", o.LengthsTensorName);
        Assert.IsTrue(o.Normalize);
        Assert.AreEqual(22050, o.ModelSampleRate);
        Assert.AreEqual(32768f, o.InputScale);
        Assert.AreEqual(160, o.FrameStrideSamples);
        Assert.AreEqual(200, o.ReceptiveFieldSamples);
        Assert.AreEqual(12.5, o.ChunkSeconds);
        Assert.AreEqual(2.25, o.ContextSeconds);
        Assert.IsFalse(o.BatchUtterances);
        Assert.AreEqual(64000, o.MaxBatchSamples);
        Assert.AreEqual(7, o.ScoringBatchSize);
        Assert.AreEqual(1, o.GpuDeviceId);
        Assert.IsTrue(o.FallbackToCpu);
        Assert.AreEqual(3, o.IntraOpNumThreads);
        Assert.IsFalse(o.EmbedModel);
        Assert.AreEqual(SslLayerPolicy.Layer, Read(LayerMinus3).Layers.Policy);
        Assert.AreEqual(-3, Read(LayerMinus3).Layers.Index);
        Assert.AreSame(SslLayers.Last, Read(Defaults).Layers);
    }

    [TestMethod]
    public void DefaultsAreWrittenOnceAndTheCopyDropsModelSourceAndHooks()
    {
        Assert.AreEqual(Defaults, Write(new SslFeaturizerOptions()));
        var source = new SslFeaturizerOptions
        {
            ModelPath = "/x/model.onnx",
            ModelBytes = Encoding.ASCII.GetBytes("onnx"),
            Progress = new Progress<SslFeaturizerProgress>(),
            CancellationToken = new CancellationTokenSource().Token,
            Layers = SslLayers.Layer(2),
            ChunkSeconds = 0,
        };
        var copy = source.PersistedCopy();
        Assert.IsNull(copy.ModelPath);
        Assert.IsNull(copy.ModelBytes);
        Assert.IsNull(copy.Progress);
        Assert.IsFalse(copy.CancellationToken.CanBeCanceled);
        Assert.AreEqual(2, copy.Layers.Index);
        Assert.AreEqual(0, copy.ChunkSeconds);
        Assert.AreEqual(Write(source), Write(copy));
    }
}
