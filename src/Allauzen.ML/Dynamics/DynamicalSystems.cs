namespace Allauzen.ML.Dynamics;

/// <summary>
/// Reference dynamical systems and trajectory data sets for the <see cref="NeuralOdeEstimator"/>: the
/// Lorenz'63 system integrated in float64 with an adaptive Dormand–Prince 5(4) scheme (relative tolerance
/// 1e-10, absolute 1e-12), and a helper that turns any sampled trajectory into (State, NextState) rows.
/// </summary>
public static class DynamicalSystems
{
    /// <summary>Name of the state column of the data sets built here.</summary>
    public const string StateColumnName = "State";

    /// <summary>Name of the next-state column of the data sets built here.</summary>
    public const string NextStateColumnName = "NextState";

    /// <summary>
    /// The Lorenz'63 vector field: ẋ₁ = σ(x₂ − x₁), ẋ₂ = x₁(ρ − x₃) − x₂, ẋ₃ = x₁x₂ − βx₃. (The DLDE 2022 paper prints
    /// −x₁ at the end of the second equation; that is a typo, its code and Lorenz's paper have −x₂.)
    /// </summary>
    /// <param name="x">The state (length 3).</param>
    /// <param name="dx">Receives ẋ (length 3).</param>
    /// <param name="sigma">σ.</param>
    /// <param name="rho">ρ.</param>
    /// <param name="beta">β.</param>
    public static void Lorenz63Field(ReadOnlySpan<double> x, Span<double> dx, double sigma = 10, double rho = 28, double beta = 8.0 / 3)
    {
        if (x.Length != 3 || dx.Length != 3)
            throw new ArgumentException($"The Lorenz'63 state has 3 coordinates (got {x.Length} and {dx.Length}).");
        dx[0] = sigma * (x[1] - x[0]);
        dx[1] = x[0] * (rho - x[2]) - x[1];
        dx[2] = x[0] * x[1] - beta * x[2];
    }

    /// <summary>
    /// Integrates the Lorenz'63 system from <paramref name="state"/> for <paramref name="duration"/> time units
    /// (adaptive Dormand–Prince 5(4) in float64, relative tolerance 1e-10, absolute 1e-12) and returns the end state.
    /// </summary>
    /// <param name="state">The start state (length 3).</param>
    /// <param name="duration">The time to integrate over (positive, finite).</param>
    /// <param name="sigma">σ.</param>
    /// <param name="rho">ρ.</param>
    /// <param name="beta">β.</param>
    public static double[] Lorenz63Advance(ReadOnlySpan<double> state, double duration, double sigma = 10, double rho = 28, double beta = 8.0 / 3)
    {
        if (state.Length != 3)
            throw new ArgumentException($"The Lorenz'63 state has 3 coordinates (got {state.Length}).", nameof(state));
        CheckPositive(duration, nameof(duration));
        var x = state.ToArray();
        double h = duration;
        DormandPrince.Advance(Field(sigma, rho, beta), x, duration, 1e-10, 1e-12, ref h);
        return x;
    }

    /// <summary>
    /// A Lorenz'63 trajectory of <paramref name="points"/> + 1 states sampled every <paramref name="dt"/> time units.
    /// The start state is drawn from <paramref name="seed"/> in the box [−15, 15] × [−20, 20] × [5, 45], then the system
    /// runs for <paramref name="burnIn"/> time units so the trajectory starts on the attractor. Same arguments, same
    /// trajectory (bit for bit on a given platform).
    /// </summary>
    /// <param name="points">Number of sample intervals (at least 1); the result has points + 1 rows of 3 values.</param>
    /// <param name="dt">The sample interval (positive; the paper's data use 0.01).</param>
    /// <param name="seed">Chooses the start state.</param>
    /// <param name="sigma">σ (default 10).</param>
    /// <param name="rho">ρ (default 28).</param>
    /// <param name="beta">β (default 8/3).</param>
    /// <param name="burnIn">Time discarded before the first sample (default 10, non-negative).</param>
    public static double[][] Lorenz63Trajectory(int points, double dt, int seed, double sigma = 10, double rho = 28, double beta = 8.0 / 3, double burnIn = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(points, 1);
        CheckPositive(dt, nameof(dt));
        if (!(burnIn >= 0 && double.IsFinite(burnIn)))
            throw new ArgumentOutOfRangeException(nameof(burnIn), burnIn, "burnIn must be a non-negative finite time.");
        var rng = new Random(seed);
        double[] x = [-15 + 30 * rng.NextDouble(), -20 + 40 * rng.NextDouble(), 5 + 40 * rng.NextDouble()];
        var f = Field(sigma, rho, beta);
        double h = dt;
        if (burnIn > 0)
            DormandPrince.Advance(f, x, burnIn, 1e-10, 1e-12, ref h);
        var states = new double[points + 1][];
        states[0] = (double[])x.Clone();
        for (int i = 1; i <= points; i++)
        {
            DormandPrince.Advance(f, x, dt, 1e-10, 1e-12, ref h);
            states[i] = (double[])x.Clone();
        }
        return states;
    }

    /// <summary>
    /// A Lorenz'63 data set of <paramref name="points"/> rows (State = x_i, NextState = x_{i+1}, float vectors of
    /// length 3) from <see cref="Lorenz63Trajectory"/>: consecutive rows follow the trajectory.
    /// </summary>
    /// <param name="points">Number of rows (at least 1).</param>
    /// <param name="dt">The sample interval (positive; the paper's data use 0.01).</param>
    /// <param name="seed">Chooses the start state.</param>
    /// <param name="sigma">σ (default 10).</param>
    /// <param name="rho">ρ (default 28).</param>
    /// <param name="beta">β (default 8/3).</param>
    /// <param name="burnIn">Time discarded before the first sample (default 10).</param>
    public static IDataView Lorenz63(int points, double dt, int seed, double sigma = 10, double rho = 28, double beta = 8.0 / 3, double burnIn = 10) =>
        Transitions(Lorenz63Trajectory(points, dt, seed, sigma, rho, beta, burnIn));

    /// <summary>
    /// Turns a sampled trajectory (n states of equal length, in time order, equally spaced) into n − 1 rows
    /// (State = x_i, NextState = x_{i+1}) with float vector columns of known size.
    /// </summary>
    /// <param name="trajectory">The states, at least 2, all of the same positive length, all finite.</param>
    public static IDataView Transitions(IReadOnlyList<double[]> trajectory)
    {
        ArgumentNullException.ThrowIfNull(trajectory);
        if (trajectory.Count < 2)
            throw new ArgumentException($"A trajectory needs at least 2 states (got {trajectory.Count}).", nameof(trajectory));
        int d = trajectory[0]?.Length ?? 0;
        if (d < 1)
            throw new ArgumentException("The trajectory's states must have at least one coordinate.", nameof(trajectory));
        var rows = new StateTransition[trajectory.Count - 1];
        float[] previous = ToFloat(trajectory[0], 0, d);
        for (int i = 1; i < trajectory.Count; i++)
        {
            var next = ToFloat(trajectory[i], i, d);
            rows[i - 1] = new StateTransition { State = previous, NextState = next };
            previous = next;
        }
        return FromRows(rows, d);
    }

    /// <summary>
    /// Cuts a trajectory into windows of <paramref name="window"/> consecutive states, every <paramref name="stride"/>
    /// states, as rows (<c>Window</c> = the states flattened, <c>Start</c> = the first state's index) for
    /// <c>ml.Transforms.TrajectoryEntropy</c>.
    /// </summary>
    /// <param name="trajectory">The states, all of the same positive length, all finite.</param>
    /// <param name="window">States per window (at least 1, at most the trajectory's length).</param>
    /// <param name="stride">Distance between window starts (at least 1).</param>
    public static IDataView Windows(IReadOnlyList<double[]> trajectory, int window, int stride)
    {
        ArgumentNullException.ThrowIfNull(trajectory);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        if (trajectory.Count < window)
            throw new ArgumentException($"The trajectory has {trajectory.Count} states, fewer than one window of {window}.", nameof(trajectory));
        int d = trajectory[0]?.Length ?? 0;
        if (d < 1)
            throw new ArgumentException("The trajectory's states must have at least one coordinate.", nameof(trajectory));
        var rows = new List<TrajectoryWindow>();
        for (int s = 0; s + window <= trajectory.Count; s += stride)
        {
            var w = new float[window * d];
            for (int i = 0; i < window; i++)
                ToFloat(trajectory[s + i], s + i, d).CopyTo(w, i * d);
            rows.Add(new TrajectoryWindow { Window = w, Start = s });
        }
        var schema = SchemaDefinition.Create(typeof(TrajectoryWindow));
        schema[nameof(TrajectoryWindow.Window)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, window * d);
        return new MLContext(seed: 0).Data.LoadFromEnumerable(rows, schema);
    }

    /// <summary>
    /// The valid prediction horizon of a free-running forecast, in sample intervals: the number of leading steps t ≥ 1
    /// with e(t) = ‖x̂_t − x_t‖₂ / σ ≤ <paramref name="threshold"/>, where σ = √(mean_t ‖x_t − x̄‖₂²) is the RMS spread of
    /// <paramref name="truth"/> about its mean. Both sequences start at the same initial state (index 0, not counted).
    /// Multiply by the sample interval and by λ_max (0.906 for Lorenz'63) to express it in Lyapunov times.
    /// </summary>
    /// <param name="predicted">The forecast x̂_0, x̂_1, … (for example from <see cref="NeuralOdeTransformer.Rollout(ReadOnlySpan{float}, int)"/>).</param>
    /// <param name="truth">The true states x_0, x_1, …, at least as many as <paramref name="predicted"/>, same length each.</param>
    /// <param name="threshold">The normalised error threshold (default 0.4, positive).</param>
    public static int ValidPredictionSteps(IReadOnlyList<float[]> predicted, IReadOnlyList<double[]> truth, double threshold = 0.4)
    {
        ArgumentNullException.ThrowIfNull(predicted);
        ArgumentNullException.ThrowIfNull(truth);
        CheckPositive(threshold, nameof(threshold));
        if (truth.Count < predicted.Count || predicted.Count < 1)
            throw new ArgumentException($"The truth has {truth.Count} states for {predicted.Count} predicted ones.", nameof(truth));
        int d = truth[0].Length;
        int n = predicted.Count;
        var mean = new double[d];
        for (int t = 0; t < n; t++)
        {
            for (int j = 0; j < d; j++)
                mean[j] += truth[t][j] / n;
        }
        double spread = 0;
        for (int t = 0; t < n; t++)
        {
            for (int j = 0; j < d; j++)
                spread += (truth[t][j] - mean[j]) * (truth[t][j] - mean[j]) / n;
        }
        double sigma = Math.Sqrt(spread);
        for (int t = 1; t < n; t++)
        {
            if (predicted[t].Length != d)
                throw new ArgumentException($"Predicted state {t} has {predicted[t].Length} values; the truth has {d}.", nameof(predicted));
            double e = 0;
            for (int j = 0; j < d; j++)
                e += (predicted[t][j] - truth[t][j]) * (predicted[t][j] - truth[t][j]);
            if (!(Math.Sqrt(e) / sigma <= threshold))
                return t - 1;
        }
        return n - 1;
    }

    /// <summary>An <see cref="IDataView"/> over <paramref name="rows"/> with State and NextState typed as vectors of <paramref name="size"/>.</summary>
    internal static IDataView FromRows(IEnumerable<StateTransition> rows, int size)
    {
        var schema = SchemaDefinition.Create(typeof(StateTransition));
        schema[nameof(StateTransition.State)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        schema[nameof(StateTransition.NextState)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, size);
        return new MLContext(seed: 0).Data.LoadFromEnumerable(rows, schema);
    }

    private static float[] ToFloat(double[]? state, int index, int d)
    {
        if (state is null || state.Length != d)
            throw new ArgumentException($"State {index} has {state?.Length ?? 0} coordinates; state 0 has {d}.", "trajectory");
        var f = new float[d];
        for (int j = 0; j < d; j++)
        {
            if (!double.IsFinite(state[j]))
                throw new ArgumentException($"State {index} coordinate {j} is not finite ({state[j]}).", "trajectory");
            f[j] = (float)state[j];
        }
        return f;
    }

    private static Action<double[], double[]> Field(double sigma, double rho, double beta) =>
        (x, dx) => Lorenz63Field(x, dx, sigma, rho, beta);

    private static void CheckPositive(double value, string name)
    {
        if (!(value > 0 && double.IsFinite(value)))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a positive finite number (got {value}).");
    }
}
