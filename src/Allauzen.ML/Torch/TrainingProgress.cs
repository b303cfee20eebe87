namespace Allauzen.ML;

/// <summary>Progress of a training run, reported once per epoch through <see cref="TorchTrainerOptions.Progress"/>.</summary>
/// <param name="Epoch">The epoch just finished (1-based).</param>
/// <param name="Epochs">The number of epochs planned.</param>
/// <param name="TrainLoss">Mean training loss over the epoch.</param>
/// <param name="TrainAccuracy">Training accuracy over the epoch (measured on the fly, in train mode).</param>
/// <param name="ValidationLoss">Mean validation loss, when validation data is present.</param>
/// <param name="ValidationAccuracy">Validation accuracy, when validation data is present.</param>
/// <param name="LearningRate">Learning rate used during the epoch.</param>
/// <param name="EpochTime">Wall time of the epoch (training and validation).</param>
/// <param name="Diagnostics">Component-specific figures (for example per-layer cosines), possibly empty.</param>
public sealed record TrainingProgress(
    int Epoch,
    int Epochs,
    double TrainLoss,
    double TrainAccuracy,
    double? ValidationLoss,
    double? ValidationAccuracy,
    double LearningRate,
    TimeSpan EpochTime,
    IReadOnlyDictionary<string, double> Diagnostics);
