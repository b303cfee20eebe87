#!/usr/bin/python3
"""gensim reference baselines of the drift-injection benchmark (the notes' §6 recipe), on a corpus dumped by
`diachronic --dump PREFIX` (PREFIX.tsv: slice<TAB>tokens; PREFIX.truth.tsv: pairs; PREFIX.eligible.txt).

usage: /usr/bin/python3 gensim_injection.py PREFIX [dims] [workers] [seed]
Prints P@2K and AP of: incremental SGNS with whole-corpus init (Kim), incremental with random init, and independent
SGNS + Procrustes chain (OP), all ranked by first-last cosine distance over the eligible words; and the same three on
PREFIX.control.tsv (uninjected) against the same gold list. Settings as the notes: skip-gram, window 5, 5 negatives,
min_count 5, 5 epochs per slice (and 5 whole-corpus epochs), sample 1e-3.
"""
import sys
import numpy as np
from gensim.models import Word2Vec

prefix = sys.argv[1]
dims = int(sys.argv[2]) if len(sys.argv) > 2 else 100
workers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1

pairs = [l.rstrip("\n").split("\t")[:2] for l in open(prefix + ".truth.tsv") if not l.startswith("#")]
gold = {w for p in pairs for w in p}
eligible = [l.strip() for l in open(prefix + ".eligible.txt") if l.strip()]


def load(path):
    slices = {}
    for line in open(path, encoding="utf-8"):
        s, toks = line.rstrip("\n").split("\t")
        slices.setdefault(int(s), []).append(toks.split())
    return [slices[t] for t in sorted(slices)]


def kw():
    return dict(sg=1, vector_size=dims, window=5, negative=5, min_count=5, sample=1e-3, workers=workers, seed=seed)


def snapshot(m, words):
    return {w: m.wv.get_vector(w, norm=True) for w in words if w in m.wv}


def incremental(slices, whole_init):
    m = Word2Vec(**kw())
    if whole_init:
        allsent = [s for sl in slices for s in sl]
        m.build_vocab(allsent)
        m.train(allsent, total_examples=len(allsent), epochs=5)
    else:
        m.build_vocab(slices[0])
    snaps = []
    for t, sl in enumerate(slices):
        if whole_init or t > 0:
            m.build_vocab(sl, update=True)
        m.train(sl, total_examples=len(sl), epochs=5)
        snaps.append(snapshot(m, eligible))
    return snaps


def op(slices):
    snaps = []
    for sl in slices:
        m = Word2Vec(**kw())
        m.build_vocab(sl)
        m.train(sl, total_examples=len(sl), epochs=5)
        snaps.append(snapshot(m, eligible))
    words = [w for w in eligible if all(w in s for s in snaps)]
    prev = np.stack([snaps[0][w] for w in words])
    aligned = [dict(zip(words, prev))]
    for s in snaps[1:]:
        x = np.stack([s[w] for w in words])
        u, _, vt = np.linalg.svd(x.T @ prev)
        x = x @ (u @ vt)
        aligned.append(dict(zip(words, x)))
        prev = x
    return aligned


def score(snaps, name):
    words = [w for w in eligible if w in snaps[0] and w in snaps[-1]]
    drift = {w: 1 - float(np.dot(snaps[0][w], snaps[-1][w]) / (np.linalg.norm(snaps[0][w]) * np.linalg.norm(snaps[-1][w]))) for w in words}
    ranking = sorted(words, key=lambda w: (-drift[w], w))
    k = len(gold)
    p = sum(w in gold for w in ranking[:k]) / k
    hits, ap = 0, 0.0
    for i, w in enumerate(ranking, 1):
        if w in gold:
            hits += 1
            ap += hits / i
    ap /= len(gold)
    ranks = " ".join(f"{w}:{ranking.index(w) + 1 if w in ranking else 0}" for w in sorted(gold))
    print(f"{name:28s} P@{k} = {p:.2f}  AP = {ap:.2f}  ({len(ranking)} ranked)  {ranks}", flush=True)


for label, path in (("injected", prefix + ".tsv"), ("control", prefix + ".control.tsv")):
    slices = load(path)
    score(incremental(slices, True), f"{label} incremental-whole")
    score(op(slices), f"{label} OP")
    if label == "injected":
        score(incremental(slices, False), f"{label} incremental-random")
