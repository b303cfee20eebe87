namespace Allauzen.ML.Samples.Common;

/// <summary>The pipeline of the classifier samples: the text label to a key, the sample's steps, the predicted key back to its label.</summary>
internal static class ClassifierPipeline
{
    /// <summary>
    /// <c>MapValueToKey("Label")</c>, then <paramref name="steps"/> in order, then <c>MapKeyToValue("PredictedLabel")</c>, as one flat
    /// chain (the chain the <c>Append</c> calls written out give).
    /// </summary>
    public static IEstimator<ITransformer> Create(MLContext ml, params IEstimator<ITransformer>[] steps)
    {
        var chain = new EstimatorChain<ITransformer>().Append<ITransformer>(ml.Transforms.Conversion.MapValueToKey("Label"));
        foreach (var step in steps)
            chain = chain.Append(step);
        return chain.Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    }
}
