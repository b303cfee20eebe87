# prdc-style reference (the `prdc` package's algorithm: full distance matrices, k-th neighbour radii by partition)
import numpy as np, time, sys
def dist(a, b):
    d = (a*a).sum(1)[:, None] + (b*b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d, 0))
def radii(x, k):
    d = dist(x, x)
    return np.partition(d, k, axis=1)[:, k]   # k-th nearest other point (column 0 is the point itself)
def prdc(p, q, k):
    rp, rq = radii(p, k), radii(q, k)
    d = dist(p, q)                              # |P| x |Q|
    precision = (d < rp[:, None]).any(0).mean()
    recall = (d < rq[None, :]).any(1).mean()
    density = (1.0 / k) * (d < rp[:, None]).sum(0).mean()
    coverage = (d.min(1) < rp).mean()
    return precision, recall, density, coverage
rng = np.random.default_rng(1)
n, dim = 2000, 64
p = rng.standard_normal((n, dim)).astype(np.float32); q = (rng.standard_normal((n, dim)) * 1.1).astype(np.float32)
times = []
for _ in range(7):
    t = time.perf_counter(); r = prdc(p, q, 5); times.append(time.perf_counter() - t)
print(f"numpy {np.__version__} prdc n={n} d={dim}: median {np.median(times)*1000:.1f} ms over 7 runs; {r}")
