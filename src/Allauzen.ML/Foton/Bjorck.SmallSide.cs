using Allauzen.ML.Torch;
using TorchSharp;
using static TorchSharp.torch;

namespace Allauzen.ML.Foton;

// The small n×n side of ProjectWarm: its matrices (the Gram matrix G, R = I − G and its powers, the step polynomial q
// and the accumulated Z) and their products. TorchSide keeps them in libtorch tensors (any device and dtype); HostSide
// (Bjorck.HostSide.cs) in host float32 memory with MKL's products.
internal static partial class Bjorck
{
    private interface ISmallSide : IDisposable
    {
        /// <summary>R = I − G; returns max|R|, the largest absolute row sum, ‖R‖_F and the largest row L2 norm.</summary>
        double[] Residual();

        /// <summary>G ← c·G.</summary>
        void ScaleGram(double c);

        /// <summary>Estimates of G's extreme eigenvalues (Lanczos).</summary>
        (double Lo, double Hi) ExtremeEigenvalues();

        /// <summary>The next power R^(j+1) = R^j·R; returns its norms (as <see cref="Residual"/>).</summary>
        double[] NextPower();

        /// <summary>q = Σ_j c_j R^j (c_0 on the identity) over the powers formed; the powers are dropped.</summary>
        void Combine(ReadOnlySpan<double> coefficients);

        /// <summary>Z = zScale·q at the first step, Z·q after.</summary>
        void Accumulate(double zScale);

        /// <summary>G ← q·G·q (the Gram matrix of the projected weights).</summary>
        void NextGram();

        /// <summary>W ← Z·W (wide) or W·Z (tall); W·zScale when no step was taken.</summary>
        void Apply(double zScale);
    }

    private sealed class TorchSide : ISmallSide
    {
        private readonly DisposeScope _scope = torch.NewDisposeScope();
        private readonly Tensor _w;
        private readonly bool _wide;
        private readonly List<Tensor> _powers = [];
        // Scalars held for the whole projection: an implicit temporary may be finalised during the native call.
        private readonly Scalar _one = 1.0.ToScalar();
        private Tensor _g;
        private Tensor? _q, _z;

        public TorchSide(Tensor w)
        {
            _w = w;
            _wide = w.shape[0] < w.shape[1];
            _g = _wide ? SymmetricProduct(w, w.t()) : SymmetricProduct(w.t(), w);
        }

        public double[] Residual()
        {
            var r = _g.neg();
            r.diagonal().add_(_one, KeptScalars.One);
            _powers.Clear();
            _powers.Add(r);
            return Norms(r);
        }

        public void ScaleGram(double c)
        {
            using Scalar cs = c.ToScalar();
            _g = _g.mul(cs);
        }

        public (double Lo, double Hi) ExtremeEigenvalues() => Bjorck.ExtremeEigenvalues(_g);

        public double[] NextPower()
        {
            var power = SymmetricProduct(_powers[^1], _powers[0]);
            _powers.Add(power);
            return Norms(power);
        }

        public void Combine(ReadOnlySpan<double> coefficients)
        {
            int degree = coefficients.Length - 1;
            Tensor q;
            using (Scalar top = coefficients[degree].ToScalar())
                q = _powers[degree - 1].mul(top);
            for (int j = degree - 1; j >= 1; j--)
            {
                using Scalar c = coefficients[j].ToScalar();
                q.add_(_powers[j - 1], alpha: c);
            }
            if (coefficients[0] == 1)
                q.diagonal().add_(_one, KeptScalars.One);
            else
            {
                using Scalar c0 = coefficients[0].ToScalar();
                q.diagonal().add_(c0);
            }
            _q = q;
            _powers.Clear();
        }

        public void Accumulate(double zScale)
        {
            if (_z is null)
            {
                using Scalar zs = zScale.ToScalar();
                _z = zScale == 1 ? _q! : _q!.mul(zs);
            }
            else
                _z = SymmetricProduct(_z, _q!);
        }

        public void NextGram() => _g = SymmetricProduct(SymmetricProduct(_q!, _g), _q!);

        public void Apply(double zScale)
        {
            if (_z is not null)
            {
                using var projected = _wide ? _z.mm(_w) : _w.mm(_z);
                _w.copy_(projected);
            }
            else if (zScale != 1)
            {
                using Scalar zs = zScale.ToScalar();
                _w.mul_(zs);
            }
        }

        public void Dispose()
        {
            _one.Dispose();
            _scope.Dispose();
        }
    }
}
