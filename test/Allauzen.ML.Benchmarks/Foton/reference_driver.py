"""Seed-sweep driver for the FOTON reference code (p0lcAi/FOTON) on Fashion-MNIST.

Contains no code from the reference: it imports the reference from --ref (a checkout path),
supplies the missing Bjorck routine (written from the maths in the FOTON paper note, section 0: first-order
Bjorck-Bowie, beta 0.5, power-iteration scaling with a global-RNG Gaussian start vector),
a tqdm shim (the reference imports tqdm only for progress bars), and an IDX loader.
"""
import argparse, gzip, json, os, sys, time, types
import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--ref", required=True)
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--algo", choices=["foton", "bp"], default="foton")
p.add_argument("--depth", type=int, default=2)
p.add_argument("--width", type=int, default=256)
p.add_argument("--act", default="relu")
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--lr", type=float, default=0.5)
p.add_argument("--batch", type=int, default=256)
p.add_argument("--dropout", type=float, default=0.1)
p.add_argument("--subset", type=int, default=0, help="0 = full 60k; else first N of randperm(seed 0)")
p.add_argument("--seed", type=int, default=42)
p.add_argument("--out", default=None)
a = p.parse_args()

torch.set_num_threads(1)
os.environ.setdefault("WANDB_ENABLE", "false")
os.environ.setdefault("WANDB_MODE", "disabled")
# tqdm shim (progress bars only)
shim = types.ModuleType("tqdm"); shim.tqdm = lambda it, *k, **kw: it
sys.modules["tqdm"] = shim; sys.modules["tqdm.auto"] = shim
sys.path.insert(0, a.ref)

import model_utils.foton_utils as fu
from model_utils.foton import FOTON
from model_utils.initializations import initialize_orthogonal_weight
import training_utils as tu


@torch.no_grad()
def bjorck_stand_in(w, iters=20, order=1, power_iteration_scaling=True, beta=0.5):
    assert order == 1
    wide = w.shape[0] < w.shape[1]
    v = w.t() if wide else w
    if power_iteration_scaling:
        u = torch.randn(v.shape[0], dtype=v.dtype, device=v.device)
        for _ in range(10):
            s = v.t() @ u; s = s / s.norm()
            u = v @ s; u = u / u.norm()
        sigma = u @ (v @ s)
        v = v / sigma
    else:
        v = v / (v.shape[0] * v.shape[1]) ** 0.5
    for _ in range(iters):
        v = (1 + beta) * v - beta * (v @ (v.t() @ v))
    return v.t().contiguous() if wide else v.contiguous()


fu.bjorck_orthonormalize = bjorck_stand_in  # the name the reference calls but does not define


def load_idx(stem):
    with gzip.open(os.path.join(a.data, stem + "-images-idx3-ubyte.gz")) as f:
        x = torch.frombuffer(bytearray(f.read()[16:]), dtype=torch.uint8).reshape(-1, 784)
    with gzip.open(os.path.join(a.data, stem + "-labels-idx1-ubyte.gz")) as f:
        y = torch.frombuffer(bytearray(f.read()[8:]), dtype=torch.uint8)
    x = (x.float() / 255.0 - 0.2860) / 0.3530
    return x, y.long()


xtr, ytr = load_idx("train"); xte, yte = load_idx("t10k")
if a.subset:
    idx = torch.randperm(xtr.shape[0], generator=torch.Generator().manual_seed(0))[: a.subset]
    xtr, ytr = xtr[idx], ytr[idx]

torch.manual_seed(a.seed)
dims = [784] + [a.width] * a.depth + [10]
act = {"relu": nn.ReLU, "tanh": nn.Tanh}[a.act]
if a.algo == "foton":
    model = FOTON(layers_dim=dims, bias=False, vision=False, activation_f=act(), layers_init="orthogonal",
                  update_F=1, ortho_rate=1, p_dropout=a.dropout, error="CE", ce_T=1.0, L2=0.0,
                  batch_size=a.batch, optimizer="SGD")
else:
    mods = []
    for i in range(len(dims) - 1):
        lin = nn.Linear(dims[i], dims[i + 1], bias=False); initialize_orthogonal_weight(lin.weight); mods.append(lin)
        if i < len(dims) - 2:
            mods += [nn.Dropout(a.dropout), act()]
    model = nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)

train_dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xtr, ytr), batch_size=a.batch, shuffle=True)
test_dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xte, yte), batch_size=1000)
loss_fn = nn.CrossEntropyLoss(); dev = torch.device("cpu")
res = dict(vars(a), test_acc=[], test_loss=[], train_loss=[], wall_s=[], cpu_s=[])
for ep in range(a.epochs):
    t0, c0 = time.time(), time.process_time()
    if a.algo == "foton":
        out = tu.train_step_FOTON(model, train_dl, loss_fn, 10, a.lr, dev, None, False)
        trl = out[0]
    else:
        trl, _ = tu.train_step_BP(model, train_dl, loss_fn, opt, dev)
    tel, acc = tu.test_step(test_dl, model, loss_fn, device=dev)
    res["test_acc"].append(round(100 * acc, 2)); res["test_loss"].append(tel); res["train_loss"].append(trl)
    res["wall_s"].append(round(time.time() - t0, 1)); res["cpu_s"].append(round(time.process_time() - c0, 1))
    print(json.dumps(res), flush=True)
if a.out:
    with open(a.out, "w") as f:
        json.dump(res, f)
