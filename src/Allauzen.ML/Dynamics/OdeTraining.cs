namespace Allauzen.ML.Dynamics;

/// <summary>How the Fehlberg error rate is computed during training (the paper's two conditions).</summary>
public enum OdeTraining
{
    /// <summary>The solver is a black box: r = |A₁ − A₂|₁ (Heun vs RK3), as at inference.</summary>
    BlackBox,

    /// <summary>"Fehlberg training": r = |x̃_{i+1} − A₂|₁ against the target, so the real error drives the step size.</summary>
    Fehlberg,
}
