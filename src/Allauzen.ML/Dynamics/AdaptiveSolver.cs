using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Dynamics;

/// <summary>The solver settings a trained model keeps (persisted as JSON).</summary>
internal sealed record OdeSolverSettings(OdeSolver Solver, int FixedSteps, double Tolerance, double Safety, int MaxSteps)
{
    public static OdeSolverSettings From(NeuralOdeOptions o) => new(o.Solver, o.FixedSteps, o.Tolerance, o.Safety, o.MaxSteps);

    /// <summary>Throws when the persisted fields are invalid (read from an untrusted file).</summary>
    public void Validate(string source)
    {
        if (!Enum.IsDefined(Solver) || FixedSteps < 1 || FixedSteps > 1000 || !(Tolerance > 0) || !double.IsFinite(Tolerance)
            || !(Safety > 0 && Safety <= 1) || MaxSteps < 1 || MaxSteps > 1000)
            throw new InvalidDataException($"NeuralOde model '{source}': the solver settings are invalid.");
    }
}

/// <summary>Counts of the Fehlberg decisions over an epoch or a scoring pass.</summary>
internal sealed class SolverStatistics
{
    public long Rows { get; private set; }

    public long Accepted { get; private set; }

    /// <summary>Σ 1/h' (before rounding) over the rejected rows.</summary>
    public double RejectedProposedSum { get; private set; }

    /// <summary>Σ whole steps used over all rows.</summary>
    public long Steps { get; private set; }

    public double AcceptedFraction => Rows == 0 ? 1 : (double)Accepted / Rows;

    public double MeanRejectedSteps => Rows == Accepted ? 0 : RejectedProposedSum / (Rows - Accepted);

    public double MeanSteps => Rows == 0 ? 0 : (double)Steps / Rows;

    public void Add(long rows, long accepted, double rejectedProposed, long steps)
    {
        Rows += rows;
        Accepted += accepted;
        RejectedProposedSum += rejectedProposed;
        Steps += steps;
    }
}

/// <summary>
/// The paper's solver around f_θ. Fixed solvers integrate the unit interval in equal steps. Fehlberg32 tries one step
/// (h = 1): rows with r ≤ ε keep A₂; the others are recomputed with ⌈1/h'⌉ RK3 steps, h' = S·√(ε/r) ≥ 1/MaxSteps.
/// In training the rejected rows of a batch share the smallest proposed step, as the reference code does (appendix
/// "Batch training"); in scoring each rejected row gets its own step count (rows with the same count are recomputed
/// together), so a row's prediction does not depend on the rows scored with it.
/// </summary>
internal static class AdaptiveSolver
{
    /// <summary>The training forward pass (differentiable); r is measured against the target when <paramref name="fehlbergTraining"/>.</summary>
    public static Tensor TrainForward(OdeSolverSettings s, Func<Tensor, Tensor> f, Tensor x, Tensor target, bool fehlbergTraining, SolverStatistics stats)
    {
        long n = x.shape[0];
        if (s.Solver != OdeSolver.Fehlberg32)
        {
            stats.Add(n, n, 0, n * s.FixedSteps);
            return OdeSteps.Integrate(s.Solver, f, x, s.FixedSteps);
        }
        var (a1, a2) = OdeSteps.Fehlberg32(f, x, 1.0);
        double[] r;
        using (torch.no_grad())
        {
            using var rate = OdeSteps.ErrorRate(fehlbergTraining ? target : a1, a2, 1.0);
            r = ToDoubles(rate);
        }
        var rejected = new List<long>();
        double proposedSum = 0, smallestStep = 1;
        for (int i = 0; i < r.Length; i++)
        {
            if (r[i] <= s.Tolerance)
                continue;
            rejected.Add(i);
            double p = OdeSteps.ProposedSteps(r[i], s.Tolerance, s.Safety, s.MaxSteps);
            proposedSum += p;
            smallestStep = Math.Min(smallestStep, 1.0 / p);
        }
        if (rejected.Count == 0)
        {
            stats.Add(n, n, 0, n);
            return a2;
        }
        int steps = OdeSteps.WholeSteps(1.0 / smallestStep, s.MaxSteps);
        stats.Add(n, n - rejected.Count, proposedSum, n - rejected.Count + (long)rejected.Count * steps);
        using var idx = torch.tensor(rejected.ToArray(), ScalarType.Int64);
        var redone = OdeSteps.Integrate(OdeSolver.Rk3, f, x.index_select(0, idx), steps);
        return a2.index_copy(0, idx, redone);
    }

    /// <summary>Scores every row (no gradient): the predicted next states and each row's whole step count.</summary>
    public static (Tensor Prediction, int[] Steps) Score(OdeSolverSettings s, Func<Tensor, Tensor> f, Tensor x, SolverStatistics? stats = null)
    {
        using var noGrad = torch.no_grad();
        int n = (int)x.shape[0];
        var steps = new int[n];
        if (s.Solver != OdeSolver.Fehlberg32)
        {
            Array.Fill(steps, s.FixedSteps);
            stats?.Add(n, n, 0, (long)n * s.FixedSteps);
            return (OdeSteps.Integrate(s.Solver, f, x, s.FixedSteps), steps);
        }
        var (a1, a2) = OdeSteps.Fehlberg32(f, x, 1.0);
        double[] r;
        using (var rate = OdeSteps.ErrorRate(a1, a2, 1.0))
            r = ToDoubles(rate);
        double proposedSum = 0;
        var groups = new SortedDictionary<int, List<long>>();
        for (int i = 0; i < n; i++)
        {
            steps[i] = 1;
            if (r[i] <= s.Tolerance)
                continue;
            double p = OdeSteps.ProposedSteps(r[i], s.Tolerance, s.Safety, s.MaxSteps);
            proposedSum += p;
            steps[i] = OdeSteps.WholeSteps(p, s.MaxSteps);
            if (!groups.TryGetValue(steps[i], out var g))
                groups[steps[i]] = g = [];
            g.Add(i);
        }
        stats?.Add(n, n - groups.Values.Sum(g => g.Count), proposedSum, steps.Sum(k => (long)k));
        var y = a2;
        foreach (var (k, rows) in groups)
        {
            using var idx = torch.tensor(rows.ToArray(), ScalarType.Int64);
            y = y.index_copy(0, idx, OdeSteps.Integrate(OdeSolver.Rk3, f, x.index_select(0, idx), k));
        }
        return (y, steps);
    }

    private static double[] ToDoubles(Tensor t)
    {
        using var d = t.to_type(ScalarType.Float64).cpu().contiguous();
        return d.data<double>().ToArray();
    }
}
