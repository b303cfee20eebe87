#!/usr/bin/python3
"""Independent NumPy implementation of the Evaluation metrics; writes the JSON fixtures read by the C# tests.

Run from this folder: /usr/bin/python3 make_fixtures.py (Debian python3-numpy)   (numpy only; the tests do not need Python).
Inputs are rounded to float32 before anything is computed, as the C# side reads float32 columns.
Definitions (full n x m matrices, float64):
  r_k(x)    = distance from x to its k-th nearest other point of its own set
  precision = mean_q 1[exists p: |q-p| < r_k(p)]      recall   = mean_p 1[exists q: |p-q| < r_k(q)]
  density   = 1/(k|Q|) sum_q sum_p 1[|q-p| < r_k(p)]   coverage = mean_p 1[min_q |p-q| < r_k(p)]
  AUC       = P(s_member > s_non) + 1/2 P(tie), by all pairs
  alpha_l   = sum min(l P, Q), beta_l = alpha_l / l
"""
import json
import numpy as np

rng = np.random.default_rng(20261206)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def mixture(n, d, modes, keep=None, scale=1.0):
    centres = np.random.default_rng(7).normal(0, 4.0, size=(modes, d))
    allowed = np.arange(modes) if keep is None else np.asarray(keep)
    labels = rng.choice(allowed, size=n)
    return f32(centres[labels] + scale * rng.normal(size=(n, d)))


def prepare(p, q, l2, pca):
    if l2:
        p = p / np.linalg.norm(p, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    dims = p.shape[1]
    if pca > 0:
        z = np.vstack([p, q])
        mu = z.mean(axis=0)
        _, s, vt = np.linalg.svd(z - mu, full_matrices=False)
        ratio = np.cumsum(s ** 2) / np.sum(s ** 2)
        dims = int(np.searchsorted(ratio, pca * (1 - 1e-12)) + 1)
        p = (p - mu) @ vt[:dims].T
        q = (q - mu) @ vt[:dims].T
    return p, q, dims


def dist(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def radii(x, k):
    d = dist(x, x)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


def prdc(p, q, k):
    rp, rq = radii(p, k), radii(q, k)
    dqp = dist(q, p)
    a = dqp < rp[None, :]
    b = dqp < rq[:, None]
    return dict(precision=float(a.any(1).mean()), recall=float(b.any(0).mean()),
                density=float(a.sum() / (k * len(q))), coverage=float(a.any(0).mean()))


def prdc_case(name, p, q, k, l2, pca):
    pp, qq, dims = prepare(p, q, l2, pca)
    out = dict(name=name, k=k, l2=l2, pca=pca, d=p.shape[1], reference=p.astype(np.float32).ravel().tolist(),
               generated=q.astype(np.float32).ravel().tolist(), dims=dims)
    out.update(prdc(pp, qq, k))
    return out


def auc(sm, sn):
    return float((sm[:, None] > sn[None, :]).mean() + 0.5 * (sm[:, None] == sn[None, :]).mean())


n, d = 200, 8
prdc_cases = [
    prdc_case("same_distribution", mixture(n, d, 10), mixture(n, d, 10), 5, True, 0.9),
    prdc_case("five_modes_dropped", mixture(n, d, 10), mixture(n, d, 10, keep=range(5)), 5, True, 0.9),
    prdc_case("noise_x2_raw", mixture(n, d, 10), mixture(n, d, 10, scale=2.0), 3, False, 0.0),
    prdc_case("unequal_sizes_pca_only", mixture(150, d, 10), mixture(250, d, 10, scale=1.5), 4, False, 0.8),
]

members = np.round(rng.normal(0.3, 1.0, 400), 1)   # rounding makes ties
non_members = np.round(rng.normal(0.0, 1.0, 500), 1)
auc_case = dict(members=members.tolist(), non_members=non_members.tolist(), auc=auc(members, non_members))

train = mixture(120, 6, 4)
holdout = mixture(150, 6, 4)
synthetic = f32(train[rng.choice(120, 200)] + 0.05 * rng.normal(size=(200, 6)))
dcr_m = -dist(train, synthetic).min(1)
dcr_n = -dist(holdout, synthetic).min(1)
dcr_case = dict(d=6, members=train.astype(np.float32).ravel().tolist(), non_members=holdout.astype(np.float32).ravel().tolist(),
                synthetic=synthetic.astype(np.float32).ravel().tolist(), member_scores=dcr_m.tolist(),
                non_member_scores=dcr_n.tolist(), auc=auc(dcr_m, dcr_n))

P = rng.dirichlet(np.ones(50))
Q = rng.dirichlet(np.ones(50) * 0.3)
lambdas = [0.05, 0.1, 0.5, 1.0, 2.0, 10.0, 20.0]
alphas = [float(np.minimum(l * P, Q).sum()) for l in lambdas]
pr_case = dict(P=P.tolist(), Q=Q.tolist(), lambdas=lambdas, precision=alphas,
               recall=[a / l for a, l in zip(alphas, lambdas)], tv=float(0.5 * np.abs(P - Q).sum()))

with open("evaluation.json", "w") as f:
    json.dump(dict(prdc=prdc_cases, auc=auc_case, dcr=dcr_case, discrete_pr=pr_case), f)
for c in prdc_cases:
    print(c["name"], c["dims"], {k: round(c[k], 4) for k in ("precision", "recall", "density", "coverage")})
print("auc", auc_case["auc"], "dcr auc", dcr_case["auc"])
