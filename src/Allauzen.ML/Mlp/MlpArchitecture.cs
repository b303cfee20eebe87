namespace Allauzen.ML.Mlp;

/// <summary>The architecture of a trained MLP: what is needed to rebuild the network (persisted as JSON).</summary>
internal sealed record MlpArchitecture(int InputSize, int[] HiddenSizes, int Classes, MlpActivation Activation, double Dropout);
