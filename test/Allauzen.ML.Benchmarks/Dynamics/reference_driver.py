"""Epoch-time driver for the reference Neural ODE code (Allauzen/adaptive-step-size-neural-ode) on Lorenz'63.

Contains no code from the reference: it imports ODENet, fehlberg_batch_inference and rk3 from the reference's
ode_utils.py in --ref (a checkout path) and writes the training step from the paper (appendix "Batch training"):
one Fehlberg 3(2) step for every row; rows with r > eps are recomputed together with the smallest proposed step
h' = S*sqrt(eps/r) (at least 1/max_steps); MSE loss; full-batch L-BFGS (lr 1, 20 iterations, 25 evaluations,
history 100, tolerances 1e-5 / 1e-9, no line search, as TorchSharp's L-BFGS). The data is the CSV the `ode` sample
writes (ode-train.csv: one state per line), so both implementations train on the same trajectory.

  python3 reference_driver.py --ref /path/to/adaptive-step-size-neural-ode --data /tmp/ode-out/ode-train.csv [--training fehlberg]
"""
import argparse, json, math, statistics, sys, time
import numpy as np
import torch

p = argparse.ArgumentParser()
p.add_argument("--ref", required=True)
p.add_argument("--data", required=True)
p.add_argument("--training", choices=["blackbox", "fehlberg"], default="blackbox")
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--evals", type=int, default=50, help="closure evaluations timed at the initial weights")
p.add_argument("--eps", type=float, default=0.1)
p.add_argument("--safety", type=float, default=0.9)
p.add_argument("--max-steps", type=int, default=10)
p.add_argument("--hidden", type=int, default=50)
p.add_argument("--out", default=None)
a = p.parse_args()

torch.set_num_threads(1)
torch.manual_seed(1)
sys.path.insert(0, a.ref)
from ode_utils import ODENet, fehlberg_batch_inference, rk3  # noqa: E402  (the reference)

traj = torch.tensor(np.loadtxt(a.data, delimiter=","), dtype=torch.float32)
x, y = traj[:-1], traj[1:]
model = ODENet(x.shape[1], h=a.hidden)
opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=20, max_eval=25, tolerance_grad=1e-5,
                        tolerance_change=1e-9, history_size=100)
evals = {"n": 0}


def closure():
    evals["n"] += 1
    opt.zero_grad()
    a1, a2, r, hp = fehlberg_batch_inference(model, x, h=1, S=a.safety, eps=a.eps)
    if a.training == "fehlberg":
        r = (y - a2).abs().sum(-1)
    r = r.detach()
    rejected = r > a.eps
    pred = a2
    if bool(rejected.any()):
        h_min = max(float((a.safety * (a.eps / r[rejected]).sqrt()).min()), 1.0 / a.max_steps)
        n = min(a.max_steps, math.ceil(1.0 / h_min - 1e-9))
        idx = rejected.nonzero().squeeze(1)
        pred = a2.index_copy(0, idx, rk3(model, x[idx], h=1.0 / n, numsteps=n))
    loss = torch.nn.functional.mse_loss(pred, y)
    loss.backward()
    return loss


# Closure cost at the initial weights (forward through the solver + backward), the same work in both implementations.
for _ in range(3):
    closure()
t0 = time.perf_counter()
for _ in range(a.evals):
    closure()
closure_ms = (time.perf_counter() - t0) / a.evals * 1000

epoch_s, epoch_evals = [], []
for e in range(a.epochs):
    evals["n"] = 0
    t0 = time.perf_counter()
    opt.step(closure)
    epoch_s.append(time.perf_counter() - t0)
    epoch_evals.append(evals["n"])
res = {"implementation": "reference (PyTorch %s)" % torch.__version__, "training": a.training, "rows": int(x.shape[0]),
       "closure_ms": closure_ms, "epoch_seconds": epoch_s, "epoch_evaluations": epoch_evals,
       "median_epoch_seconds": statistics.median(epoch_s), "final_loss": float(closure())}
print(json.dumps(res, indent=1))
if a.out:
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
