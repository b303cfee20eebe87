"""Step-time driver for the reference DPSWflow code (ilanasebag/dpswgf) with the fixed-projection flow.

Contains no code from the reference: it imports `swf` from the reference's dpswflow/flow/swf_moment.py in --ref (the
directory holding `dpswflow/`) and calls it as main.py does, with `resample_thetas=False` (DPSWflow: K fixed
directions, S of them drawn with replacement). Shims, none of them inside the timed flow arithmetic:
  - the package is imported as `DPSWflow` (the name swf_moment.py imports; the directory is `dpswflow`);
  - `trange` (tqdm) is replaced by a range that records wall and CPU time at each step: that is the timer;
  - `plot` (decodes 25 particles through the autoencoder and writes a PNG every 50 steps) is a no-op, since
    there is no autoencoder here and image writing is not the flow; matplotlib is stubbed for the import.
The reference's own per-step work stays as written: re-projecting and re-noising the private rows and taking their
quantiles at every step, and keeping a copy of every iterate in a list.

Data, the same distributions as the .NET probe (`--synthetic-speed`):
  latent:  d = 8, the two-mode toy (+-2.65 per coordinate + N(0, 1), alternating rows) divided by its largest row norm
           (rows in the unit ball, as the sensitivity bound needs), N private rows, n particles;
  tabular: the 64-column digits table (src/Allauzen.ML.Samples/Data/digits.csv), pixels (p - 8)/16 divided by 4
           (the norm bound), all 1797 rows private, n particles.

  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_CORETYPE=SKYLAKEX /usr/bin/python3 \
    reference_driver.py --ref /tmp/dpswgf --case latent --private-rows 30000 --rows 10000 --percentiles 100
"""
import argparse, json, math, os, sys, time, types

import torch

p = argparse.ArgumentParser()
p.add_argument("--ref", required=True, help="a checkout of ilanasebag/dpswgf (the directory holding dpswflow/)")
p.add_argument("--case", choices=["latent", "tabular"], default="latent")
p.add_argument("--digits", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                "../../../src/Allauzen.ML.Samples/Data/digits.csv"))
p.add_argument("--private-rows", type=int, default=30000, help="latent case: N private rows (tabular: all 1797)")
p.add_argument("--rows", type=int, default=10000, help="n particles")
p.add_argument("--projections", type=int, default=70, help="K")
p.add_argument("--sub-projections", type=int, default=25, help="S")
p.add_argument("--percentiles", type=int, default=100, help="M")
p.add_argument("--steps", type=int, default=120, help="timed steps")
p.add_argument("--warmup", type=int, default=20, help="untimed first steps")
p.add_argument("--dt", type=float, default=3.0)
p.add_argument("--reg", type=float, default=0.0, help="lambda")
p.add_argument("--epsilon", type=float, default=5.0)
p.add_argument("--delta", type=float, default=1e-5)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--out", default=None)
a = p.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

# Import shims (see the docstring).
stamps = []


def timed_range(n, *args, **kwargs):
    for k in range(n):
        stamps.append((time.perf_counter(), time.process_time()))
        yield k
    stamps.append((time.perf_counter(), time.process_time()))


tqdm_shim = types.ModuleType("tqdm")
tqdm_shim.trange = timed_range
tqdm_shim.tqdm = lambda it, *k, **kw: it
sys.modules["tqdm"] = tqdm_shim
mpl = types.ModuleType("matplotlib")
mpl.pyplot = types.ModuleType("matplotlib.pyplot")
sys.modules["matplotlib"] = mpl
sys.modules["matplotlib.pyplot"] = mpl.pyplot
sys.path.insert(0, a.ref)
import importlib  # noqa: E402

for name in ["", ".flow", ".flow.utils", ".gaussian_moments"]:
    sys.modules["DPSWflow" + name] = importlib.import_module("dpswflow" + name)
swf_moment = importlib.import_module("dpswflow.flow.swf_moment")  # the reference
swf_moment.plot = lambda *args, **kwargs: None


def latent_rows(n):
    g = torch.Generator().manual_seed(a.seed)
    sign = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)[:, None]
    y = sign * 2.65 + torch.randn(n, 8, generator=g)
    return y / y.norm(dim=1).max()


def digit_rows():
    rows = [[float(v) for v in line.split(",")[:64]] for line in open(a.digits) if line.strip()]
    return (torch.tensor(rows) - 8.0) / 16.0 / 4.0


target = latent_rows(a.private_rows) if a.case == "latent" else digit_rows()
total = a.warmup + a.steps
sys.stdout = open(os.devnull, "w")  # swf prints N and sigma
try:
    particles, _, _ = swf_moment.swf(
        None, a.rows, total, 0, False, 0, 0, a.projections, a.sub_projections, a.percentiles, 0.0, a.dt, a.reg,
        a.epsilon, a.delta, target, None, 0, None, torch.device("cpu"), None)
finally:
    sys.stdout = sys.__stdout__
(w0, c0), (w1, c1) = stamps[a.warmup], stamps[total]
res = {
    "implementation": "reference dpswflow (PyTorch %s, %d thread)" % (torch.__version__, a.threads),
    "case": a.case, "d": int(target.shape[1]), "private_rows": int(target.shape[0]), "rows": a.rows,
    "K": a.projections, "S": a.sub_projections, "M": a.percentiles, "dt": a.dt, "epsilon": a.epsilon,
    "sigma": swf_moment.get_sigma(a.projections, int(target.shape[1]), a.epsilon, a.delta),
    "warmup": a.warmup, "steps": a.steps,
    "steps_per_s": a.steps / (w1 - w0), "steps_per_cpu_s": a.steps / (c1 - c0),
    "ms_per_step": (w1 - w0) / a.steps * 1000, "cpu_ms_per_step": (c1 - c0) / a.steps * 1000,
    "finite": bool(torch.isfinite(particles[-1]).all()),
}
print(json.dumps(res))
if a.out:
    with open(a.out + ".tmp", "w") as f:
        json.dump(res, f)
    os.replace(a.out + ".tmp", a.out)
