using Microsoft.ML;

namespace Allauzen.ML.Smoothing;

/// <summary>The certification procedure, each named after its paper with its α convention.</summary>
public enum SmoothingMethod
{
    /// <summary>
    /// Cohen, Rosenfeld and Kolter (2019) CERTIFY: class from the n0 selection votes, one-sided
    /// Clopper–Pearson lower bound at α on the n independent estimation votes, R = σΦ⁻¹(p̲A), abstain iff p̲A &lt; ½.
    /// </summary>
    Cohen = 0,

    /// <summary>
    /// LVM-RS (Delattre et al., ICLR 2024) as the reference code computes it: votes and 204 simplex maps
    /// (softmax/sparsemax of t·logits), every bound at α/K, the best radius over all candidates. Not a valid
    /// level-α certificate (union over 2K bounds and a maximum over the candidates); kept for parity.
    /// </summary>
    LvmAsPublished = 1,

    /// <summary>
    /// LVM-RS with the corrected α: a fixed candidate set (votes + <see cref="RandomizedSmoothingOptions.LvmMaps"/>),
    /// every bound at α/(2·K·M), so the certificate holds with probability ≥ 1 − α.
    /// </summary>
    LvmSound = 2,

    /// <summary>
    /// "Bridging the Theoretical Gap in Randomized Smoothing" (Delattre et al., AISTATS 2025) CPM: class buckets
    /// from the selection votes, Clopper–Pearson bounds at α/#buckets (R_multi) or α (R_mono) on the estimation
    /// votes. See <see cref="RandomizedSmoothingOptions.CpmRadius"/>.
    /// </summary>
    BridgingCpm = 3,
}

/// <summary>Progress of certification, cumulative over the transformer's passes.</summary>
/// <param name="Rows">Rows certified so far.</param>
/// <param name="Samples">Noisy forward passes so far.</param>
/// <param name="Elapsed">Time spent sampling.</param>
public sealed record SmoothingProgress(long Rows, long Samples, TimeSpan Elapsed);

/// <summary>
/// Options of <c>ml.Transforms.CertifyRandomizedSmoothing</c> (and of the sampling stage
/// <c>ml.Transforms.SampleRandomizedSmoothing</c>). Defaults follow Cohen et al.'s reference settings
/// (σ = 0.25, n0 = 100, n = 100 000, α = 0.001).
/// </summary>
/// <remarks>
/// The certificate holds in the space where the noise is added: the feature column as it enters the base
/// model, in its units. Fold normalisation into the model (or feed already-normalised features) so that σ
/// and the radius mean what you expect.
/// </remarks>
public sealed class RandomizedSmoothingOptions
{
    /// <summary>
    /// Path of an ONNX classifier: its first input (or <see cref="OnnxInputName"/>) takes the float feature
    /// vector [N, d], its first output (or <see cref="OnnxOutputName"/>) gives one score per class [N, K].
    /// Exactly one of this and <see cref="BaseModel"/> must be set. The file's bytes are embedded on save.
    /// </summary>
    public string? BaseModelOnnxPath { get; set; }

    /// <summary>
    /// An Allauzen network classifier (the <c>MlpTransformer</c> from <c>ml.MulticlassClassification.Trainers.Mlp</c>, a
    /// <c>FotonTransformer</c> or a <c>LipschitzClassifierTransformer</c>, or a chain that contains exactly one), run with
    /// TorchSharp. Its feature column is read from <see cref="FeatureColumnName"/>.
    /// </summary>
    public ITransformer? BaseModel { get; set; }

    /// <summary>Name of the ONNX input to feed (default: the model's first input).</summary>
    public string? OnnxInputName { get; set; }

    /// <summary>Name of the ONNX output holding the class scores (default: the model's first output).</summary>
    public string? OnnxOutputName { get; set; }

    /// <summary>
    /// True when the ONNX output holds probabilities rather than logits (default false). Votes only use the
    /// argmax; LVM maps are then applied to log-probabilities (logits up to a shift, which the maps ignore).
    /// </summary>
    public bool BaseModelOutputsProbabilities { get; set; }

    /// <summary>Feature vector column (Vector&lt;Single, d&gt;). Default "Features".</summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>Standard deviation σ of the isotropic Gaussian noise, in feature units. Default 0.25.</summary>
    public double Sigma { get; set; } = 0.25;

    /// <summary>n0: noisy samples that select the class (Cohen, CPM). Default 100. LVM does not use them.</summary>
    public int SelectionSamples { get; set; } = 100;

    /// <summary>n: independent noisy samples that estimate the bounds. Default 100 000.</summary>
    public int EstimationSamples { get; set; } = 100_000;

    /// <summary>Failure probability α of the certificate, in (0, 0.5). Default 0.001.</summary>
    public double Alpha { get; set; } = 0.001;

    /// <summary>The certification procedure. Default <see cref="SmoothingMethod.Cohen"/>.</summary>
    public SmoothingMethod Method { get; set; } = SmoothingMethod.Cohen;

    /// <summary>
    /// Seed of the noise. Each row's noise is seeded from (Seed, row key) with <see cref="RowKeyColumnName"/>, else from
    /// (Seed, row id), so results do not depend on batch size, batch order or which rows are scored together. Default 0.
    /// </summary>
    public int Seed { get; set; }

    /// <summary>
    /// A column that names each row: any integer scalar (Int8..UInt64 or a key type) or text. When set, a row's noise
    /// stream is derived from (<see cref="Seed"/>, a stable 64-bit hash of its key) only (integers: SplitMix64 of the
    /// value; text: FNV-1a over the UTF-8 bytes, then SplitMix64; never <c>string.GetHashCode</c>), so any shard or order
    /// of the data, in any process, gives bit-identical certificates for the same key on the same machine (the same
    /// libtorch build and device). Keys must be unique: two rows with the same key get the same noise. Default null:
    /// the noise is seeded from the row id (<see cref="DataViewRowId"/>), i.e. the row's position in the view it is
    /// read from, so a shard or reordering of the data changes the certificates (results from before this option).
    /// </summary>
    public string? RowKeyColumnName { get; set; }

    /// <summary>Noisy samples per forward pass (memory is O(BatchSize × d) whatever n is). Default 1000.</summary>
    public int BatchSize { get; set; } = 1000;

    /// <summary>R_multi (default) or R_mono for <see cref="SmoothingMethod.BridgingCpm"/>.</summary>
    public CpmRadius CpmRadius { get; set; } = CpmRadius.Multi;

    /// <summary>
    /// The simplex maps of the LVM methods. Default null: <see cref="SimplexMap.PublishedGrid"/> (204 maps) for
    /// <see cref="SmoothingMethod.LvmAsPublished"/>, <see cref="SimplexMap.SoundDefault"/> (12 maps) for
    /// <see cref="SmoothingMethod.LvmSound"/>. Choose them beforehand (e.g. on held-out data), never on the
    /// rows being certified.
    /// </summary>
    public IReadOnlyList<SimplexMap>? LvmMaps { get; set; }

    /// <summary>
    /// A certified upper bound L on the L2 Lipschitz constant of the base model's map features → logits, for
    /// <see cref="SmoothingMethod.BridgingCpm"/> with the Bridging paper's Lipschitz-based radius (see
    /// <see cref="SmoothingCertifier.CpmLipschitz"/>): the bucket bounds are then taken on the soft output
    /// softmax(t·logits) (t = <see cref="LipschitzSoftmaxScale"/>), which is (√2/4)·t·L-Lipschitz, and the radius is
    /// <see cref="LipschitzRadius"/>'s (never below Cohen's Φ⁻¹ radius on the same bounds; +∞ gives exactly that).
    /// Default null: CPM on the votes with Cohen's radius. It must be a <em>certified</em> bound (e.g. Gram-iteration
    /// products such as <c>MlpTransformer.LipschitzBound()</c> or <c>FotonTransformer.LipschitzBound()</c>), never an estimate; a bound that is too small
    /// gives invalid certificates.
    /// </summary>
    public double? LipschitzConstant { get; set; }

    /// <summary>
    /// Take <see cref="LipschitzConstant"/> from the base model's own certified bound (an <c>MlpTransformer</c> or a
    /// <c>FotonTransformer</c>: <c>LipschitzBound()</c>; a <c>LipschitzClassifierTransformer</c>: <c>LipschitzConstant</c>) instead of setting it. Default false. Only for <see cref="SmoothingMethod.BridgingCpm"/>
    /// with an Allauzen base model that exposes a bound; not together with <see cref="LipschitzConstant"/>.
    /// </summary>
    public bool UseModelLipschitzConstant { get; set; }

    /// <summary>The inverse temperature t &gt; 0 of the soft output softmax(t·logits) of the Lipschitz-based radius. Default 1.</summary>
    public double LipschitzSoftmaxScale { get; set; } = 1.0;

    /// <summary>True when the Lipschitz-based radius is configured.</summary>
    internal bool UsesLipschitz => LipschitzConstant is not null || UseModelLipschitzConstant;

    /// <summary>
    /// TorchSharp device of an Allauzen base model: <c>"auto"</c> (default, as the trainers' <c>Device</c>), <c>"cpu"</c>,
    /// <c>"cuda"</c> or <c>"cuda:N"</c>. The network is never moved: <c>"auto"</c> runs it (and draws the noise) where its
    /// parameters live, which for a model trained with the trainers' default <c>"auto"</c> is CUDA when available, else the
    /// CPU; any other value must name that device, or <c>Fit</c> throws naming both. Not used by an ONNX base model
    /// (see <see cref="GpuDeviceId"/>). Until this option was aligned it defaulted to <c>"cpu"</c> and was not read.
    /// </summary>
    public string Device { get; set; } = "auto";

    /// <summary>
    /// CUDA device of an ONNX base model (ONNX Runtime's CUDA execution provider; needs Microsoft.ML.OnnxRuntime.Gpu,
    /// CUDA 12 and cuDNN 9 in the application). Default null: the <c>MLContext</c>'s <c>GpuDeviceId</c>, and the CPU
    /// when that is null too. Not persisted: a loaded certifier takes the loading context's <c>GpuDeviceId</c>.
    /// The noise is always drawn on the CPU for an ONNX base model, so the certificates do not depend on this setting
    /// beyond the floating-point differences of the base model's kernels.
    /// </summary>
    public int? GpuDeviceId { get; set; }

    /// <summary>
    /// When <see cref="GpuDeviceId"/> (or the context's) is set but CUDA cannot be used: true runs the ONNX base model on
    /// the CPU with a warning in the ML.NET log, false throws <see cref="InvalidOperationException"/> naming the device and
    /// what to install. Default null: the <c>MLContext</c>'s <c>FallbackToCpu</c> (false unless set there).
    /// </summary>
    public bool? FallbackToCpu { get; set; }

    /// <summary>Receives progress after every forward pass batch (optional).</summary>
    public IProgress<SmoothingProgress>? Progress { get; set; }

    /// <summary>Cancels a running certification (checked between forward passes).</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>The maps the sampler collects for the configured method.</summary>
    internal IReadOnlyList<SimplexMap> EffectiveMaps => Method switch
    {
        SmoothingMethod.LvmAsPublished => LvmMaps ?? SimplexMap.PublishedGrid,
        SmoothingMethod.LvmSound => LvmMaps ?? SimplexMap.SoundDefault,
        SmoothingMethod.BridgingCpm when UsesLipschitz => [new SimplexMap(SimplexMapKind.Softmax, LipschitzSoftmaxScale)],
        _ => [],
    };

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option.</summary>
    internal void Validate()
    {
        if ((BaseModelOnnxPath is null) == (BaseModel is null))
            throw new ArgumentOutOfRangeException(nameof(BaseModelOnnxPath), BaseModelOnnxPath,
                "Set exactly one of BaseModelOnnxPath (an ONNX classifier file) and BaseModel (an Allauzen network classifier).");
        if (BaseModelOnnxPath is not null && !File.Exists(BaseModelOnnxPath))
            throw new FileNotFoundException($"BaseModelOnnxPath: the ONNX file '{BaseModelOnnxPath}' does not exist.", BaseModelOnnxPath);
        if (GpuDeviceId is < 0)
            throw new ArgumentOutOfRangeException(nameof(GpuDeviceId), GpuDeviceId, $"GpuDeviceId must be a CUDA device index ≥ 0 (got {GpuDeviceId}).");
        if (UseModelLipschitzConstant && BaseModel is null)
            throw new ArgumentOutOfRangeException(nameof(UseModelLipschitzConstant), true,
                "UseModelLipschitzConstant needs an Allauzen BaseModel (an ONNX file carries no certified Lipschitz bound); set LipschitzConstant instead.");
        ValidateSettings();
    }

    /// <summary>
    /// The rules on everything but the base model: also run by the loaders on the settings a saved smoothing
    /// transformer holds, so that a file cannot certify with settings these options refuse.
    /// </summary>
    internal void ValidateSettings()
    {
        ArgumentException.ThrowIfNullOrEmpty(FeatureColumnName, nameof(FeatureColumnName));
        if (RowKeyColumnName is not null && RowKeyColumnName.Length == 0)
            throw new ArgumentOutOfRangeException(nameof(RowKeyColumnName), RowKeyColumnName, "RowKeyColumnName must be null (seed from the row id) or a column name.");
        if (!(Sigma > 0) || double.IsInfinity(Sigma))
            throw new ArgumentOutOfRangeException(nameof(Sigma), Sigma, $"Sigma must be positive and finite (got {Sigma}).");
        if (!(Alpha > 0 && Alpha < 0.5))
            throw new ArgumentOutOfRangeException(nameof(Alpha), Alpha, $"Alpha must lie in (0, 0.5): a certificate that fails with probability 1/2 or more certifies nothing (got {Alpha}).");
        if (SelectionSamples < 1)
            throw new ArgumentOutOfRangeException(nameof(SelectionSamples), SelectionSamples, $"SelectionSamples (n0) must be at least 1 (got {SelectionSamples}).");
        if (EstimationSamples < 1)
            throw new ArgumentOutOfRangeException(nameof(EstimationSamples), EstimationSamples, $"EstimationSamples (n) must be at least 1 (got {EstimationSamples}).");
        if (IsLvm && EstimationSamples < 2)
            throw new ArgumentOutOfRangeException(nameof(EstimationSamples), EstimationSamples, "The LVM methods need EstimationSamples (n) ≥ 2 for the empirical Bernstein bound.");
        if (BatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, $"BatchSize must be at least 1 (got {BatchSize}).");
        if (!Enum.IsDefined(Method))
            throw new ArgumentOutOfRangeException(nameof(Method), Method, $"Method {Method} is not a defined SmoothingMethod.");
        if (!Enum.IsDefined(CpmRadius))
            throw new ArgumentOutOfRangeException(nameof(CpmRadius), CpmRadius, $"CpmRadius {CpmRadius} is not a defined CpmRadius.");
        if (LipschitzConstant is { } l && (!(l > 0) || double.IsNaN(l)))
            throw new ArgumentOutOfRangeException(nameof(LipschitzConstant), l, $"LipschitzConstant must be a positive certified bound (got {l}).");
        if (UsesLipschitz && Method != SmoothingMethod.BridgingCpm)
            throw new ArgumentOutOfRangeException(UseModelLipschitzConstant ? nameof(UseModelLipschitzConstant) : nameof(LipschitzConstant), Method,
                $"The Lipschitz-based radius is the BridgingCpm method's; Method is {Method}.");
        if (LipschitzConstant is not null && UseModelLipschitzConstant)
            throw new ArgumentOutOfRangeException(nameof(UseModelLipschitzConstant), true, "Set either LipschitzConstant or UseModelLipschitzConstant, not both.");
        if (!(LipschitzSoftmaxScale > 0) || double.IsInfinity(LipschitzSoftmaxScale))
            throw new ArgumentOutOfRangeException(nameof(LipschitzSoftmaxScale), LipschitzSoftmaxScale, $"LipschitzSoftmaxScale must be positive and finite (got {LipschitzSoftmaxScale}).");
        if (UsesLipschitz && EstimationSamples < 2)
            throw new ArgumentOutOfRangeException(nameof(EstimationSamples), EstimationSamples, "The Lipschitz-based radius needs EstimationSamples (n) ≥ 2 for the empirical Bernstein bound.");
        if (LvmMaps is not null)
        {
            foreach (var m in LvmMaps)
            {
                if (!(m.T > 0) || double.IsInfinity(m.T) || !Enum.IsDefined(m.Kind))
                    throw new ArgumentOutOfRangeException(nameof(LvmMaps), m, $"LvmMaps: {m} needs a defined kind and a finite t > 0.");
            }
        }
    }

    internal bool IsLvm => Method is SmoothingMethod.LvmAsPublished or SmoothingMethod.LvmSound;

    /// <summary>
    /// The n below which no row can ever be certified: all n votes for one class give p̲A = α^(1/n), which
    /// must reach ½ (Cohen), i.e. n ≥ log(α)/log(½).
    /// </summary>
    internal static long MinimumUsefulSamples(double alpha) => (long)Math.Ceiling(Math.Log(alpha) / Math.Log(0.5) - 1e-12);
}
