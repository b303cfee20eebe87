using Allauzen.ML.Core;
using Allauzen.ML.Data;
using Microsoft.ML.Data;

namespace Allauzen.ML.Dynamics;

/// <summary>
/// Learns the partition for <see cref="TrajectoryEntropyTransformer"/>: Bins boxes per coordinate over the bounding box
/// of all states in the training windows. Create it with <c>ml.Transforms.TrajectoryEntropy(...)</c>.
/// </summary>
public sealed class TrajectoryEntropyEstimator : IEstimator<TrajectoryEntropyTransformer>
{
    private readonly IHost _host;
    private readonly string _input;
    private readonly string _output;
    private readonly int _stateSize;
    private readonly int _bins;

    internal TrajectoryEntropyEstimator(IHostEnvironment env, string inputColumnName, string outputColumnName, int stateSize, int bins)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentException.ThrowIfNullOrWhiteSpace(inputColumnName);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputColumnName);
        if (stateSize < 1 || stateSize > 1 << 16)
            throw new ArgumentOutOfRangeException(nameof(stateSize), stateSize, "stateSize must be in [1, 65536].");
        if (bins < 1 || bins > 64 || stateSize * Math.Log2(bins) > 62)
            throw new ArgumentOutOfRangeException(nameof(bins), bins, $"bins must be in [1, 64] with bins^stateSize ≤ 2^62 (got {bins}, state size {stateSize}).");
        _host = env.Register("Allauzen.TrajectoryEntropy");
        (_input, _output, _stateSize, _bins) = (inputColumnName, outputColumnName, stateSize, bins);
    }

    /// <summary>The input shape plus the entropy column (Single).</summary>
    /// <param name="inputSchema">The input shape; it must hold the window column.</param>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        SchemaChecks.FeatureVector(inputSchema, _input, "window");
        return SchemaShapes.With(inputSchema, [SchemaShapes.Column(_output, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false)]);
    }

    /// <summary>Fits the partition to the states of every window of <paramref name="input"/>.</summary>
    /// <param name="input">Rows with the window column: a float vector whose size is a multiple of the state size.</param>
    public TrajectoryEntropyTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int size = TrajectoryEntropyTransformer.CheckWindow(input.Schema, _input, _stateSize);
        var all = new List<float>();
        using (var cursor = input.GetRowCursor([input.Schema[_input]]))
        {
            var get = cursor.GetGetter<VBuffer<float>>(input.Schema[_input]);
            VBuffer<float> v = default;
            long row = 0;
            while (cursor.MoveNext())
            {
                get(ref v);
                foreach (float f in v.DenseValues())
                {
                    if (!float.IsFinite(f))
                        throw new ArgumentOutOfRangeException(nameof(input), f, $"Column '{_input}', row {row}: the value {f} is not finite.");
                    all.Add(f);
                }
                row++;
            }
        }
        if (all.Count == 0)
            throw new ArgumentException($"Column '{_input}': the data has no rows.", nameof(input));
        _ = size;
        return new TrajectoryEntropyTransformer(_host, StatePartition.Fit(all.ToArray(), _stateSize, _bins), _input, _output);
    }
}
