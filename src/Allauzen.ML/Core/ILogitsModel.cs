using TorchSharp;

namespace Allauzen.ML.Core;

/// <summary>
/// Implemented by Allauzen network classifiers that can return raw logits for a batch of feature rows on
/// their device (used by components that wrap a classifier, e.g. the randomized-smoothing certifier).
/// </summary>
internal interface ILogitsModel
{
    /// <summary>Length of the feature vector.</summary>
    int FeatureCount { get; }

    /// <summary>Number of classes.</summary>
    int NumberOfClasses { get; }

    /// <summary>Class names in key order.</summary>
    LabelNames Classes { get; }

    /// <summary>The device the network's parameters live on.</summary>
    torch.Device Device { get; }

    /// <summary>Logits [N, K] for features [N, d] already on <see cref="Device"/>; callers hold no_grad.</summary>
    torch.Tensor ForwardLogits(torch.Tensor features);

    /// <summary>
    /// The network as a module whose forward pass equals <see cref="ForwardLogits"/>, for callers that exploit its
    /// structure (e.g. a leading linear layer); null (the default) when the model does not expose it.
    /// </summary>
    torch.nn.Module? Network => null;

    /// <summary>
    /// A certified upper bound on the L2 Lipschitz constant of the map features → logits (a product of per-layer
    /// upper bounds, never an estimate), or null (the default) when the model has none.
    /// </summary>
    double? LipschitzUpperBound() => null;
}
