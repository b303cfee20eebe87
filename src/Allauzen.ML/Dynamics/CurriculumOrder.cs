namespace Allauzen.ML.Dynamics;

/// <summary>
/// Which training segments are used, and in which order (the curriculum paper's three training sets). The rows are cut
/// into consecutive segments of <see cref="NeuralOdeOptions.CurriculumSegmentLength"/> rows, each scored by its
/// visitation entropy (see <see cref="TrajectoryEntropyEstimator"/>); <see cref="NeuralOdeOptions.CurriculumFraction"/>
/// of the segments are kept.
/// </summary>
public enum CurriculumOrder
{
    /// <summary>A seeded random choice of segments, all used from the first epoch.</summary>
    Random,

    /// <summary>
    /// The lowest-entropy segments; training starts on the simplest and adds segments in increasing entropy, all of
    /// them present from the middle epoch on (pacing). With a fraction below 1 this is the "low-entropy only" set.
    /// </summary>
    LowToHighEntropy,

    /// <summary>A greedy choice of segments that maximises the number of partition cells visited (coverage of the attractor).</summary>
    MaxCoverage,
}
