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

/// <summary>Optimizers available to Allauzen trainers.</summary>
public enum OptimizerKind
{
    /// <summary>Stochastic gradient descent with optional momentum (<see cref="TorchTrainerOptions.Momentum"/>).</summary>
    Sgd,

    /// <summary>Adam (Kingma and Ba); weight decay is added to the gradient (L2).</summary>
    Adam,

    /// <summary>AdamW (Loshchilov and Hutter): decoupled weight decay.</summary>
    AdamW,
}

/// <summary>Learning-rate schedules, applied per epoch.</summary>
public enum LearningRateSchedule
{
    /// <summary>The learning rate stays constant.</summary>
    Constant,

    /// <summary>Cosine annealing from the learning rate to 0 over the epochs.</summary>
    Cosine,

    /// <summary>Multiplied by <see cref="TorchTrainerOptions.StepGamma"/> every <see cref="TorchTrainerOptions.StepSize"/> epochs.</summary>
    Step,
}

/// <summary>How training data is read.</summary>
public enum DataCaching
{
    /// <summary>In memory when the feature matrix is under <see cref="TorchTrainerOptions.MaxInMemoryBytes"/>, streamed otherwise.</summary>
    Auto,

    /// <summary>Always materialise the feature matrix once (fastest; shuffled with a permutation each epoch).</summary>
    InMemory,

    /// <summary>Always stream with a row cursor (bounded memory; shuffled through the view or a shuffle pool).</summary>
    Streaming,
}

/// <summary>What to do with a training row that has a NaN/infinite feature or a missing label.</summary>
public enum InvalidRowPolicy
{
    /// <summary>Throw an exception that names the column and the row index.</summary>
    Throw,

    /// <summary>Skip the row and log how many rows were skipped.</summary>
    Skip,
}
