namespace Allauzen.ML.Samples.Common;

/// <summary>The pipeline of the classifier samples: the text label to a key, the sample's steps, the predicted key back to its label.</summary>
internal static class ClassifierPipeline
{
    /// <summary>
    /// <c>MapValueToKey("Label")</c>, then the estimators <paramref name="steps"/> builds, in order, then
    /// <c>MapKeyToValue("PredictedLabel")</c>. The steps are built in between on purpose: every ML.NET component draws its
    /// seed from the <c>MLContext</c> when it is created, so creating them in pipeline order keeps the seeds (and the
    /// results) of the written-out <c>MapValueToKey(...).Append(...).Append(...)</c> chain.
    /// </summary>
    public static IEstimator<ITransformer> Create(MLContext ml, Func<IEnumerable<IEstimator<ITransformer>>> steps)
    {
        var chain = new EstimatorChain<ITransformer>().Append<ITransformer>(ml.Transforms.Conversion.MapValueToKey("Label"));
        foreach (var step in steps())
            chain = chain.Append(step);
        return chain.Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    }
}
