using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

internal static partial class Bjorck
{
    /// <summary>
    /// The small side in host float32 memory: the weights' own memory read and written in place, the n×n matrices in a
    /// per-thread workspace of pinned arrays, symmetric products through MKL's triangular product (the lower triangle,
    /// then mirrored), the application through MKL's sgemm. No libtorch operator and no tensor per operation: at
    /// 256×256 the projection's own element-wise passes and calls cost as much as one of its products in libtorch.
    /// Used for contiguous host float32 weights whose small side is at most <see cref="MaxSide"/>, when
    /// <see cref="MklTriangularProduct.IsAvailable"/>; every decision (degrees, centring, bound) is ProjectWarm's.
    /// </summary>
    private sealed unsafe class HostSide : ISmallSide
    {
        private const int MaxSide = 1024;

        [ThreadStatic]
        private static Dictionary<int, Workspace>? t_workspaces; // one per side length (a network has few)

        private readonly Tensor _w;
        private readonly bool _wide;
        private readonly int _n;
        private readonly long _k;
        private readonly Workspace _ws;
        private int _powerCount;
        private bool _hasZ;
        private bool _zInQ; // Z is the first step's q, held in Q's buffer
        // Which of G and R = I − G hold the current Gram matrix: the first residual comes straight from the product
        // (R = I − W·Wᵀ, α = −1 and β = 1 onto the identity), and G is formed from it only where it is needed (the
        // centring, the scale, the next iteration's Gram matrix); after those R is formed from G again.
        private bool _gramCurrent, _residualCurrent;

        private HostSide(Tensor w, Workspace ws)
        {
            _w = w;
            _wide = w.shape[0] < w.shape[1];
            _n = (int)Math.Min(w.shape[0], w.shape[1]);
            _k = Math.Max(w.shape[0], w.shape[1]);
            _ws = ws;
            var r = S(ws.Power(0));
            r.Clear();
            for (int i = 0; i < _n; i++)
                r[i * _n + i] = 1f;
            fixed (byte* pw = w.bytes)
            {
                // Wide W (n×k): R = I − W·Wᵀ; tall W (k×n): R = I − Wᵀ·W.
                var weights = (float*)pw;
                MklTriangularProduct.LowerProduct(P(ws.Power(0)), _n, _k, weights, !_wide, weights, _wide, alpha: -1f, beta: 1f);
            }
            MklTriangularProduct.MirrorLower(P(ws.Power(0)), _n);
            _residualCurrent = true;
        }

        public static HostSide? TryCreate(Tensor w)
        {
            if (w.dim() != 2 || w.device_type != DeviceType.CPU || w.dtype != ScalarType.Float32 || !w.is_contiguous())
                return null;
            long n = Math.Min(w.shape[0], w.shape[1]);
            if (n < 1 || n > MaxSide || w.numel() > int.MaxValue || !MklTriangularProduct.IsAvailable)
                return null;
            var workspaces = t_workspaces ??= [];
            if (!workspaces.TryGetValue((int)n, out var ws))
                workspaces[(int)n] = ws = new Workspace((int)n);
            return new HostSide(w, ws);
        }

        private static float* P(float[] pinned) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));

        private Span<float> S(float[] pinned) => pinned.AsSpan(0, _n * _n);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
        public double[] Residual()
        {
            var r = S(_ws.Power(0));
            if (!_residualCurrent)
            {
                Complement(S(_ws.G), r);
                _residualCurrent = true;
            }
            _powerCount = 1;
            return HostNorms(r, _n, RowNorms);
        }

        public void ScaleGram(double c)
        {
            EnsureGram();
            float cs = (float)c; // libtorch's float32 mul by a double Scalar multiplies by the float32 value
            Scale(S(_ws.G), cs, S(_ws.G));
            _residualCurrent = false;
        }

        public (double Lo, double Hi) ExtremeEigenvalues()
        {
            EnsureGram();
            return Bjorck.ExtremeEigenvalues(_ws.G, _n);
        }

        /// <summary>G = I − R where only R is current. Exact where R's diagonal came from 1 − G_ii with G_ii in [½, 2] (Sterbenz).</summary>
        private void EnsureGram()
        {
            if (_gramCurrent)
                return;
            Complement(S(_ws.Power(0)), S(_ws.G));
            _gramCurrent = true;
        }

        /// <summary>y = I − x: the negation, and 1 added on the diagonal.</summary>
        private void Complement(ReadOnlySpan<float> x, Span<float> y)
        {
            Scale(x, -1f, y);
            for (int i = 0; i < _n; i++)
                y[i * _n + i] += 1f;
        }

        public double[] NextPower()
        {
            var next = _ws.Power(_powerCount);
            MklTriangularProduct.LowerProduct(P(next), _n, _n, P(_ws.Power(_powerCount - 1)), false, P(_ws.Power(0)), false);
            MklTriangularProduct.MirrorLower(P(next), _n);
            _powerCount++;
            return HostNorms(S(next), _n, RowNorms);
        }

        public void Combine(ReadOnlySpan<double> coefficients)
        {
            if (_zInQ)
            {
                // Z moves to its own buffer before q is overwritten.
                (_ws.Z, _ws.Q) = (_ws.Q, _ws.Z);
                _zInQ = false;
            }
            int degree = coefficients.Length - 1;
            var q = S(_ws.Q);
            float top = (float)coefficients[degree];
            Scale(S(_ws.Power(degree - 1)), top, q);
            for (int j = degree - 1; j >= 1; j--)
                AddScaled(q, (float)coefficients[j], S(_ws.Power(j - 1)));
            float c0 = (float)coefficients[0];
            for (int i = 0; i < _n; i++)
                q[i * _n + i] += c0;
            _powerCount = 0;
        }

        public void Accumulate(double zScale)
        {
            if (!_hasZ)
            {
                // Z = zScale·q; for zScale = 1, q's buffer serves as Z's until the next Combine (no copy).
                _hasZ = true;
                if (zScale == 1)
                    _zInQ = true;
                else
                    Scale(S(_ws.Q), (float)zScale, S(_ws.Z));
                return;
            }
            MklTriangularProduct.LowerProduct(P(_ws.T), _n, _n, P(_ws.Z), false, P(_ws.Q), false);
            MklTriangularProduct.MirrorLower(P(_ws.T), _n);
            (_ws.Z, _ws.T) = (_ws.T, _ws.Z);
        }

        public void NextGram()
        {
            EnsureGram();
            _residualCurrent = false;
            MklTriangularProduct.LowerProduct(P(_ws.T), _n, _n, P(_ws.Q), false, P(_ws.G), false);
            MklTriangularProduct.MirrorLower(P(_ws.T), _n);
            MklTriangularProduct.LowerProduct(P(_ws.G), _n, _n, P(_ws.T), false, P(_ws.Q), false);
            MklTriangularProduct.MirrorLower(P(_ws.G), _n);
        }

        public void Apply(double zScale)
        {
            if (!_hasZ && zScale == 1)
                return;
            var w = MemoryMarshal.Cast<byte, float>(_w.bytes);
            if (!_hasZ)
            {
                Scale(w, (float)zScale, w);
                return;
            }
            var z = _zInQ ? _ws.Q : _ws.Z;
            var projected = ArrayPool<float>.Shared.Rent(w.Length);
            try
            {
                fixed (float* pw = w)
                fixed (float* pp = projected)
                {
                    if (_wide)
                        MklTriangularProduct.Product(pp, _n, _k, _n, P(z), pw); // Z·W, n×k
                    else
                        MklTriangularProduct.Product(pp, _k, _n, _n, pw, P(z)); // W·Z, k×n
                }
                projected.AsSpan(0, w.Length).CopyTo(w);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(projected);
            }
        }

        public void Dispose()
        {
        }

        /// <summary>y = c·x, element by element (x and y may be the same span).</summary>
        private static void Scale(ReadOnlySpan<float> x, float c, Span<float> y) => Multiply(x, c, y, accumulate: false);

        /// <summary>y += c·x, element by element.</summary>
        private static void AddScaled(Span<float> y, float c, ReadOnlySpan<float> x) => Multiply(x, c, y, accumulate: true);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)] // a hot loop: optimised from the first call
        private static void Multiply(ReadOnlySpan<float> x, float c, Span<float> y, bool accumulate)
        {
            int i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var cv = Vector256.Create(c);
                for (; i + Vector256<float>.Count <= x.Length; i += Vector256<float>.Count)
                {
                    var product = cv * Vector256.Create(x.Slice(i, Vector256<float>.Count));
                    var target = y.Slice(i, Vector256<float>.Count);
                    (accumulate ? Vector256.Create(target) + product : product).CopyTo(target);
                }
            }
            for (; i < x.Length; i++)
                y[i] = accumulate ? y[i] + c * x[i] : c * x[i];
        }

        /// <summary>Pinned n×n buffers: G, the powers of R (R itself first, allocated at first use), q, Z and a scratch matrix.</summary>
        private sealed class Workspace(int n)
        {
            private readonly float[]?[] _powers = new float[MaxDegree][];

            public int N { get; } = n;
            public float[] G = Pinned(n), Q = Pinned(n), Z = Pinned(n), T = Pinned(n);

            /// <summary>R^(j+1).</summary>
            public float[] Power(int j) => _powers[j] ??= Pinned(N);

            private static float[] Pinned(int n) => GC.AllocateUninitializedArray<float>(n * n, pinned: true);
        }
    }
}
