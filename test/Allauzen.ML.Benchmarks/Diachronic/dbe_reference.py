#!/usr/bin/python3
"""Reference-number generator for the dynamic Bernoulli embeddings (DBE) column of the drift-injection benchmark.

NOT used by the library, the tests or CI: an independent PyTorch (autograd) implementation of DBE written from the
maths of the algorithm notes (/work/shared/papers/diachronic.md, §2.2, §6 "PyTorch DBE reference code", §8), so the
C# DynamicBernoulliEngine can be compared with a second implementation on the very same data. It reads the corpus
dumped by the C# sample (`diachronic --skip-real true --models dbe --dump PREFIX`):
PREFIX.tsv (slice<TAB>tokens), PREFIX.truth.tsv (gold pairs), PREFIX.eligible.txt (the ranked words), the same
files gensim_injection.py reads.

Recipe (the notes' §6, and the C# benchmark's settings): vocabulary = the V = 5000 most frequent words of the whole
corpus with total count >= 5 (ties by ordinal word order), OOV tokens dropped, each slice one concatenated stream,
subsampled once (keep with probability min(1, sqrt(sub / f_w)), f_w over the in-vocabulary tokens); per target
eta = rho_t[w] . sum of alpha over cs/2 left + cs/2 right neighbours (cs = 4), one positive log s(eta) and ns = 10
negatives log s(-eta') drawn with replacement from the global unigram^0.75 (in-vocabulary whole-corpus counts);
every step takes from every slice one contiguous window of n_t = ceil(0.01 (N_t - cs)) centres at a random offset,
log-likelihood scaled by (N_t - cs) / n_t; priors lambda0 = 1 on alpha and the single rho (static phase) and on
rho_0 (dynamic phase), random walk lambda/2 sum_t ||rho_t - rho_{t-1}||^2; dense Adam (lr 1e-2, betas .9/.999,
eps 1e-8). Phase 1: static fit of alpha and one rho (both init N(0,1)/K), 300 steps; phase 2: rho_t := static rho
for every t, alpha frozen, fresh Adam, 400 steps. Drift = cosine distance of rho between the first and last slice;
the eligible words are ranked, P@2K (2K = number of gold words) and AP reported.

usage: /usr/bin/python3 dbe_reference.py PREFIX [--lambdas 10,100] [--seeds 0,1,2] [--threads 1] [--trace]
"""
import argparse
import math
import time

import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("prefix")
ap.add_argument("--lambdas", default="10")
ap.add_argument("--seeds", default="0")
ap.add_argument("--dims", type=int, default=50)
ap.add_argument("--vocab", type=int, default=5000)
ap.add_argument("--min-count", type=int, default=5)
ap.add_argument("--sample", type=float, default=1e-3)
ap.add_argument("--cs", type=int, default=4)
ap.add_argument("--ns", type=int, default=10)
ap.add_argument("--fraction", type=float, default=0.01)
ap.add_argument("--lr", type=float, default=1e-2)
ap.add_argument("--lambda0", type=float, default=1.0)
ap.add_argument("--static-steps", type=int, default=300)
ap.add_argument("--dynamic-steps", type=int, default=400)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--trace", action="store_true", help="print the per-target loss every 50 steps")
args = ap.parse_args()
torch.set_num_threads(args.threads)

# ---- data: the dumped injected corpus, gold pairs and eligible words ----
pairs = [l.rstrip("\n").split("\t")[:2] for l in open(args.prefix + ".truth.tsv") if not l.startswith("#")]
gold = {w for p in pairs for w in p}
eligible = [l.strip() for l in open(args.prefix + ".eligible.txt") if l.strip()]
raw = {}
for line in open(args.prefix + ".tsv", encoding="utf-8"):
    s, toks = line.rstrip("\n").split("\t")
    raw.setdefault(int(s), []).append(toks.split())
slices = [raw[t] for t in sorted(raw)]
T = len(slices)
counts = {}
for sl in slices:
    for sent in sl:
        for w in sent:
            counts[w] = counts.get(w, 0) + 1
kept = sorted((w for w, c in counts.items() if c >= args.min_count), key=lambda w: (-counts[w], w))[: args.vocab]
ids = {w: i for i, w in enumerate(kept)}
V, K, cs, ns, half = len(kept), args.dims, args.cs, args.ns, args.cs // 2
streams_full = [np.array([ids[w] for sent in sl for w in sent if w in ids], dtype=np.int64) for sl in slices]
total = np.zeros(V)
for s in streams_full:
    total += np.bincount(s, minlength=V)
freq = total / total.sum()
keep_p = np.minimum(1.0, np.sqrt(args.sample / freq)) if args.sample > 0 else np.ones(V)
unigram = torch.tensor(total ** 0.75, dtype=torch.float64)
print(f"{args.prefix}: T = {T}, V = {V}, tokens in vocabulary per slice {[len(s) for s in streams_full]}, "
      f"{len(eligible)} eligible, gold {sorted(gold)}", flush=True)


def batch(streams, gen):
    """One window of n_t centres at a random offset from every slice: (slice, targets, contexts n×cs, scale)."""
    out = []
    for t, s in enumerate(streams):
        centres = len(s) - cs
        n = max(1, min(centres, math.ceil(centres * args.fraction)))
        off = 0 if centres == n else int(gen.integers(0, centres - n + 1))
        pos = np.arange(off + half, off + half + n)
        ctx = np.stack([s[pos + d] for d in range(-half, half + 1) if d != 0], axis=1)
        out.append((t, torch.from_numpy(s[pos]), torch.from_numpy(ctx), centres / n))
    return out


def loglik(rho_t, alpha, tgt, ctx, neg):
    sigma = alpha[ctx].sum(1)                                   # n×K context sums
    pos = torch.nn.functional.logsigmoid((rho_t[tgt] * sigma).sum(1)).sum()
    eta_n = torch.bmm(rho_t[neg], sigma.unsqueeze(2)).squeeze(2)  # n×ns
    return pos + torch.nn.functional.logsigmoid(-eta_n).sum()


def fit(seed, lam, static_cache):
    gen = np.random.default_rng(seed)
    torch.manual_seed(seed)
    if seed not in static_cache:
        streams = [s[gen.random(len(s)) < keep_p[s]] for s in streams_full]
        alpha = (torch.randn(V, K) / K).requires_grad_()
        rho = (torch.randn(V, K) / K).requires_grad_()
        opt = torch.optim.Adam([alpha, rho], lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
        t0 = time.time()
        for step in range(args.static_steps):
            b = batch(streams, gen)
            ll = sum(sc * loglik(rho, alpha, tg, cx, torch.multinomial(unigram, len(tg) * ns, True).view(-1, ns))
                     for _, tg, cx, sc in b)
            loss = -ll + args.lambda0 / 2 * (alpha.square().sum() + rho.square().sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
            if args.trace and (step % 50 == 0 or step == args.static_steps - 1):
                norm = sum(len(tg) * sc for _, tg, _, sc in b)
                print(f"  static  step {step:4d} loss/target {loss.item() / norm:.5f}", flush=True)
        print(f"  seed {seed}: subsampled tokens per slice {[len(s) for s in streams]}, static fit {time.time() - t0:.1f} s",
              flush=True)
        static_cache[seed] = (streams, alpha.detach().clone(), rho.detach().clone(), gen.bit_generator.state)
    streams, alpha, rho_s, state = static_cache[seed]
    gen = np.random.default_rng()
    gen.bit_generator.state = state
    torch.manual_seed(seed + 1000)
    rho = rho_s.unsqueeze(0).repeat(T, 1, 1).requires_grad_()
    opt = torch.optim.Adam([rho], lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    t0 = time.time()
    for step in range(args.dynamic_steps):
        b = batch(streams, gen)
        ll = sum(sc * loglik(rho[t], alpha, tg, cx, torch.multinomial(unigram, len(tg) * ns, True).view(-1, ns))
                 for t, tg, cx, sc in b)
        loss = -ll + args.lambda0 / 2 * rho[0].square().sum() + lam / 2 * (rho[1:] - rho[:-1]).square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if args.trace and (step % 50 == 0 or step == args.dynamic_steps - 1):
            norm = sum(len(tg) * sc for _, tg, _, sc in b)
            print(f"  dynamic step {step:4d} loss/target {loss.item() / norm:.5f}", flush=True)
    return rho.detach(), time.time() - t0


def score(rho, label):
    words = [w for w in eligible if w in ids]
    idx = torch.tensor([ids[w] for w in words])
    a, b = rho[0][idx], rho[-1][idx]
    drift = (1 - torch.nn.functional.cosine_similarity(a, b, dim=1)).tolist()
    d = dict(zip(words, drift))
    ranking = sorted(words, key=lambda w: (-d[w], w))
    k = len(gold)
    p = sum(w in gold for w in ranking[:k]) / k
    hits, avg = 0, 0.0
    for i, w in enumerate(ranking, 1):
        if w in gold:
            hits += 1
            avg += hits / i
    avg /= len(gold)
    ranks = " ".join(f"{w}:{ranking.index(w) + 1 if w in ranking else 0}" for w in sorted(gold))
    mean_move = (rho[-1] - rho[0]).norm(dim=1).mean().item()
    print(f"{label:22s} P@{k} = {p:.2f}  AP = {avg:.2f}  ({len(ranking)} ranked, mean ||rho_T-1 - rho_0|| {mean_move:.3f})  {ranks}",
          flush=True)
    print("    top: " + " ".join(ranking[:15]), flush=True)
    return p, avg


cache = {}
for seed in [int(x) for x in args.seeds.split(",")]:
    for lam in [float(x) for x in args.lambdas.split(",")]:
        rho, secs = fit(seed, lam, cache)
        score(rho, f"DBE lambda={lam:g} seed={seed}")
        print(f"    dynamic fit {secs:.1f} s", flush=True)
