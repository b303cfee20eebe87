namespace Allauzen.ML.Lipschitz;

/// <summary>Kinds of the deployed (constraint-folded) layers of a Lipschitz network.</summary>
internal enum PlainKind
{
    /// <summary>y = (x − mean)·scale on the flat features; Lipschitz |scale|. Tensors: mean. Step = scale.</summary>
    Normalize,

    /// <summary>Flat features → (C, H, W) image. Dims = [C, H, W].</summary>
    Reshape,

    /// <summary>Zero channels appended: Dims = [from, to]. An isometry.</summary>
    PadChannels,

    /// <summary>y = Wx + b (optionally ReLU). Dims = [out, in]. Tensors: W, b.</summary>
    Dense,

    /// <summary>y = conv(x, K) + b, zero padding (k−1)/2, stride 1 (optionally ReLU). Dims = [co, ci, k, k, H, W]. Tensors: W, b.</summary>
    Conv,

    /// <summary>y = x − A·ReLU(Vx + b) with A ≈ Step·Vᵀ (SLL, CPL). Dims = [inner, features]. Tensors: V, b, A.</summary>
    ResidualDense,

    /// <summary>y = x − conv(ReLU(conv(x, V) + b), A) with A ≈ Step·flip(Vᵀ) (SLL, CPL). Dims = [inner, c, k, k, H, W]. Tensors: V, b, A.</summary>
    ResidualConv,

    /// <summary>Non-overlapping k×k window sums divided by k (average pool × k): 1-Lipschitz. Dims = [k].</summary>
    SumPool,

    /// <summary>(C, H, W) → flat.</summary>
    Flatten,
}

/// <summary>One deployed layer: its kind, integer dimensions, a scalar and its named float32 tensors.</summary>
internal sealed record PlainLayer(PlainKind Kind, int[] Dims, double Step, bool Relu)
{
    /// <summary>Named tensors (row-major data and shape); persisted next to the JSON spec.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public Dictionary<string, (float[] Data, long[] Shape)> Tensors { get; init; } = [];

    public (float[] Data, long[] Shape) T(string name) =>
        Tensors.TryGetValue(name, out var t) ? t : throw new InvalidDataException($"Layer {Kind} lacks tensor '{name}'.");
}
