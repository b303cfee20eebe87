using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Torch;

/// <summary>
/// Products whose result is known to be symmetric (a Gram matrix WWᵀ, or the product of two commuting symmetric
/// matrices) computed with half the multiply-adds: MKL's triangular product <c>gemmt</c> fills one triangle of C = A·B,
/// and the other is mirrored, so the result is exactly symmetric. libtorch exposes no such operator, but the Linux x64
/// libtorch CPU build links MKL and exports its internal BLAS layer; <c>mkl_blas_sgemmt</c> / <c>mkl_blas_dgemmt</c> take
/// the Fortran BLAS arguments (<c>uplo, transa, transb, n, k, alpha, a, lda, b, ldb, beta, c, ldc</c>) with 64-bit integers.
/// </summary>
/// <remarks>
/// These are not public MKL entry points, so they are used only where they were checked: Linux x64, the libtorch
/// versions in <see cref="VerifiedLibtorch"/>, the symbol present in the <c>libtorch_cpu</c> that TorchSharp loaded, and
/// a probe at first use that compares a product against <c>torch.mm</c> (float32 and float64). Anywhere else, or with the
/// environment variable <c>ALLAUZEN_ML_MKL_GEMMT=0</c>, <see cref="TryMultiply"/> returns <see langword="false"/> and the
/// caller computes the product its own way. Integers are passed as 64-bit values: an implementation reading 32-bit
/// integers reads the same (little-endian) low halves.
/// </remarks>
internal static unsafe class MklTriangularProduct
{
    /// <summary>libtorch versions (TorchSharp's <c>torch.__version__</c> prefix) on which the entry points were checked.</summary>
    internal static readonly string[] VerifiedLibtorch = ["2.10."];

    private const string DisableVariable = "ALLAUZEN_ML_MKL_GEMMT";

    private static readonly Lazy<Entry> s_entry = new(Resolve, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Set to <see langword="false"/> to force the fallback (tests compare both paths). Defaults to on.</summary>
    internal static bool Enabled { get; set; } = Environment.GetEnvironmentVariable(DisableVariable) != "0";

    /// <summary>Whether the triangular product is usable in this process (resolved and probed once).</summary>
    internal static bool IsAvailable => Enabled && s_entry.Value.Probed;

    /// <summary>Why the triangular product is not used, for diagnostics; <see langword="null"/> when it is.</summary>
    internal static string? UnavailableReason => !Enabled ? $"{DisableVariable}=0" : s_entry.Value.Reason;

    private sealed record Entry(IntPtr Single, IntPtr Double, bool Probed, string? Reason, IntPtr General = 0);

    /// <summary>
    /// C = A·B for n×k <paramref name="a"/> and k×n <paramref name="b"/> whose product is symmetric (the caller's
    /// guarantee): the lower triangle is multiplied, the upper one mirrored. Returns <see langword="null"/> when the
    /// triangular product does not apply (not available, not a CPU float32/float64 pair, an operand without a unit
    /// stride, or a non-square result).
    /// </summary>
    internal static Tensor? TryMultiply(Tensor a, Tensor b)
    {
        if (!IsAvailable)
            return null;
        return Multiply(s_entry.Value, a, b);
    }

    private static Tensor? Multiply(Entry entry, Tensor a, Tensor b)
    {
        if (a.dim() != 2 || b.dim() != 2 || a.device_type != DeviceType.CPU || b.device_type != DeviceType.CPU
            || a.dtype != b.dtype || (a.dtype != ScalarType.Float32 && a.dtype != ScalarType.Float64))
            return null;
        long n = a.shape[0], k = a.shape[1];
        if (b.shape[0] != k || b.shape[1] != n || n == 0 || k == 0)
            return null;
        bool okB = Operand(b, out bool bTransposed, out var storedB);
        bool okA = Operand(a, out bool aTransposed, out var storedA);
        using var _a = storedA;
        using var _b = storedB;
        if (!okA || !okB)
            return null;
        var c = torch.empty([n, n], a.dtype, a.device);
        fixed (byte* pa = storedA!.bytes)
        fixed (byte* pb = storedB!.bytes)
        fixed (byte* pc = c.bytes)
        {
            if (a.dtype == ScalarType.Float32)
            {
                LowerProduct(entry.Single, (float*)pc, n, k, (float*)pa, aTransposed, (float*)pb, bTransposed, 1f, 0f);
                MirrorLower((float*)pc, (int)n);
            }
            else
            {
                LowerProduct(entry.Double, (double*)pc, n, k, (double*)pa, aTransposed, (double*)pb, bTransposed, 1d, 0d);
                MirrorLower((double*)pc, (int)n);
            }
        }
        return c;
    }

    /// <summary>
    /// Host float32 memory: the lower triangle of the row-major n×n C = A·B (A n×k, B k×n, both row-major and contiguous,
    /// each given as stored or as the transpose of what is stored: a stored k×n matrix for A, n×k for B). The upper
    /// triangle is not written. With <paramref name="alpha"/> and <paramref name="beta"/>: C ← α·A·B + β·C on the lower
    /// triangle (C's lower triangle is read when β ≠ 0). Only when <see cref="IsAvailable"/>.
    /// </summary>
    internal static void LowerProduct(float* c, long n, long k, float* a, bool aTransposed, float* b, bool bTransposed,
        float alpha = 1, float beta = 0) =>
        LowerProduct(s_entry.Value.Single, c, n, k, a, aTransposed, b, bTransposed, alpha, beta);

    /// <summary>MKL's gemmt (<paramref name="gemmt"/>, of T's precision) on the lower triangle, as <see cref="LowerProduct(float*, long, long, float*, bool, float*, bool, float, float)"/>.</summary>
    private static void LowerProduct<T>(IntPtr gemmt, T* c, long n, long k, T* a, bool aTransposed, T* b, bool bTransposed,
        T alpha, T beta)
        where T : unmanaged, INumberBase<T>
    {
        // Column-major: Cᵀ = Bᵀ·Aᵀ, whose upper triangle is C's lower one. A stored row-major X is Xᵀ column-major.
        byte upper = (byte)'U', transB = bTransposed ? (byte)'T' : (byte)'N', transA = aTransposed ? (byte)'T' : (byte)'N';
        long ldb = bTransposed ? k : n, lda = aTransposed ? n : k, ldc = n;
        ((delegate* unmanaged<byte*, byte*, byte*, long*, long*, T*, T*, long*, T*, long*, T*, T*, long*, void>)gemmt)(
            &upper, &transB, &transA, &n, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
    }

    /// <summary>
    /// Host float32 memory: the row-major rows×columns C = A·B (A rows×k, B k×columns, row-major and contiguous), through
    /// MKL's <c>sgemm</c>. Only when <see cref="IsAvailable"/>.
    /// </summary>
    internal static void Product(float* c, long rows, long columns, long k, float* a, float* b) =>
        Product(s_entry.Value, c, rows, columns, k, a, b);

    private static void Product(Entry entry, float* c, long rows, long columns, long k, float* a, float* b)
    {
        // Column-major: Cᵀ = Bᵀ·Aᵀ. Integers as 64-bit values: an LP64 sgemm reads their (same) low halves.
        byte none = (byte)'N';
        float one = 1, zero = 0;
        ((delegate* unmanaged<byte*, byte*, long*, long*, long*, float*, float*, long*, float*, long*, float*, float*, long*, void>)entry.General)(
            &none, &none, &columns, &rows, &k, &one, b, &columns, a, &k, &zero, c, &columns);
    }

    /// <summary>
    /// Copies the lower triangle of a row-major n×n matrix onto its upper triangle: float32 with AVX and n a multiple of
    /// eight by 8×8 blocks transposed in registers, anything else by 32×32 tiles. Either way a plain copy of values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
    internal static void MirrorLower<T>(T* c, int n) where T : unmanaged
    {
        if (typeof(T) == typeof(float) && Avx.IsSupported && n % 8 == 0)
        {
            MirrorLowerBlocks((float*)c, n);
            return;
        }
        const int Tile = 32;
        for (int bi = 0; bi < n; bi += Tile)
        {
            int iEnd = Math.Min(n, bi + Tile);
            for (int bj = 0; bj <= bi; bj += Tile)
            {
                int jEnd = Math.Min(n, bj + Tile);
                for (int i = bi; i < iEnd; i++)
                {
                    T* row = c + (long)i * n;
                    int end = Math.Min(jEnd, i);
                    for (int j = bj; j < end; j++)
                        c[(long)j * n + i] = row[j];
                }
            }
        }
    }

    /// <summary>
    /// <see cref="MirrorLower{T}"/> for float32, n a multiple of 8: every 8×8 block below the diagonal is loaded as eight
    /// rows, transposed with unpacks, shuffles and lane permutes, and stored as the mirrored block's eight rows; the
    /// diagonal blocks element by element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MirrorLowerBlocks(float* c, int n)
    {
        for (int bi = 0; bi < n; bi += 8)
        {
            float* rows = c + (long)bi * n;
            for (int bj = 0; bj < bi; bj += 8)
            {
                float* src = rows + bj;
                var r0 = Avx.LoadVector256(src);
                var r1 = Avx.LoadVector256(src + n);
                var r2 = Avx.LoadVector256(src + 2L * n);
                var r3 = Avx.LoadVector256(src + 3L * n);
                var r4 = Avx.LoadVector256(src + 4L * n);
                var r5 = Avx.LoadVector256(src + 5L * n);
                var r6 = Avx.LoadVector256(src + 6L * n);
                var r7 = Avx.LoadVector256(src + 7L * n);
                var t0 = Avx.UnpackLow(r0, r1);
                var t1 = Avx.UnpackHigh(r0, r1);
                var t2 = Avx.UnpackLow(r2, r3);
                var t3 = Avx.UnpackHigh(r2, r3);
                var t4 = Avx.UnpackLow(r4, r5);
                var t5 = Avx.UnpackHigh(r4, r5);
                var t6 = Avx.UnpackLow(r6, r7);
                var t7 = Avx.UnpackHigh(r6, r7);
                var u0 = Avx.Shuffle(t0, t2, 0x44);
                var u1 = Avx.Shuffle(t0, t2, 0xEE);
                var u2 = Avx.Shuffle(t1, t3, 0x44);
                var u3 = Avx.Shuffle(t1, t3, 0xEE);
                var u4 = Avx.Shuffle(t4, t6, 0x44);
                var u5 = Avx.Shuffle(t4, t6, 0xEE);
                var u6 = Avx.Shuffle(t5, t7, 0x44);
                var u7 = Avx.Shuffle(t5, t7, 0xEE);
                float* dst = c + (long)bj * n + bi;
                Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
                Avx.Store(dst + n, Avx.Permute2x128(u1, u5, 0x20));
                Avx.Store(dst + 2L * n, Avx.Permute2x128(u2, u6, 0x20));
                Avx.Store(dst + 3L * n, Avx.Permute2x128(u3, u7, 0x20));
                Avx.Store(dst + 4L * n, Avx.Permute2x128(u0, u4, 0x31));
                Avx.Store(dst + 5L * n, Avx.Permute2x128(u1, u5, 0x31));
                Avx.Store(dst + 6L * n, Avx.Permute2x128(u2, u6, 0x31));
                Avx.Store(dst + 7L * n, Avx.Permute2x128(u3, u7, 0x31));
            }
            for (int i = bi + 1; i < bi + 8; i++)
            {
                for (int j = bi; j < i; j++)
                    c[(long)j * n + i] = c[(long)i * n + j];
            }
        }
    }

    /// <summary>
    /// The stored form of a 2-D operand X: X itself when row-major contiguous, or the contiguous matrix whose transpose
    /// X is (a transposed view); the returned tensor is a view (the caller disposes it). False for any other layout.
    /// </summary>
    private static bool Operand(Tensor x, out bool transposed, out Tensor? stored)
    {
        var strides = x.stride();
        long rows = x.shape[0], columns = x.shape[1];
        if (strides[1] == 1 && strides[0] == columns)
        {
            (transposed, stored) = (false, x.alias());
            return true;
        }
        if (strides[0] == 1 && strides[1] == rows)
        {
            (transposed, stored) = (true, x.t());
            return true;
        }
        (transposed, stored) = (false, null);
        return false;
    }

    private static Entry Resolve()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return new(0, 0, false, "not Linux x64");
        try
        {
            TorchRuntime.EnsureInitialized();
            string version = torch.__version__;
            if (!VerifiedLibtorch.Any(v => version.StartsWith(v, StringComparison.Ordinal)))
                return new(0, 0, false, $"libtorch {version} is not a checked version ({string.Join(", ", VerifiedLibtorch)})");
            var directory = TorchRuntime.NativeDirectory;
            IntPtr library = 0;
            bool loaded = (directory is not null && NativeLibrary.TryLoad(Path.Combine(directory, "libtorch_cpu.so"), out library))
                || NativeLibrary.TryLoad("libtorch_cpu.so", out library);
            if (!loaded)
                return new(0, 0, false, "libtorch_cpu.so not found");
            if (!NativeLibrary.TryGetExport(library, "mkl_blas_sgemmt", out var single)
                || !NativeLibrary.TryGetExport(library, "mkl_blas_dgemmt", out var dbl)
                || !NativeLibrary.TryGetExport(library, "sgemm_", out var general))
                return new(0, 0, false, "libtorch_cpu.so exports no MKL gemmt or sgemm_");
            var entry = new Entry(single, dbl, true, null, general);
            string? failure = Probe(entry, ScalarType.Float32, 1e-5) ?? Probe(entry, ScalarType.Float64, 1e-12) ?? ProbeHost(entry);
            return failure is null ? entry : new(0, 0, false, failure);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new(0, 0, false, e.Message);
        }
    }

    /// <summary>A 70×45 Gram matrix and a product of two commuting symmetric matrices, against torch.mm.</summary>
    private static string? Probe(Entry entry, ScalarType dtype, double tolerance)
    {
        using var scope = torch.NewDisposeScope();
        using var generator = new Generator(12345);
        var w = torch.randn([70, 45], dtype, generator: generator);
        var s = w.mm(w.t());
        foreach (var (a, b) in new[] { (w, w.t()), (w.t(), w), (s, s.mm(s)) })
        {
            var expected = a.mm(b);
            using var actual = Multiply(entry, a, b);
            if (actual is null)
                return "the probe's operands were refused";
            double scale = Max(expected.abs());
            double error = Max((actual - expected).abs());
            if (!(error <= tolerance * Math.Max(1, scale) * a.shape[1]) || Max((actual - actual.t()).abs()) != 0)
                return $"the probe's {dtype} product differs from torch.mm by {error:G3}";
        }
        return null;
    }

    /// <summary>The raw host products against torch.mm: a 33×20 Gram matrix (stored and transposed operands, and I − WWᵀ with α = −1, β = 1) and a 33×20·20×17 product.</summary>
    private static string? ProbeHost(Entry entry)
    {
        using var scope = torch.NewDisposeScope();
        using var generator = new Generator(54321);
        var w = torch.randn([33, 20], generator: generator);
        var v = torch.randn([20, 17], generator: generator);
        var lower = new float[33 * 33];
        var general = new float[33 * 17];
        var wt = w.t().contiguous();
        fixed (byte* pw = w.bytes)
        fixed (byte* pwt = wt.bytes)
        fixed (byte* pv = v.bytes)
        fixed (float* pl = lower)
        fixed (float* pg = general)
        {
            LowerProduct(entry.Single, pl, 33, 20, (float*)pw, false, (float*)pw, true, 1f, 0f);
            MirrorLower(pl, 33);
            var gram = torch.tensor(lower, [33, 33]);
            LowerProduct(entry.Single, pl, 33, 20, (float*)pwt, true, (float*)pwt, false, 1f, 0f);
            MirrorLower(pl, 33);
            var transposed = torch.tensor(lower, [33, 33]);
            // α = −1, β = 1 onto the identity: I − W·Wᵀ (the projection's residual in one product).
            Array.Clear(lower);
            for (int i = 0; i < 33; i++)
                lower[i * 33 + i] = 1;
            LowerProduct(entry.Single, pl, 33, 20, (float*)pw, false, (float*)pw, true, -1f, 1f);
            MirrorLower(pl, 33);
            var residual = torch.tensor(lower, [33, 33]);
            Product(entry, pg, 33, 17, 20, (float*)pw, (float*)pv);
            var product = torch.tensor(general, [33, 17]);
            double scale = Max(w.abs()) * Max(w.abs()) * 20;
            var expected = w.mm(w.t());
            double error = Math.Max(Max((gram - expected).abs()), Max((transposed - expected).abs()));
            error = Math.Max(error, Max((product - w.mm(v)).abs()));
            error = Math.Max(error, Max((residual - (torch.eye(33) - expected)).abs()));
            if (!(error <= 1e-5 * scale))
                return $"the probe's host products differ from torch.mm by {error:G3}";
        }
        return null;
    }

    private static double Max(Tensor t) => t.max().to(ScalarType.Float64).item<double>();
}
