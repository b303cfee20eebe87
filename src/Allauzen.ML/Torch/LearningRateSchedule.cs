namespace Allauzen.ML;

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
