namespace Allauzen.ML.Quantization;

/// <summary>What is needed to rebuild a trained quantizer network (persisted as JSON).</summary>
/// <param name="InputSize">Feature vector length.</param>
/// <param name="HiddenSizes">Trunk widths.</param>
/// <param name="Points">Number n of points.</param>
/// <param name="LabelSize">Label dimension d.</param>
/// <param name="Sorted">Sorted parameterisation (d = 1 only).</param>
internal sealed record QuantizerArchitecture(int InputSize, int[] HiddenSizes, int Points, int LabelSize, bool Sorted);
